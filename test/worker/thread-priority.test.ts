import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { setThreadNiceness } from '../../worker/thread-priority.js';

/** Niceness of the calling thread, from /proc/thread-self/stat (field 19). */
function ownNiceness(): number {
  const stat = readFileSync('/proc/thread-self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

describe('setThreadNiceness', () => {
  it.runIf(process.platform === 'linux')('changes the niceness of the calling thread only, not of its process', async () => {
    const entry = new URL('../../dist/worker/thread-priority.js', import.meta.url).href;
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
