import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { EscapementClient, InferResponse, SubmitOptions } from '../../client/escapement-client.js';
import { replayTrace } from '../../loadgen/replay.js';
import { writeReplayReport } from '../../loadgen/replay-report.js';
import { monotonicNowNs } from '../../shared/clock.js';

const scratch = mkdtempSync(join(tmpdir(), 'escapement-replay-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A client whose every answer takes `delayMs`; it records when each request was sent. */
function slowClient(delayMs: number | ((i: number) => number), answer: (i: number) => Partial<InferResponse>) {
  const sentNs: number[] = [];
  const answeredNs: number[] = [];
  const options: SubmitOptions[] = [];
  const client = {
    submit(_model: string, _inputs: unknown, submitOptions: SubmitOptions): Promise<InferResponse> {
      const i = sentNs.length;
      sentNs.push(monotonicNowNs());
      options.push(submitOptions);
      const ms = typeof delayMs === 'number' ? delayMs : delayMs(i);
      return new Promise((resolve) =>
        setTimeout(() => {
          answeredNs.push(monotonicNowNs());
          resolve({ requestId: `r${i}`, status: 'OK', code: 0, outputs: [], clientLatencyMs: ms, ...answer(i) });
        }, ms),
      );
    },
  };
  return { client: client as unknown as EscapementClient, sentNs, answeredNs, options };
}

describe('open-loop replay', () => {
  it('sends on schedule without waiting for answers, and measures latency from the schedule', async () => {
    const { client, sentNs, answeredNs } = slowClient(150, () => ({}));
    const arrivals = Array.from({ length: 20 }, (_, i) => ({ timeMs: i * 10 }));
    const result = await replayTrace(client, { arrivals, model: 'm', sloMs: 1000, inputsFor: () => [] });
    // open loop: requests were sent while the first one was still unanswered (a closed loop sends one, then waits)
    expect(sentNs.filter((t) => t < answeredNs[0]!).length).toBeGreaterThan(1);
    // never early: the last send is at least 190 ms after the first one's schedule (the first may lag)
    expect(sentNs.at(-1)! - sentNs[0]! + result.records[0]!.scheduleLagMs * 1e6).toBeGreaterThanOrEqual(190e6 - 1e6);
    for (const r of result.records) {
      expect(r.latencyMs).toBeGreaterThanOrEqual(149);
      expect(r.scheduleLagMs).toBeGreaterThanOrEqual(0);
    }
  });

  it('writes the per-request CSV, summary, HDR histogram and Locust / perf_analyzer rows', async () => {
    const { client } = slowClient(5, (i) =>
      i % 4 === 0 ? { status: 'REJECTED', code: 24 } : i % 4 === 1 ? { early: true, exitRamp: 3, prediction: 1 } : { prediction: 2 },
    );
    const arrivals = Array.from({ length: 40 }, (_, i) => ({ timeMs: i * 2 }));
    const result = await replayTrace(client, { arrivals, model: 'm', sloMs: 100, inputsFor: () => [], labelFor: () => 1, referenceFor: () => 2 });
    const summary = writeReplayReport(join(scratch, 'run'), result, 'm');
    expect(summary).toMatchObject({ numRequests: 40, numOk: 30, numRejected: 10, numErrors: 0 });
    expect(summary.sloAttainment).toBeCloseTo(0.75, 6);
    expect(summary.exitFraction).toBeCloseTo(10 / 30, 6);
    expect(summary.exitFractions['3']).toBeCloseTo(10 / 30, 6);
    expect(summary.agreement).toBeCloseTo(20 / 30, 6); // early answers said 1, the full model 2
    expect(summary.accuracy).toBeCloseTo(10 / 30, 6);
    const csv = readFileSync(join(scratch, 'run', 'requests.csv'), 'utf8')
      .trim()
      .split('\n');
    expect(csv[0]).toBe('arrival_ns,request_id,model,slo_ms,deadline_ns,complete_ns,latency_ms,status,exit_ramp,batch_size,worker,correct');
    expect(csv).toHaveLength(41);
    expect(readFileSync(join(scratch, 'run', 'locust_stats.csv'), 'utf8')).toMatch(/^Type,Name,Request Count,Failure Count,Median Response Time/);
    expect(readFileSync(join(scratch, 'run', 'perf_analyzer.csv'), 'utf8')).toMatch(/^Concurrency,Inferences\/Second,.*p99 latency\n0,/);
    expect(JSON.parse(readFileSync(join(scratch, 'run', 'summary.json'), 'utf8')).numRequests).toBe(40);
    expect(readFileSync(join(scratch, 'run', 'latency.hdr'), 'utf8').length).toBeGreaterThan(10);
  });

  it('judges the SLO where the answer lands: an OK that reaches the client late is a miss', async () => {
    // the server says OK every time, but odd answers take 60 ms against a 30 ms SLO
    const { client, sentNs, options } = slowClient(
      (i) => (i % 2 === 1 ? 60 : 2),
      () => ({}),
    );
    const arrivals = Array.from({ length: 10 }, (_, i) => ({ timeMs: i * 5 }));
    const result = await replayTrace(client, { arrivals, model: 'm', sloMs: 30, inputsFor: () => [] });
    const summary = writeReplayReport(join(scratch, 'late'), result, 'm');
    expect(summary).toMatchObject({ numRequests: 10, numOk: 5, numMissed: 5, numLate: 5 });
    expect(summary.sloAttainment).toBeCloseTo(0.5, 6);
    expect(summary.goodputRps).toBeCloseTo(5 / result.durationSec, 6);
    // the controller is given the deadline counted from the scheduled time, not from the send
    for (const [i, r] of result.records.entries()) {
      expect(options[i]!.sloMs).toBeUndefined();
      expect(options[i]!.deadlineLocalNs).toBe(Math.round(r.deadlineNs));
      expect(r.deadlineNs - r.arrivalNs).toBeCloseTo(30e6, 0);
      expect(options[i]!.deadlineLocalNs!).toBeLessThanOrEqual(sentNs[i]! + 30e6);
    }
  });
});
