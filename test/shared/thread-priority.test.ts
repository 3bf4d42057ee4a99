import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { setProcessNiceness, setThreadNiceness } from '../../shared/thread-priority.js';

/** Niceness of the calling thread, from /proc/thread-self/stat (field 19). */
function ownNiceness(): number {
  const stat = readFileSync('/proc/thread-self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

describe('setThreadNiceness', () => {
  it.runIf(process.platform === 'linux')('changes the niceness of the calling thread only, not of its process', async () => {
    const entry = new URL('../../dist/shared/thread-priority.js', import.meta.url).href;
    // a worker thread lowers its own priority (a positive niceness needs no privilege) and reports both
    const source = `
      const { parentPort } = require('node:worker_threads');
      const { readFileSync } = require('node:fs');
      const nice = (path) => { const s = readFileSync(path, 'utf8'); return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[16]); };
      import(${JSON.stringify(entry)}).then(({ setThreadNiceness }) => {
        const problem = setThreadNiceness(7);
        parentPort.postMessage({ problem, thread: nice('/proc/thread-self/stat'), process: nice('/proc/self/stat') });
      });`;
    const before = ownNiceness();
    const reply = await new Promise<{ problem?: string; thread: number; process: number }>((resolve, reject) => {
      const worker = new Worker(source, { eval: true });
      worker.once('message', (m) => {
        resolve(m);
        void worker.terminate();
      });
      worker.once('error', reject);
    });
    expect(reply.problem).toBeUndefined();
    expect(reply.thread).toBe(7);
    expect(reply.process).toBe(before); // the main thread keeps its priority
    expect(ownNiceness()).toBe(before);
  });

  it('refuses a value outside [-20, 19] and says why', () => {
    expect(setThreadNiceness(25)).toMatch(/integer in \[-20, 19\]/);
    expect(setThreadNiceness(1.5)).toMatch(/integer/);
  });
});

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
