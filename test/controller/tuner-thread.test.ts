import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TunerThread } from '../../controller/tuner-thread.js';
import { tuneThresholds, type TunerRamp, type TunerSample } from '../../shared/threshold-tuner.js';

const RAMPS: TunerRamp[] = [
  { siteId: 2, upToMs: 0.5, costMs: 0.05 },
  { siteId: 5, upToMs: 1.5, costMs: 0.05 },
  { siteId: 9, upToMs: 2.6, costMs: 0.05 },
];

/** A window of `n` samples from a seeded generator: confident rows mostly agree, some weighted. */
function windowOf(n: number, seed: number): TunerSample[] {
  let state = seed;
  const next = () => (state = (state * 16807) % 2147483647) / 2147483647;
  return Array.from({ length: n }, () => {
    const finalPrediction = Math.floor(next() * 10);
    const confidences = RAMPS.map(() => Math.min(1, 0.4 + next() * 0.7));
    const predictions = confidences.map((c) => (next() < (1 - c) * 0.2 ? (finalPrediction + 1) % 10 : finalPrediction));
    return { confidences, predictions, finalPrediction, weight: next() < 0.3 ? 10 : 1 };
  });
}

describe('TunerThread', () => {
  const thread = new TunerThread();
  afterAll(() => thread.close());

  it('runs the search on its thread and answers what tuneThresholds answers, call after call', () => {
    // The built worker (npm run build, as the test command does first).
    expect(thread.inProcessBecause).toBeUndefined();
    for (const [n, seed] of [
      [1200, 7],
      [400, 11],
      [2000, 3],
    ] as const) {
      const samples = windowOf(n, seed);
      const options = { budget: 0.01, z: 1.645 };
      expect(thread.search(samples, RAMPS, 3.2, options)).toEqual(tuneThresholds(samples, RAMPS, 3.2, options));
    }
  });

  it('runs the search in-process when there is no worker to start, with the same answers', async () => {
    const missing = new TunerThread('/nonexistent/tuner-worker.js');
    expect(missing.inProcessBecause).toMatch(/no built worker/);
    const samples = windowOf(800, 5);
    expect(missing.search(samples, RAMPS, 3.2)).toEqual(tuneThresholds(samples, RAMPS, 3.2));
    await missing.close();
  });

  it('after close, searches run in-process', async () => {
    const closing = new TunerThread();
    await closing.close();
    expect(closing.inProcessBecause).toBe('closed');
    const samples = windowOf(300, 9);
    expect(closing.search(samples, RAMPS, 3.2, { z: 0 })).toEqual(tuneThresholds(samples, RAMPS, 3.2, { z: 0 }));
  });

  it('moves the search in-process when its thread stalls, says so once, and answers the same', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'escapement-tuner-'));
    const stalled = join(folder, 'stalled-worker.mjs');
    writeFileSync(stalled, 'setInterval(() => {}, 1000);\n'); // takes requests, never answers
    const stalling = new TunerThread(stalled);
    const told: string[] = [];
    stalling.onFallback = (reason) => told.push(reason);
    const samples = windowOf(500, 13);
    expect(stalling.search(samples, RAMPS, 3.2)).toEqual(tuneThresholds(samples, RAMPS, 3.2)); // after the 2 s wait
    expect(stalling.search(samples, RAMPS, 3.2)).toEqual(tuneThresholds(samples, RAMPS, 3.2)); // at once
    expect(told).toEqual(['no answer within 2000 ms']);
    expect(stalling.inProcessBecause).toBe('no answer within 2000 ms');
    await stalling.close();
    rmSync(folder, { recursive: true, force: true });
  });
});
