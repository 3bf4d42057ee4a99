/**
 * The install stays quiet and offline-safe on current npm and the next major: every dependency's
 * install script is approved or denied in `allowScripts` (onnxruntime-node's, a CUDA download,
 * is denied), and no project config key npm does not know remains.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { allowScripts: Record<string, boolean>; scripts: Record<string, string> };

describe('install configuration', () => {
  it('leaves no installed package with an unreviewed install script, and denies the CUDA download', () => {
    const listed = JSON.parse(execFileSync('npm', ['install-scripts', 'ls', '--json'], { encoding: 'utf8' })) as { allowScripts: unknown[] };
    expect(listed.allowScripts).toEqual([]);
    expect(pkg.allowScripts['onnxruntime-node']).toBe(false);
  });

  it('gives npm no project config it warns about', () => {
    const run = spawnSync('npm', ['config', 'list'], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(run.stderr).not.toMatch(/npm warn/i);
  });

  it('skips the CUDA download on npm 10 too, which ignores allowScripts', () => {
    expect(pkg.scripts.quickstart).toMatch(/^ONNXRUNTIME_NODE_INSTALL=skip npm ci/);
  });
});
