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

/** Whether this process was started with the serving heap settings. */
export function hasServingNodeFlags(execArgv: readonly string[] = process.execArgv): boolean {
  return SERVING_NODE_FLAGS.every((flag) => execArgv.includes(flag));
}
