import { describe, expect, it } from 'vitest';
import { waitUntilNs } from '../../loadgen/send-pacing.js';
import { monotonicNowNs } from '../../shared/clock.js';

// (its CPU share while pacing sends 1.2 ms apart is a benchmark output: bench:core, `sendPacingCpuShare`)
describe('waitUntilNs', () => {
  it('never resolves before the send time and reports how late it resolved', async () => {
    for (const aheadNs of [0, 150_000, 700_000, 2_300_000, -1_000_000]) {
      const dueNs = monotonicNowNs() + aheadNs;
      const lagNs = await waitUntilNs(dueNs);
      const nowNs = monotonicNowNs();
      expect(nowNs).toBeGreaterThanOrEqual(dueNs);
      expect(lagNs).toBeGreaterThanOrEqual(0);
      expect(lagNs).toBeLessThanOrEqual(nowNs - dueNs);
    }
  });
});
