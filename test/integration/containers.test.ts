/**
 * The container files: docker-compose.yml has the controller, two workers and a one-shot replay,
 * wired together, and every command it runs is a real CLI command with valid flags. (No Docker
 * engine runs on the development and CI machines, so the image itself is not built here; what its
 * build stage copies is type-checked as the image's `tsc` would see it.)
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { cliEntryPath } from '../../cluster/local-cluster.js';

interface Service {
  build?: string;
  command: string[];
  environment?: Record<string, string>;
  depends_on?: unknown;
  ports?: string[];
  ulimits?: { nice?: number };
}

const compose = parse(readFileSync('docker-compose.yml', 'utf8')) as { services: Record<string, Service> };

describe('docker-compose.yml', () => {
  it('has a controller, two workers and a one-shot replay', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['controller', 'replay', 'worker-0', 'worker-1']);
    for (const service of Object.values(compose.services)) expect(service.build).toBe('.');
    expect(compose.services.controller!.ports).toContain('127.0.0.1:8000:8000');
  });

  it('lets the controller and the workers raise their threads to niceness -10 (RLIMIT_NICE 20 - -10 = 30)', () => {
    for (const name of ['controller', 'worker-0', 'worker-1']) expect(compose.services[name]!.ulimits?.nice).toBeGreaterThanOrEqual(30);
  });

  it('wires workers and the replay to the controller by its service name and ports', () => {
    const controllerEnv = compose.services.controller!.environment!;
    for (const w of ['worker-0', 'worker-1']) {
      const cmd = compose.services[w]!.command;
      expect(cmd[cmd.indexOf('--controller') + 1]).toBe(`tcp://controller:${controllerEnv.ESCAPEMENT_PORT}`);
    }
    const replay = compose.services.replay!.command;
    expect(replay[replay.indexOf('--controller') + 1]).toBe(`tcp://controller:${controllerEnv.ESCAPEMENT_CLIENT_PORT}`);
  });

  it.each(Object.entries(compose.services))('runs a real command with flags the CLI accepts: %s', (_name, service) => {
    // --check-args validates the command, flags and ESCAPEMENT_* variables (strict) without running.
    const env = { ...process.env, ...(service.environment ?? {}) };
    // through the image's entrypoint, the launcher with the serving heap settings
    const run = spawnSync('bin/escapement', [...service.command, '--check-args'], { encoding: 'utf8', env, timeout: 30_000 });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain(`escapement ${service.command[0]}: arguments ok`);
  });

  it('would notice a command or flag the CLI does not have', () => {
    const run = spawnSync(process.execPath, [cliEntryPath(), 'worker', '--no-such-flag', 'x', '--check-args'], { encoding: 'utf8', timeout: 30_000 });
    expect(run.status).not.toBe(0);
  });
});

/** `docker compose` (plugin) or `docker-compose` (Debian's package, which .ci/run installs). */
function composeCommand(): string[] | undefined {
  if (spawnSync('docker', ['compose', 'version']).status === 0) return ['docker', 'compose'];
  if (spawnSync('docker-compose', ['version']).status === 0) return ['docker-compose'];
  return undefined;
}
const compose$ = composeCommand();

describe('docker compose config', () => {
  // .ci/run installs docker-compose, so CI always runs this; elsewhere it needs Docker's compose.
  it.runIf(compose$ !== undefined)('validates the compose file', () => {
    const [cmd, ...args] = compose$!;
    const run = spawnSync(cmd!, [...args, '-f', 'docker-compose.yml', 'config'], { encoding: 'utf8', timeout: 60_000 });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/worker-1/);
  });
});

describe('Dockerfile', () => {
  it('builds in stages and runs as a non-root user', () => {
    const text = readFileSync('Dockerfile', 'utf8');
    expect(text.match(/^FROM /gm)).toHaveLength(2);
    expect(text).toMatch(/^USER node$/m);
    expect(text).toMatch(/ONNXRUNTIME_NODE_INSTALL=skip/);
    expect(text).toMatch(/^COPY bin bin$/m);
    expect(text).toMatch(/ENTRYPOINT \["bin\/escapement"\]/);
  });
});

/** The files the image's build stage copies: its COPY sources, '.' being the context less .dockerignore. */
function buildStageFiles(): string[] {
  const dockerfile = readFileSync('Dockerfile', 'utf8');
  const stage = dockerfile.split(/^FROM /m)[1]!;
  const sources = [...stage.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
  const ignored = readFileSync('.dockerignore', 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const listed = spawnSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  const inContext = listed.filter((f) => !ignored.some((p) => f === p || f.startsWith(`${p}/`)));
  return inContext.filter((f) => sources.some((src) => src === '.' || f === src || f.startsWith(`${src}/`)));
}

describe('the image build stage', () => {
  it('copies every source the TypeScript build needs: tsc passes on exactly what it copies', () => {
    const files = buildStageFiles();
    expect(files).toContain('tsconfig.json');
    const root = mkdtempSync(join(tmpdir(), 'escapement-image-'));
    try {
      for (const f of files.filter((x) => /\.(ts|json)$/.test(x))) {
        mkdirSync(dirname(join(root, f)), { recursive: true });
        copyFileSync(f, join(root, f));
      }
      symlinkSync(resolve('node_modules'), join(root, 'node_modules'), 'dir');
      const tsc = spawnSync(process.execPath, [resolve('node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json', '--noEmit'], {
        cwd: root,
        encoding: 'utf8',
        timeout: 120_000,
      });
      expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, 120_000);
});
