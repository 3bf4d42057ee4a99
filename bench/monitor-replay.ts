/**
 * One model's exit monitor replayed offline on recorded confidences (bench/tuner-replay.ts): the
 * requests of a stream arrive in batches; each batch's rows exit at the first active ramp whose
 * threshold they reach, compact mode's monitoring sample of exits runs on to the end (as the
 * worker reports it: a row that left has no later confidences and no final answer), the monitor
 * folds the feedback in and may re-tune or change its ramps before the next batch. What the
 * answers it let through agreed with, what they saved, and the oracle's best per tenth in
 * hindsight, so tuner settings can be compared on many replays without serving.
 */
import type { RampConfidences } from '../loadgen/ramp-confidences.js';
import { oracleSchedule, tunerRampsOf } from '../cli/oracle-schedule.js';
import type { EarlyExitSection } from '../shared/early-exit-manifest.js';
import { seededRandom } from '../shared/seeded-random.js';
import type { EarlyExitPlan, ExitFeedback } from '../shared/protocol.js';
import { exitMonitorFor } from '../controller/model-spec.js';
import { monitoringFraction } from '../controller/exit-control.js';
import type { ExitMonitorOptions, RampSetChange, ThresholdChange } from '../controller/exit-monitor.js';

const NUM_TENTHS = 10;

export interface TunerVariant {
  name: string;
  overrides: Partial<ExitMonitorOptions>;
  /** The share of exits labelled, from the monitor's state (window size, drift suspected, effective exits); default: compact mode's (exit-control.ts). */
  labelling?: (numSamples: number, suspectsDrift: boolean, effectiveExits: number) => number;
}

export interface Stream {
  name: string;
  /** Every ramp of the package (any order), on every request. */
  confidences: RampConfidences;
  /** Requests [0, numWarmup) are the warm-up, [numWarmup, end) are measured. */
  numWarmup: number;
}

export interface StreamResult {
  agreement: number;
  worstTenth: number;
  tenthsBelow99: number;
  exitFraction: number;
  /** Of the measured exits, the share that ran on to the end to be labelled (compute the exits did not save). */
  labelledExitShare: number;
  savingMs: number;
}

export interface ReplayOptions {
  seed: number;
  /** Rows per batch, drawn uniformly from 1..maxBatch. */
  maxBatch: number;
  /** Called with every change the monitor makes (request index, change). */
  onChange?: (index: number, change: ThresholdChange | RampSetChange) => void;
}

