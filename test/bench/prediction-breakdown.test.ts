import { describe, expect, it } from 'vitest';
import { inferErrors } from '../../bench/predictability.js';

const row = (batchSize: number, expectedMs: number, actualMs: number, stages: string, code = '0', type = 'infer') => ({
  action_type: type,
  code,
  batch_size: String(batchSize),
  expected_duration_ms: String(expectedMs),
  actual_duration_ms: String(actualMs),
  start_lateness_ms: '0.1',
  stages,
});

describe('where an INFER prediction error comes from (bench:core)', () => {
  it("splits the action into the run (against its batch size's median run) and the hop around it", () => {
    const rows = [
      row(1, 1.0, 1.2, 'model:1.000'),
      row(1, 1.0, 1.3, 'model:1.000'),
      row(1, 1.0, 2.6, 'model:2.000'), // a run preempted: twice its batch size's median
      row(4, 4.0, 4.2, 'model:4.000'),
      row(4, 4.0, 4.2, 'model:4.000'),
      row(4, 4.0, 9.0, 'model:4.000'), // a hop preempted: the run was as usual
      row(4, 4.0, 4.0, 'model:4.000', '7'), // refused: not counted
      row(1, 1.0, 1.0, '', '0', 'load'),
    ];
    const errors = inferErrors(rows);
    expect(errors.numInferActions).toBe(6);
    expect(errors.servedRunJitterP99Pct).toBeCloseTo(100, 6); // the preempted run
    expect(errors.hopP99Ms).toBeCloseTo(5, 6); // the preempted hop
    expect(errors.hopP50Ms).toBeCloseTo(0.3, 6); // hops 0.2, 0.2, 0.2, 0.3, 0.6, 5
    expect(errors.predictionErrorP99Pct).toBeCloseTo(160, 6);
  });

  it('reads chain stages and leaves the run jitter undefined without a whole-model stage', () => {
    const errors = inferErrors([row(2, 2.0, 2.5, 'segment->2:1.000;final:1.000')]);
    expect(errors.servedRunJitterP99Pct).toBeNaN();
    expect(errors.hopP99Ms).toBeCloseTo(0.5, 6);
  });
});
