/**
 * Teardown checks for integration tests: every process a test started has exited, and the test
 * process holds no more sockets or child-process handles than before it started. (Timers are not
 * counted: `getActiveResourcesInfo` does not report them one per timer, and vitest keeps its own.
 * ZeroMQ sockets are not libuv handles and do not show at all.)
 */
import { afterAll, beforeAll, expect } from 'vitest';
import type { LocalCluster } from '../../cluster/local-cluster.js';

const WATCHED = new Set(['TCPSocketWrap', 'TCPServerWrap', 'PipeWrap', 'ProcessWrap', 'UDPWrap', 'TTYWrap']);

export type ResourceCounts = Record<string, number>;

export function activeResources(): ResourceCounts {
  const counts: ResourceCounts = {};
  for (const name of process.getActiveResourcesInfo()) if (WATCHED.has(name)) counts[name] = (counts[name] ?? 0) + 1;
  return counts;
}

/** What is active now beyond `before` (an empty object when nothing leaked). */
export function resourcesBeyond(before: ResourceCounts): ResourceCounts {
  const extra: ResourceCounts = {};
  for (const [name, n] of Object.entries(activeResources())) if (n > (before[name] ?? 0)) extra[name] = n - (before[name] ?? 0);
  return extra;
}

/** Pids of `cluster`'s processes that are still alive (after `stop()`, none should be). */
export function livePids(cluster: LocalCluster): number[] {
  return cluster.pids().filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Registers teardown checks for the enclosing `describe`: call it before the block's own hooks, so
 * its `afterAll` runs after theirs (vitest runs after-hooks in reverse order). `clusters` is read
 * at teardown.
 */
export function checkLeaks(clusters: () => (LocalCluster | undefined)[]): void {
  let before: ResourceCounts = {};
  beforeAll(() => {
    before = activeResources();
  });
  afterAll(async () => {
    for (const cluster of clusters()) if (cluster) expect(livePids(cluster), `processes still alive after stop():\n${cluster.logTail()}`).toEqual([]);
    // closed sockets and cleared timers release their handles within a turn or two
    let extra = resourcesBeyond(before);
    for (let i = 0; i < 20 && Object.keys(extra).length > 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      extra = resourcesBeyond(before);
    }
    expect(extra, 'handles left open by the test').toEqual({});
  });
}
