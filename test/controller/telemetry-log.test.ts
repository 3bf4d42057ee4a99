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
