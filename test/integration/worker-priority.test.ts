/**
 * A real controller and a real worker raise every thread they have to niceness -10 by default, so
 * that on a shared host runs take what the controller predicted and results and requests are read
 * as they arrive; without the privilege they run unchanged. (bench:core measures what this buys
 * for predictability quiet and with a CPU hog; bench:bursty for admitted requests under bursts.)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EscapementClient } from '../../client/escapement-client.js';
import { LocalCluster } from '../../cluster/local-cluster.js';
import { checkLeaks } from '../support/leak-check.js';

const MODEL = 'mnist-cnn';

function niceOf(statPath: string): number {
  const stat = readFileSync(statPath, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

describe.runIf(process.platform === 'linux')("the serving processes' priority", () => {
  let cluster: LocalCluster;
  let client: EscapementClient;
  checkLeaks(() => [cluster]);

  beforeAll(async () => {
    cluster = await LocalCluster.start({ numWorkers: 1, modelDir: 'models', preload: [MODEL] });
    client = await EscapementClient.connect(cluster.clientUrl);
    await cluster.waitUntilServing(client, [MODEL]);
  });

  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
  });

  const threadsOf = (pid: number) => readdirSync(`/proc/${pid}/task`).map((tid) => niceOf(`/proc/${pid}/task/${tid}/stat`));

  it('runs every thread of the worker and of the controller at niceness -10', () => {
    const own = niceOf('/proc/self/stat');
    for (const pid of [cluster.workers.get('worker-0')!.child.pid!, cluster.pids()[0]!]) {
      const threads = threadsOf(pid);
      // main, libuv and V8 helpers, zeromq's I/O thread (and the worker's inference thread)
      expect(threads.length).toBeGreaterThan(3);
      // root here (CI): raised; otherwise unchanged (the process logs why)
      expect(new Set(threads)).toEqual(new Set([process.getuid?.() === 0 ? -10 : own]));
    }
  });
});
