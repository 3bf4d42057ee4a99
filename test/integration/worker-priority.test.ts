/**
 * A real worker process raises its inference thread (and only it) to niceness -10 by default, so
 * that on a shared host its runs take what the controller predicted; without the privilege it runs
 * unchanged. (bench:core measures what this buys: predictability quiet and with a CPU hog.)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EscapementClient } from '../../client/escapement-client.js';
import { LocalCluster } from '../../cli/local-cluster.js';
import { checkLeaks } from '../support/leak-check.js';

const MODEL = 'mnist-cnn';

function niceOf(statPath: string): number {
  const stat = readFileSync(statPath, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

describe.runIf(process.platform === 'linux')('the worker inference thread priority', () => {
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

  it('runs the inference thread at niceness -10 and leaves the rest of the worker at its own', () => {
    const pid = cluster.workers.get('worker-0')!.child.pid!;
    const byThread = readdirSync(`/proc/${pid}/task`).map((tid) => ({ tid: Number(tid), nice: niceOf(`/proc/${pid}/task/${tid}/stat`) }));
    const mainNice = byThread.find((t) => t.tid === pid)!.nice;
    expect(mainNice).toBe(niceOf('/proc/self/stat')); // the main thread (sockets, heartbeats) as started
    const raised = byThread.filter((t) => t.nice === -10);
    if (process.getuid?.() === 0) {
      // the inference thread, and any thread onnxruntime starts from it (they inherit its niceness)
      expect(raised.length).toBeGreaterThanOrEqual(1);
      expect(raised.length).toBeLessThan(byThread.length);
    } else {
      expect(raised).toEqual([]); // no privilege: unchanged (the worker logs why)
    }
  });
});
