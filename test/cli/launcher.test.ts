/**
 * `bin/escapement` (through `bin/serving-node`) starts node with the serving heap settings, and a
 * worker also with the worker's flags: the same ones LocalCluster uses.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hasServingNodeFlags, SERVING_NODE_FLAGS, WORKER_NODE_FLAGS } from '../../cluster/node-flags.js';

describe('bin/escapement', () => {
  it('passes exactly the serving node flags', () => {
    const execLine = readFileSync('bin/serving-node', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('exec node '))!;
    const flags = execLine.split(' ').filter((w) => w.startsWith('--'));
    expect(flags).toEqual([...SERVING_NODE_FLAGS]);
    const workerLine = readFileSync('bin/escapement', 'utf8')
      .split('\n')
      .find((l) => l.includes('exec') && l.includes('--max-opt'))!;
    expect(workerLine.split(' ').filter((w) => w.startsWith('--'))).toEqual([...WORKER_NODE_FLAGS]);
  });

  it('runs the CLI under those flags, from any directory', () => {
    const run = spawnSync(`${process.cwd()}/bin/escapement`, ['--version'], { encoding: 'utf8', cwd: '/', timeout: 30_000 });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    // the same launcher beside a stand-in CLI that prints how node was started
    const root = mkdtempSync(join(tmpdir(), 'escapement-launcher-'));
    try {
      mkdirSync(join(root, 'bin'));
      mkdirSync(join(root, 'dist', 'cli'), { recursive: true });
      copyFileSync('bin/escapement', join(root, 'bin', 'escapement'));
      copyFileSync('bin/serving-node', join(root, 'bin', 'serving-node'));
      chmodSync(join(root, 'bin', 'serving-node'), 0o755);
      writeFileSync(join(root, 'dist', 'cli', 'escapement.js'), 'console.log(JSON.stringify({ execArgv: process.execArgv, argv: process.argv.slice(2) }));\n');
      const probe = (args: string[]) =>
        JSON.parse(spawnSync('sh', [join(root, 'bin', 'escapement'), ...args], { encoding: 'utf8', timeout: 30_000 }).stdout) as {
          execArgv: string[];
          argv: string[];
        };
      const worker = probe(['worker', '--id', 'w 0']);
      expect(worker.execArgv).toEqual([...SERVING_NODE_FLAGS, ...WORKER_NODE_FLAGS]);
      expect(worker.argv).toEqual(['worker', '--id', 'w 0']);
      const controller = probe(['controller', '--id', 'worker']);
      expect(controller.execArgv).toEqual([...SERVING_NODE_FLAGS]);
      expect(controller.argv).toEqual(['controller', '--id', 'worker']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('tells the flags apart from their absence', () => {
    expect(hasServingNodeFlags([...SERVING_NODE_FLAGS])).toBe(true);
    expect(hasServingNodeFlags(SERVING_NODE_FLAGS.slice(1))).toBe(false);
  });
});
