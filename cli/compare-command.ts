/**
 * `escapement compare`: the same replay (trace slice, seed, inputs) without and with ramps, under
 * the deadline-aware planner and under the FIFO batching baseline, side by side. Against a running
 * cluster with --controller (switched between variants with `configure` messages), otherwise on a
 * local controller with two workers, as the demo does.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EscapementClient } from '../client/escapement-client.js';
import { formatTable } from '../loadgen/latency-summary.js';
import { replayTrace } from '../loadgen/replay.js';
import { writeComparisonPlots, type PlotSeries } from '../loadgen/latency-plots.js';
import { NUM_WINDOWS, windowOfArrival, windowTable, writeReplayReport, type ReplaySummary } from '../loadgen/replay-report.js';
import { rampConfidences } from '../loadgen/ramp-confidences.js';
import type { Tensor } from '../shared/tensor.js';
import { oracleSchedule, tunerRampsOf } from './oracle-schedule.js';
import { loadModelEntry, type ModelEntry } from '../shared/model-manifest.js';
import type { ExitMode } from '../shared/protocol.js';
import { LocalCluster } from '../cluster/local-cluster.js';
import { sloFor } from '../loadgen/slo-rule.js';
import { datasetFeeder, hostSpeedFor, traceFor, warmupInputs, progressPrinter, summaryRow, type ReplayArgs } from './replay-command.js';

export interface CompareArgs extends Omit<ReplayArgs, 'controller' | 'json'> {
  controller: string | undefined;
  exitMode: ExitMode;
  /** Include the FIFO baseline. */
  baseline: boolean;
  /** Include the planner with ramps at the package's thresholds, never re-tuned (a baseline for the online tuner). */
  staticThresholds?: boolean;
  /** Include the planner with ramps at the oracle's per-window thresholds (cli/oracle-schedule.ts). */
  oracle?: boolean;
  /**
   * Include the oracle at this smaller budget per window too (for example 0.0035): at best what a
   * tuner reaches that keeps nearly every window within the package's budget (docs/traces-and-replay.md).
   */
  safeOracleBudget?: number;
  /** Include the planner with ramps tuned online but the package's ramp set fixed (no ramp adjustment). */
  fixedRamps?: boolean;
  /** Include the online tuner spending only this share of the accuracy budget (ExitMonitorOptions.budgetShare). */
  tuningBudgetShare?: number;
  /** Run the variants last to first (bench:adapt runs each drift both ways: the host's drift over a run cancels). */
  reverseVariants?: boolean;
  batchTimeoutMs: number;
  /** fifo baseline: queue bound in full batches per model (0: unbounded). */
  maxEnqueuedBatches?: number;
  jsonFile: string | undefined;
  verbose: boolean;
  /** Seconds of the slice's start replayed, unmeasured, before each variant (0: none). Default 3. */
  warmupS?: number;
  /** A running controller's admin token (compare reconfigures it between variants). */
  adminToken?: string;
  /** The local controller's telemetry (requests.csv, actions.csv) for every variant in turn. */
  logDir?: string;
}

interface Variant {
  key:
    | 'withoutRamps'
    | 'withRamps'
    | 'withStaticRamps'
    | 'withOracleRamps'
    | 'withSafeOracleRamps'
    | 'withFixedRamps'
    | 'withSharedBudgetRamps'
    | 'baseline'
    | 'baselineWithRamps';
  label: string;
  policy: 'deadline' | 'fifo';
  exitMode: ExitMode | 'off';
  /** Exit thresholds: tuned online (the default), the package's, or the oracle's schedule (which starts from the package's). */
  thresholds?: 'static' | 'oracle';
  /** The oracle's budget per window, where not the package's accuracy budget. */
  oracleBudget?: number;
  /** With `--fixed-ramps`: ramp adjustment off for this variant (on for the others). */
  fixedRamps?: boolean;
  /** With `--tuning-budget-share`: the tuner's share of the budget for this variant (the whole budget for the others). */
  budgetShare?: number;
}

