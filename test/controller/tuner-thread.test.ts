import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TunerThread } from '../../controller/tuner-thread.js';
import type { SearchJob } from '../../controller/exit-monitor.js';
import { tuneThresholds, type TunerRamp, type TunerResult, type TunerSample } from '../../shared/threshold-tuner.js';

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

const job = (samples: TunerSample[], overrides: SearchJob['overrides'] = {}): SearchJob => ({ samples, ramps: RAMPS, wholeMs: 3.2, overrides });
const inProcess = (jobs: SearchJob[]) => jobs.map((j) => tuneThresholds(j.samples, j.ramps, j.wholeMs, j.overrides));

/** Runs a search on `thread`; resolves with its results and whether they came synchronously. */
function search(thread: TunerThread, jobs: SearchJob[]): Promise<{ results: TunerResult[] | undefined; synchronous: boolean }> {
  return new Promise((resolve) => {
    let returned = false;
    thread.run(jobs, (results) => resolve({ results, synchronous: !returned }));
    returned = true;
  });
}

describe('TunerThread', () => {
  const thread = new TunerThread();
  afterAll(() => thread.close());

  it('runs searches on its thread, answers later (the caller serves on), and answers what tuneThresholds answers', async () => {
    // The built worker (npm run build, as the test command does first).
    expect(thread.inProcessBecause).toBeUndefined();
    for (const jobs of [[job(windowOf(1200, 7), { budget: 0.01, z: 1.645 })], [job(windowOf(400, 11)), job(windowOf(2000, 3), { z: 0 })]]) {
      const answer = search(thread, jobs);
      expect(thread.numPending).toBe(1);
      const { results, synchronous } = await answer;
      expect(synchronous).toBe(false);
      expect(results).toEqual(inProcess(jobs));
      expect(thread.numPending).toBe(0);
    }
  });

  it('keeps several searches apart and answers each with its own results', async () => {
    const a = [job(windowOf(900, 21))];
    const b = [job(windowOf(300, 22), { z: 0 })];
    const [ra, rb] = await Promise.all([search(thread, a), search(thread, b)]);
    expect(ra.results).toEqual(inProcess(a));
    expect(rb.results).toEqual(inProcess(b));
  });

  it('runs the search in-process, at once, when there is no worker to start, with the same answers', async () => {
    const missing = new TunerThread('/nonexistent/tuner-worker.js');
    expect(missing.inProcessBecause).toMatch(/no built worker/);
    const jobs = [job(windowOf(800, 5))];
    expect(await search(missing, jobs)).toEqual({ results: inProcess(jobs), synchronous: true });
    await missing.close();
  });

  it('after close, searches run in-process', async () => {
    const closing = new TunerThread();
    await closing.close();
    expect(closing.inProcessBecause).toBe('closed');
    const jobs = [job(windowOf(300, 9), { z: 0 })];
    expect(await search(closing, jobs)).toEqual({ results: inProcess(jobs), synchronous: true });
  });

  it('moves searches in-process when its thread stalls, answers the stalled one there, says so once', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'escapement-tuner-'));
    const stalled = join(folder, 'stalled-worker.mjs');
    writeFileSync(stalled, 'setInterval(() => {}, 1000);\n'); // takes requests, never answers
    const stalling = new TunerThread(stalled);
    const told: string[] = [];
    stalling.onFallback = (reason) => told.push(reason);
    const jobs = [job(windowOf(500, 13))];
    expect(await search(stalling, jobs)).toEqual({ results: inProcess(jobs), synchronous: false }); // after the 2 s wait
    expect(await search(stalling, jobs)).toEqual({ results: inProcess(jobs), synchronous: true }); // at once
    expect(told).toEqual(['no answer within 2000 ms']);
    expect(stalling.inProcessBecause).toBe('no answer within 2000 ms');
    await stalling.close();
    rmSync(folder, { recursive: true, force: true });
  });

  it('answers the searches still out in-process when closed', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'escapement-tuner-'));
    const stalled = join(folder, 'stalled-worker.mjs');
    writeFileSync(stalled, 'setInterval(() => {}, 1000);\n');
    const closing = new TunerThread(stalled);
    const jobs = [job(windowOf(400, 17))];
    const answer = search(closing, jobs);
    await closing.close();
    expect(await answer).toEqual({ results: inProcess(jobs), synchronous: false });
    rmSync(folder, { recursive: true, force: true });
  });
});
