/** A worker pins its inference thread alone (`worker --inference-cpus`): the real thread, pinned with taskset. */
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { ThreadExecutor } from '../../worker/thread-executor.js';

const onLinux = process.platform === 'linux';
/** A CPU other than the first, so that a pin that did nothing shows. */
const lastCpu = String(availableParallelism() - 1);
const allowedCpus = (tid: string) => /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/self/task/${tid}/status`, 'utf8'))![1];

describe.runIf(onLinux && availableParallelism() > 1)('pinning the inference thread', () => {
  const executor = new ThreadExecutor({ device: 'cpu', intraOpNumThreads: 1 });
  afterAll(() => executor.close());

  it('pins that thread alone to the CPUs named, and it still runs models', async () => {
    await executor.probe();
    const before = new Map(readdirSync('/proc/self/task').map((tid) => [tid, allowedCpus(tid)]));
    expect(await executor.pinInferenceThread(lastCpu)).toBeUndefined();
    const changed = readdirSync('/proc/self/task').filter((tid) => before.has(tid) && allowedCpus(tid) !== before.get(tid));
    expect(changed).toHaveLength(1);
    expect(allowedCpus(changed[0]!)).toBe(lastCpu);
    expect(changed[0]).not.toBe(String(process.pid)); // not the main thread
    await executor.probe(); // a session created and run on the pinned thread
  });

  it('says why when it cannot', async () => {
    expect(await executor.pinInferenceThread('999')).toMatch(/could not pin thread \d+ to CPUs 999/);
  });
});
