import { describe, expect, it } from 'vitest';
import { PredictionErrors } from '../../controller/prediction-errors.js';

const MS = 1e6;

describe('PredictionErrors', () => {
  it('reports each stage against its prediction, the start lateness and the hop outside the stages', () => {
    const errors = new PredictionErrors();
    for (let i = 0; i < 100; i++) {
      errors.observe({
        model: 'm',
        expectedDurationNs: 10 * MS,
        actualDurationNs: 12 * MS,
        startLatenessNs: 0.5 * MS,
        expectedStages: [
          { name: 'segment->2', durationNs: 4 * MS },
          { name: 'final', durationNs: 6 * MS },
        ],
        // the head ran unfused: it counts with its segment
        stages: [
          { name: 'segment->2', durationNs: 4.5 * MS },
          { name: 'ramp2', durationNs: 0.5 * MS },
          { name: 'final', durationNs: 6 * MS },
        ],
      });
    }
    const byStage = Object.fromEntries(errors.summary().map((e) => [e.stage, e]));
    expect(byStage.total).toMatchObject({ unit: '%', numSamples: 100 });
    expect(byStage.total!.p50).toBeCloseTo(20, 6);
    expect(byStage['segment->2']!.p99).toBeCloseTo(25, 6);
    expect(byStage.final!.p50).toBeCloseTo(0, 6);
    expect(byStage.start).toMatchObject({ unit: 'ms' });
    expect(byStage.start!.p50).toBeCloseTo(0.5, 6);
    expect(byStage.hop!.bias).toBeCloseTo(1, 6); // 12 ms measured, 11 ms in stages
    expect(byStage.ramp2).toBeUndefined();
  });

  it('keeps a bias apart from the spread: a run always 10 % slow has bias +10 %', () => {
    const errors = new PredictionErrors();
    for (let i = 0; i < 50; i++)
      errors.observe({ model: 'm', expectedDurationNs: 10 * MS, actualDurationNs: 11 * MS, startLatenessNs: 0, expectedStages: [], stages: [] });
    const total = errors.summary().find((e) => e.stage === 'total')!;
    expect(total.bias).toBeCloseTo(10, 6);
    expect(errors.summary().some((e) => e.stage === 'hop')).toBe(false); // no stages reported
  });
});
