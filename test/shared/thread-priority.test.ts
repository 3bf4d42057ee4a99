import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { setProcessNiceness } from '../../shared/thread-priority.js';

describe('setProcessNiceness', () => {
  it.runIf(process.platform === 'linux')('changes every thread of the process, and threads started after inherit it', () => {
    const entry = new URL('../../dist/shared/thread-priority.js', import.meta.url).href;
    // a child process lowers its priority (no privilege needed), then starts a worker thread
    const source = `
      const { readdirSync, readFileSync } = require('node:fs');
      const { Worker } = require('node:worker_threads');
      const nice = (path) => { const s = readFileSync(path, 'utf8'); return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[16]); };
      import(${JSON.stringify(entry)}).then(({ setProcessNiceness }) => {
        const problem = setProcessNiceness(6);
        const w = new Worker('setTimeout(() => {}, 300)', { eval: true });
        w.once('online', () => {
          const threads = readdirSync('/proc/self/task').map((t) => nice('/proc/self/task/' + t + '/stat'));
          process.stdout.write(JSON.stringify({ problem, threads }));
          process.exit(0);
        });
      });`;
    const child = spawnSync(process.execPath, ['-e', source], { encoding: 'utf8', timeout: 20_000 });
    const reply = JSON.parse(child.stdout) as { problem?: string; threads: number[] };
    expect(reply.problem).toBeUndefined();
    expect(reply.threads.length).toBeGreaterThan(2); // main, libuv/V8 helpers, the worker thread
    expect(new Set(reply.threads)).toEqual(new Set([6]));
  });

  it('refuses a value outside [-20, 19] and says why', () => {
    expect(setProcessNiceness(-21)).toMatch(/integer in \[-20, 19\]/);
  });
});