/** What one replay of a stream gave: per measured request, whether its answer agreed and what it saved. */
export function replayMonitor(ee: EarlyExitSection, stream: Stream, variant: TunerVariant, options: ReplayOptions): StreamResult {
  const all = stream.confidences;
  const columnOf = new Map(all.siteIds.map((id, k) => [id, k]));
  const { ramps: sites, wholeMs } = tunerRampsOf(ee, all.siteIds);
  const siteOf = new Map(sites.map((s) => [s.siteId, s]));
  const initial = ee.chosenRamps.map((siteId) => ({ siteId, threshold: ee.initialThresholds[siteId]! }));
  const monitor = exitMonitorFor(ee, 'replayed', initial, 'online', undefined, variant.overrides);
  const random = seededRandom(options.seed);
  const n = all.finalPredictions.length;
  const measured = n - stream.numWarmup;
  const tenth = (i: number) => Math.min(NUM_TENTHS - 1, Math.floor(((i - stream.numWarmup) / measured) * NUM_TENTHS));
  const tenths = Array.from({ length: NUM_TENTHS }, () => ({ answers: 0, agree: 0 }));
  let exits = 0;
  let labelledExits = 0;
  let savedMs = 0;
  // Request ids as the controller numbers them (the monitoring sample is every k-th id).
  const idOffset = Math.floor(random() * 1000);
  for (let start = 0; start < n;) {
    const size = Math.min(n - start, 1 + Math.floor(random() * options.maxBatch));
    const siteIds = monitor.activeSiteIds;
    const thresholds = monitor.currentThresholds;
    const labelling =
      variant.labelling ?? ((samples: number, suspects: boolean, effective: number) => monitoringFraction('compact', samples, suspects, effective));
    const fraction = labelling(monitor.numSamples, monitor.suspectsDrift, monitor.effectiveExitSamples);
    const every = Math.max(1, Math.round(1 / fraction));
    const rows = Array.from({ length: size }, (_, r) => start + r);
    const keepRows = rows.flatMap((i, r) => ((i + idOffset) % every === 0 ? [r] : []));
    const plan: EarlyExitPlan = {
      mode: 'compact',
      ramps: siteIds.map((siteId, k) => ({ siteId, threshold: thresholds[k]! })),
      keepRows,
      monitorFraction: 1 / every,
    };
    const feedback: ExitFeedback = { siteIds, confidences: siteIds.map(() => []), predictions: siteIds.map(() => []), finalPredictions: [] };
    for (const [r, i] of rows.entries()) {
      const final = all.finalPredictions[i]!;
      const exitAt = siteIds.findIndex((id, k) => all.confidences[columnOf.get(id)!]![i]! >= thresholds[k]!);
      const runsToEnd = exitAt < 0 || keepRows.includes(r);
      siteIds.forEach((id, k) => {
        const seen = runsToEnd || k <= exitAt;
        feedback.confidences[k]!.push(seen ? all.confidences[columnOf.get(id)!]![i]! : Number.NaN);
        feedback.predictions[k]!.push(seen ? all.predictions[columnOf.get(id)!]![i]! : -1);
      });
      feedback.finalPredictions.push(runsToEnd ? final : -1);
      if (i < stream.numWarmup) continue;
      const answer = exitAt < 0 ? final : all.predictions[columnOf.get(siteIds[exitAt]!)!]![i]!;
      const t = tenths[tenth(i)]!;
      t.answers++;
      if (answer === final) t.agree++;
      if (exitAt >= 0) {
        exits++;
        if (runsToEnd) labelledExits++;
        const headsMs = siteIds.slice(0, exitAt + 1).reduce((sum, id) => sum + siteOf.get(id)!.costMs, 0);
        savedMs += wholeMs - (siteOf.get(siteIds[exitAt]!)!.upToMs + headsMs);
      } else {
        savedMs -= siteIds.reduce((sum, id) => sum + siteOf.get(id)!.costMs, 0);
      }
    }
    // As ExitControl.observe does: fold the feedback in, then consider the ramp set.
    const thresholdChange = monitor.observe(plan, feedback);
    const rampChange = monitor.maybeAdjust();
    for (const change of [thresholdChange, rampChange]) if (change) options.onChange?.(start, change);
    start += size;
  }
  const agreements = tenths.map((t) => t.agree / Math.max(1, t.answers));
  return {
    agreement: tenths.reduce((s, t) => s + t.agree, 0) / measured,
    worstTenth: Math.min(...agreements),
    tenthsBelow99: agreements.filter((a) => a < 0.99).length,
    exitFraction: exits / measured,
    labelledExitShare: labelledExits / Math.max(1, exits),
    savingMs: savedMs / measured,
  };
}

/** The oracle per tenth (the package's ramps, thresholds in hindsight within `budget`): its exits and saving. */
export function oracleOf(ee: EarlyExitSection, stream: Stream, budget: number): { exitFraction: number; savingMs: number } {
  const all = stream.confidences;
  const columns = ee.chosenRamps.map((id) => all.siteIds.indexOf(id));
  const measured: RampConfidences = {
    siteIds: [...ee.chosenRamps],
    confidences: columns.map((k) => all.confidences[k]!.subarray(stream.numWarmup)),
    predictions: columns.map((k) => all.predictions[k]!.subarray(stream.numWarmup)),
    finalPredictions: all.finalPredictions.subarray(stream.numWarmup),
  };
  const n = measured.finalPredictions.length;
  const tenthOf = (i: number) => Math.min(NUM_TENTHS - 1, Math.floor((i / n) * NUM_TENTHS));
  const { ramps, wholeMs } = tunerRampsOf(ee, ee.chosenRamps);
  const schedule = oracleSchedule(measured, tenthOf, NUM_TENTHS, ramps, wholeMs, budget);
  let exits = 0;
  let savedMs = 0;
  for (let i = 0; i < n; i++) {
    const thresholds = schedule[tenthOf(i)]!;
    const at = ramps.findIndex((_, k) => measured.confidences[k]![i]! >= thresholds[k]!);
    const headsMs = ramps.slice(0, at < 0 ? ramps.length : at + 1).reduce((sum, r) => sum + r.costMs, 0);
    if (at >= 0) exits++;
    savedMs += at < 0 ? -headsMs : wholeMs - (ramps[at]!.upToMs + headsMs);
  }
  return { exitFraction: exits / n, savingMs: savedMs / n };
}