/** The oracle's thresholds per window of the run, per budget, from every chosen ramp's confidence on every request. */
async function oracleFor(entry: ModelEntry, inputsFor: (i: number) => Tensor[], arrivals: readonly { timeMs: number }[], extraBudgets: readonly number[]) {
  const ee = entry.manifest.earlyExit;
  if (!ee) throw new Error(`--oracle needs an early-exit package; ${entry.manifest.name} has no ramps`);
  process.stderr.write(`compare: every ramp's confidence on the run's ${arrivals.length} requests, for the oracle ...\n`);
  const confidences = await rampConfidences(entry, ee.chosenRamps, inputsFor, arrivals.length);
  const lastMs = arrivals.at(-1)?.timeMs ?? 0;
  const windowOf = (i: number) => windowOfArrival(arrivals[i]!.timeMs * 1e6, lastMs * 1e6);
  const { ramps, wholeMs } = tunerRampsOf(ee, ee.chosenRamps);
  const scheduleAt = (budget: number) => oracleSchedule(confidences, windowOf, NUM_WINDOWS, ramps, wholeMs, budget);
  const schedules = new Map([ee.selection.accuracyBudget, ...extraBudgets].map((budget) => [budget, scheduleAt(budget)]));
  return { schedules, budget: ee.selection.accuracyBudget, windowOf, siteIds: ee.chosenRamps };
}

/** Agreement a window must keep (the accuracy budget, 1 %). */
const WINDOW_AGREEMENT = 0.99;

