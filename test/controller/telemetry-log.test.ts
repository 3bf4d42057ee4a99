import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { REQUEST_LOG_COLUMNS, TelemetryLog } from '../../controller/telemetry-log.js';

const row = (requestId: number) => ({ requestId, model: 'm', status: 'OK' as const, code: 0, arrivalNs: 1e6, deadlineNs: 41e6, completeNs: 5e6 });
const settle = () => new Promise((r) => setTimeout(r, 50));

describe('TelemetryLog', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
  const scratch = () => {
    const dir = mkdtempSync(join(tmpdir(), 'telemetry-'));
    dirs.push(dir);
    return dir;
  };

  it('writes a header and a row per request', async () => {
    const dir = scratch();
    const log = new TelemetryLog(dir, 0);
    log.request(row(7));
    log.request({ ...row(8), predictedCompleteNs: 4e6, rowsAhead: 3 });
    await log.close();
    const lines = readFileSync(join(dir, 'requests.csv'), 'utf8').trim().split('\n');
    expect(lines[0]).toBe(REQUEST_LOG_COLUMNS.join(','));
    expect(lines[1]!.split(',')[1]).toBe('7');
    const admitted = Object.fromEntries(lines[2]!.split(',').map((v, i) => [REQUEST_LOG_COLUMNS[i], v]));
    expect(admitted.predicted_complete_ms).toBe('4.0000');
    expect(admitted.rows_ahead).toBe('3');
    expect(log.stoppedBecause).toBeUndefined();
  });

  it('lists every stage of a chain run, a stage no row reached with 0 rows against its prediction', async () => {
    const dir = scratch();
    const log = new TelemetryLog(dir, 0);
    const stage = (name: string, ms: number, numRows: number) => ({ name, durationNs: ms * 1e6, numRows });
    const record = {
      actionId: 9,
      actionType: 'infer' as const,
      workerId: 'w0',
      model: 'm',
      code: 0,
      batchSize: 1,
      numRequests: 1,
      expectedStartNs: 1e6,
      expectedDurationNs: 4e6,
      actualStartNs: 1e6,
      actualDurationNs: 1e6,
      expectedCompleteNs: 5e6,
      actualCompleteNs: 2e6,
      receivedNs: 1e6,
      sentNs: 2e6,
      plannedNs: 1e6,
      latestNs: 6e6,
      expectedStages: [stage('segment->2', 1, 1), stage('segment->5', 1.5, 0.8), stage('final', 1.5, 0.6)],
      // the one row exited at the first ramp: the worker reports the stage it ran
      stages: [stage('segment->2', 1, 1)],
    };
    log.action(record, 3e6);
    // a run the worker took whole reports the model, not the chain's stages: nothing is added
    log.action({ ...record, actionId: 10, stages: [stage('model', 3, 1)], expectedStages: [stage('model', 4, 1)] }, 3e6);
    await log.close();
    const [header, chain, whole] = readFileSync(join(dir, 'actions.csv'), 'utf8').trim().split('\n');
    const column = header!.split(',').indexOf('stage_rows');
    expect(chain!.split(',')[column]).toBe('segment->2:1/1.0;segment->5:0/0.8;final:0/0.6');
    expect(whole!.split(',')[column]).toBe('model:1/1.0');
  });

  it('stops every log once on a full disk, says so once, and counts what it drops, without throwing', async () => {
    const dir = scratch();
    // /dev/full answers every write with ENOSPC, as a full disk does
    symlinkSync('/dev/full', join(dir, 'requests.csv'));
    const failures: string[] = [];
    const log = new TelemetryLog(dir, 0, (message) => failures.push(message));
    log.request(row(1));
    await settle();
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatch(/requests\.csv: ENOSPC/);
    expect(log.stoppedBecause).toMatch(/ENOSPC/);
    for (let i = 2; i < 12; i++) log.request(row(i));
    log.thresholds({ model: 'm', reason: 'periodic', before: [0.9], after: [0.8], expectedSavingMs: 0, disagreementUpperBound: 0, numSamples: 1 }, 2e6);
    await settle();
    expect(failures).toHaveLength(1);
    expect(log.droppedRows).toBe(11);
    await log.close();
  });
});
