/**
 * How well the planner predicts its INFERs, per model and stage, over the most recent ones: what
 * `escapement status` reports (and /metrics could). Fed with the action records the core returns;
 * decides nothing.
 *
 * Per INFER it compares:
 * - `total`: the action's measured duration against the duration it was planned with;
 * - each stage the worker reports (`model`, or a chain's `segment->SITE` and `final`, an unfused
 *   head counted with its segment) against its predicted share;
 * - `start`: how late the action started against its planned start (ms, not %);
 * - `hop`: the part of the duration outside every stage (the worker's thread hand-offs, copies;
 *   ms), which no stage prediction can see.
 */
import type { StageTiming } from '../shared/protocol.js';

/** The last this many INFERs per model and stage. */
const WINDOW = 2048;

/** Predicted against actual per model and stage is defined where `escapement status` is. */
import type { StageError } from '../shared/status-schema.js';

export interface PredictionSample {
  model: string;
  expectedDurationNs: number;
  actualDurationNs: number;
  startLatenessNs: number;
  expectedStages: readonly StageTiming[];
  stages: readonly StageTiming[];
}

class Ring {
  private readonly values: number[] = [];
  private next = 0;

  push(value: number): void {
    if (this.values.length < WINDOW) this.values.push(value);
    else this.values[this.next] = value;
    this.next = (this.next + 1) % WINDOW;
  }

  get size(): number {
    return this.values.length;
  }

  quantile(p: number, f: (v: number) => number = (v) => v): number {
    const sorted = this.values.map(f).sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
  }
}

/** A chain's head stage `rampSITE` belongs to the segment ending at SITE. */
const stageKey = (name: string): string => (name.startsWith('ramp') ? `segment->${name.slice(4)}` : name);

function byStage(stages: readonly StageTiming[]): Map<string, number> {
  const totals = new Map<string, number>();
  for (const s of stages) totals.set(stageKey(s.name), (totals.get(stageKey(s.name)) ?? 0) + s.durationNs);
  return totals;
}

export class PredictionErrors {
  private readonly rings = new Map<string, { model: string; stage: string; unit: '%' | 'ms'; ring: Ring }>();

  private ring(model: string, stage: string, unit: '%' | 'ms'): Ring {
    const key = `${model}\u0000${stage}`;
    let entry = this.rings.get(key);
    if (!entry) {
      entry = { model, stage, unit, ring: new Ring() };
      this.rings.set(key, entry);
    }
    return entry.ring;
  }

  private relative(model: string, stage: string, expectedNs: number, actualNs: number): void {
    if (expectedNs > 0) this.ring(model, stage, '%').push((100 * (actualNs - expectedNs)) / expectedNs);
  }

  observe(sample: PredictionSample): void {
    const { model } = sample;
    this.relative(model, 'total', sample.expectedDurationNs, sample.actualDurationNs);
    this.ring(model, 'start', 'ms').push(sample.startLatenessNs / 1e6);
    const expected = byStage(sample.expectedStages);
    const actual = byStage(sample.stages);
    let inStagesNs = 0;
    for (const [stage, ns] of actual) {
      inStagesNs += ns;
      const predicted = expected.get(stage);
      if (predicted !== undefined) this.relative(model, stage, predicted, ns);
    }
    if (actual.size > 0) this.ring(model, 'hop', 'ms').push((sample.actualDurationNs - inStagesNs) / 1e6);
  }

  summary(): StageError[] {
    return [...this.rings.values()].map(({ model, stage, unit, ring }) => ({
      model,
      stage,
      unit,
      numSamples: ring.size,
      p50: ring.quantile(0.5, Math.abs),
      p99: ring.quantile(0.99, Math.abs),
      bias: ring.quantile(0.5),
    }));
  }
}