export async function runCompare(args: CompareArgs): Promise<number> {
  const entry = loadModelEntry(args.modelDir, args.model);
  const trace = traceFor({ ...args, ...(await hostSpeedFor(args)) });
  for (const note of trace.notes) process.stderr.write(`${note}\n`);
  const arrivals = trace.arrivals;
  const sloMs = sloFor(entry, args.sloMs, args.sloFactor, 40);
  const feeder = args.dataset ? await datasetFeeder(entry, args.dataset, arrivals.length, args.drift) : undefined;
  if (!feeder) throw new Error('compare needs --dataset: agreement and accuracy are measured on real inputs');
  const variants: Variant[] = [
    { key: 'withoutRamps', label: 'planner, no ramps', policy: 'deadline', exitMode: 'off' },
    { key: 'withRamps', label: `planner, ramps (${args.exitMode})`, policy: 'deadline', exitMode: args.exitMode },
    ...(args.staticThresholds
      ? [
          {
            key: 'withStaticRamps' as const,
            label: `planner, ramps (${args.exitMode}), static thresholds`,
            policy: 'deadline' as const,
            exitMode: args.exitMode,
            thresholds: 'static' as const,
          },
        ]
      : []),
    ...(args.fixedRamps
      ? [
          {
            key: 'withFixedRamps' as const,
            label: `planner, ramps (${args.exitMode}), no ramp adjustment`,
            policy: 'deadline' as const,
            exitMode: args.exitMode,
            fixedRamps: true,
          },
        ]
      : []),
    ...(args.oracle
      ? [
          {
            key: 'withOracleRamps' as const,
            label: `planner, ramps (${args.exitMode}), oracle thresholds`,
            policy: 'deadline' as const,
            exitMode: args.exitMode,
            thresholds: 'oracle' as const,
          },
        ]
      : []),
    ...(args.tuningBudgetShare !== undefined
      ? [
          {
            key: 'withSharedBudgetRamps' as const,
            label: `planner, ramps (${args.exitMode}), tuner at ${(100 * args.tuningBudgetShare).toFixed(0)} % of the budget`,
            policy: 'deadline' as const,
            exitMode: args.exitMode,
            budgetShare: args.tuningBudgetShare,
          },
        ]
      : []),
    ...(args.safeOracleBudget !== undefined
      ? [
          {
            key: 'withSafeOracleRamps' as const,
            label: `planner, ramps (${args.exitMode}), oracle thresholds at ${(100 * args.safeOracleBudget).toFixed(2)} %`,
            policy: 'deadline' as const,
            exitMode: args.exitMode,
            thresholds: 'oracle' as const,
            oracleBudget: args.safeOracleBudget,
          },
        ]
      : []),
    ...(args.baseline
      ? [
          { key: 'baseline' as const, label: 'fifo, no ramps', policy: 'fifo' as const, exitMode: 'off' as const },
          { key: 'baselineWithRamps' as const, label: `fifo, ramps (${args.exitMode})`, policy: 'fifo' as const, exitMode: args.exitMode },
        ]
      : []),
  ];

  if (args.reverseVariants) variants.reverse();
  const safeBudgets = args.safeOracleBudget !== undefined ? [args.safeOracleBudget] : [];
  const oracle = args.oracle || args.safeOracleBudget !== undefined ? await oracleFor(entry, feeder.inputsFor, arrivals, safeBudgets) : undefined;

  if (args.controller && args.logDir) throw new Error('--log-dir applies to the local cluster only; give the running controller its own --log-dir');
  const controllerArgs = args.logDir ? ['--log-dir', args.logDir] : [];
  const cluster = args.controller
    ? undefined
    : await LocalCluster.start({ numWorkers: 2, modelDir: args.modelDir, preload: [args.model], verbose: args.verbose, controllerArgs });
  const client = await EscapementClient.connect(args.controller ?? cluster!.clientUrl);
  const summaries: Partial<Record<Variant['key'], ReplaySummary>> = {};
  const plotSeries: PlotSeries[] = [];
  let failures = 0;
  try {
    if (cluster) await cluster.waitUntilServing(client, [args.model]);
    process.stderr.write(
      `compare: ${arrivals.length} requests over ${((arrivals.at(-1)?.timeMs ?? 0) / 1000).toFixed(1)} s per variant, SLO ${sloMs.toFixed(1)} ms\n`,
    );
    const warmup = arrivals.filter((a) => a.timeMs < (args.warmupS ?? 3) * 1000);
    const warmupFeed = warmupInputs(feeder.inputsFor, arrivals.length, warmup.length, feeder.numInputs);
    if (warmup.length > 0 && warmupFeed.note) process.stderr.write(`${warmupFeed.note}\n`);
    for (const variant of variants) {
      process.stderr.write(`${variant.label} ...${warmup.length > 0 ? ` (after ${warmup.length} warm-up requests, not measured)` : ''}\n`);
      const admin = args.adminToken ? { adminToken: args.adminToken } : {};
      await client.configure({
        policy: variant.policy,
        batchTimeoutMs: args.batchTimeoutMs,
        ...(args.maxEnqueuedBatches !== undefined ? { maxEnqueuedBatches: args.maxEnqueuedBatches } : {}),
        exitMode: variant.exitMode,
        thresholds: variant.thresholds === undefined ? 'online' : 'static',
        ...(args.fixedRamps ? { adjustRamps: !variant.fixedRamps } : {}),
        ...(args.tuningBudgetShare !== undefined ? { tuningBudgetShare: variant.budgetShare ?? 1 } : {}),
        ...admin,
      });
      // Each variant is measured in its steady state: the slice's first seconds are replayed
      // once, unmeasured, under the variant's own configuration. Fresh processes run slower for
      // a while (JIT, duration estimates converging), which only the first variant would pay,
      // and a ramp configuration starts fully monitored until its thresholds are tuned on
      // served data. The warm-up's inputs are not the measured ones (the tuner would have seen
      // them). --warmup-s 0 measures those starts instead.
      if (warmup.length > 0) await replayTrace(client, { arrivals: warmup, model: args.model, sloMs, inputsFor: warmupFeed.inputsFor });
      // The oracle's thresholds change at each window's first request (configure goes ahead of it on the same socket).
      let beforeSend: ((i: number) => void) | undefined;
      if (variant.thresholds === 'oracle') {
        const schedule = oracle!.schedules.get(variant.oracleBudget ?? oracle!.budget)!;
        const fix = (k: number) => client.configure({ fixedThresholds: { model: args.model, thresholds: schedule[k]! }, ...admin });
        await fix(0);
        let current = 0;
        beforeSend = (i) => {
          const k = oracle!.windowOf(i);
          if (k === current) return;
          current = k;
          fix(k).catch((err: Error) => {
            process.stderr.write(`compare: the oracle's thresholds for window ${k} were refused: ${err.message}\n`);
            failures++;
          });
        };
      }
      const result = await replayTrace(client, {
        arrivals,
        model: args.model,
        sloMs,
        inputsFor: feeder.inputsFor,
        labelFor: feeder.labelFor,
        referenceFor: feeder.referenceFor,
        onProgress: progressPrinter(),
        ...(beforeSend ? { beforeSend } : {}),
      });
      const summary = writeReplayReport(join(args.out, variant.key), result, args.model);
      summaries[variant.key] = summary;
      plotSeries.push({ label: variant.label, records: result.records });
      failures += summary.numErrors + result.records.filter((r) => r === undefined).length;
    }
  } finally {
    await client.close();
    await cluster?.stop();
  }

  const rows = variants.map((v) => summaryRow(v.label, summaries[v.key]!));
  const exitRows = variants
    .filter((v) => v.exitMode !== 'off')
    .map((v) => ({
      run: v.label,
      ...Object.fromEntries(Object.entries(summaries[v.key]!.exitFractions).map(([site, f]) => [`exit@${site} %`, (100 * f).toFixed(1)])),
    }));
  process.stdout.write(`\n${formatTable(rows)}\n`);
  if (exitRows.length > 0) process.stdout.write(`\n${formatTable(exitRows)}\n`);
  if (args.drift !== undefined && summaries.withoutRamps && summaries.withRamps) {
    const columns = [
      { label: 'plain', summary: summaries.withoutRamps },
      { label: 'ramps', summary: summaries.withRamps },
      ...(summaries.withFixedRamps ? [{ label: 'fixed ramps', summary: summaries.withFixedRamps }] : []),
      ...(summaries.withSharedBudgetRamps ? [{ label: 'tuner share', summary: summaries.withSharedBudgetRamps }] : []),
      ...(summaries.withStaticRamps ? [{ label: 'static', summary: summaries.withStaticRamps }] : []),
      ...(summaries.withOracleRamps ? [{ label: 'oracle', summary: summaries.withOracleRamps }] : []),
      ...(summaries.withSafeOracleRamps ? [{ label: 'safe oracle', summary: summaries.withSafeOracleRamps }] : []),
    ];
    process.stdout.write(`\nby window (drift ${args.drift}; planner):\n${windowTable(columns)}\n`);
  }
  // The accuracy budget per window: how often each ramps variant let agreement fall below it.
  const violations = Object.fromEntries(
    variants
      .filter((v) => v.exitMode !== 'off')
      .map((v) => {
        const agreements = summaries[v.key]!.windows.flatMap((w) => (w.agreement === undefined || Number.isNaN(w.agreement) ? [] : [w.agreement]));
        return [
          v.key,
          { numWindows: agreements.length, violating: agreements.filter((a) => a < WINDOW_AGREEMENT).length, worstAgreement: Math.min(...agreements) },
        ];
      }),
  );
  process.stdout.write(
    `\nwindows below ${100 * WINDOW_AGREEMENT} % agreement: ${variants
      .filter((v) => violations[v.key])
      .map(
        (v) =>
          `${v.label} ${violations[v.key]!.violating} of ${violations[v.key]!.numWindows} (worst ${(100 * violations[v.key]!.worstAgreement).toFixed(1)} %)`,
      )
      .join('; ')}\n`,
  );
  const without = summaries.withoutRamps!;
  const withRamps = summaries.withRamps!;
  const json: Record<string, unknown> = {
    model: args.model,
    trace: args.trace,
    sloMs,
    numRequests: arrivals.length,
    seed: args.seed,
    timeScale: trace.timeScale,
    rateScale: args.rateScale,
    warmupS: args.warmupS ?? 3,
    ...summaries,
    medianRatio: withRamps.p50Ms / without.p50Ms,
    budgetViolations: violations,
    ...(oracle
      ? {
          oracleThresholds: {
            siteIds: oracle.siteIds,
            perWindow: oracle.schedules.get(oracle.budget),
            ...(args.safeOracleBudget !== undefined ? { safeBudget: args.safeOracleBudget, safePerWindow: oracle.schedules.get(args.safeOracleBudget) } : {}),
          },
        }
      : {}),
    scheduleLagP99Ms: Math.max(...Object.values(summaries).map((s) => s.scheduleLagP99Ms)),
  };
  if (summaries.baseline) json.goodputVsBaseline = without.goodputRps / summaries.baseline.goodputRps;
  process.stdout.write(
    `\nmedian with ramps / without: ${(withRamps.p50Ms / without.p50Ms).toFixed(2)}x; p99 ${withRamps.p99Ms.toFixed(2)} vs ` +
      `${without.p99Ms.toFixed(2)} ms${summaries.baseline ? `; planner goodput / fifo: ${(json.goodputVsBaseline as number).toFixed(2)}x` : ''}\n`,
  );
  mkdirSync(args.out, { recursive: true });
  writeFileSync(join(args.out, 'compare.json'), `${JSON.stringify(json, null, 2)}\n`);
  if (args.jsonFile) writeFileSync(args.jsonFile, `${JSON.stringify(json, null, 2)}\n`);
  const plots = await writeComparisonPlots(
    join(args.out, 'compare'),
    plotSeries,
    `${args.model}: ${arrivals.length} requests of ${args.trace}, SLO ${sloMs.toFixed(0)} ms`,
  );
  process.stdout.write(`reports in ${args.out}; plots ${plots.svgPath}, ${plots.pngPath}\n`);
  return failures === 0 ? 0 : 1;
}
