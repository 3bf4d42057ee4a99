/**
 * V8 heap settings for the serving processes (controller, workers, clients under load).
 *
 * With Node's defaults a controller at ~1,000 requests/s ran about 57 scavenges and 13 full
 * mark-compacts per 20 s, pausing its event loop for up to 13 ms at a time (plus incremental
 * marking steps of up to 12 ms), and the memory reducer forced three more full GCs 8 s after
 * start. With a 40 ms SLO those pauses were where most deadline misses of a 70 %-load replay
 * came from. A young generation that starts large lets request objects die young instead of
 * being promoted, the initial old-space limit stops full GCs while the heap grows, and the
 * memory reducer is off: 9 scavenges and no mark-compact in the same run.
 *
 * V8 reads these only at start, and NODE_OPTIONS refuses most of them, so they go on node's
 * command line: `bin/serving-node` (which `bin/escapement` and the benchmarks start through)
 * passes them, and so does `LocalCluster` for what it spawns. Keep the two lists equal (a test
 * checks).
 */
export const SERVING_NODE_FLAGS: readonly string[] = [
  '--max-semi-space-size=64',
  '--min-semi-space-size=16',
  '--initial-old-space-size=128',
  '--no-memory-reducer',
];

/**
 * What a worker adds: V8's baseline compiler only (Sparkplug), never the optimizing one.
 *
 * A worker's own JavaScript per action (decode, queue, hand the tensors to the inference thread,
 * encode the result) is small beside a run; the optimizing compiler still recompiled it in bursts
 * for the first ~20 s of serving (fmnist-resnet at 300 req/s, after 8 s of warm-up: 104 compiles
 * in the next 20 s, up to 54 ms of helper-thread CPU each, and deoptimizations whenever an object
 * of a new shape arrived, an exit's message or a chain's result). On two cores each burst came out of a
 * run in flight. Baseline code compiles once, cheaply, on the thread that runs it. Measured: the
 * worker's CPU at 150 req/s was the same within noise (9.9-11.1 s against 10.1-10.6 s over 20 s);
 * in five alternated demo pairs, the runs' p99 of measured / predicted fell in every pair (1.83-
 * 1.91 against 1.87-1.99) and runs over 2x their prediction from 0.54-0.93 % to 0.54-0.76 %
 * (docs/benchmarks.md, "Two runs on one core, and the worker's compiler"). `bin/escapement worker` passes it too.
 */
export const WORKER_NODE_FLAGS: readonly string[] = ['--max-opt=1'];

/** Whether this process was started with the serving heap settings. */
export function hasServingNodeFlags(execArgv: readonly string[] = process.execArgv): boolean {
  return SERVING_NODE_FLAGS.every((flag) => execArgv.includes(flag));
}
