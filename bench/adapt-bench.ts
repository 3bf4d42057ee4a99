/**
 * `npm run bench:adapt`: does online threshold tuning pay under drift (issue #18)? For each drift
 * workload (class-mix, noise, shift; loadgen/drift.ts), one `escapement compare` run on
 * fmnist-resnet (compact ramps, the bundled trace, ADAPT_SECONDS per variant after a 3 s warm-up)
 * with seven variants side by side: no ramps; ramps tuned online (ramp adjustment on, the
 * default); tuned online with the package's ramp set fixed; tuned online spending half the budget
 * (HALF_BUDGET); static thresholds (the package's,
 * never re-tuned); the oracle (per window, the best thresholds in hindsight that keep the window's
 * agreement >= 99 %); the same oracle at SAFE_ORACLE_BUDGET (what a tuner can reach at best that
 * keeps 95 % of the tenths within the 1 % budget: see there). Per drift and variant: agreement over the run and in its worst tenth, how
 * many tenths fell below 99 %, exits, p50 and its ratio to no ramps; then the issue's goals.
 * Each drift runs twice (ADAPT_PASSES), the variants in one order and then the other, and the
 * figures are averaged (tenths below 99 % counted over both), so that a ratio of two variants'
 * p50s does not carry how the host's speed drifted between them.
 * Prints a table, writes bench/results/adapt.json and plots agreement and exits per tenth
 * (runs/bench-adapt/adapt.svg and .png; each run's compare.json, reports and plots are kept there
 * too).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderPlot } from '../loadgen/latency-plots.js';
import { formatTable } from '../loadgen/latency-summary.js';
import { cliEntryPath } from '../cluster/local-cluster.js';
import { NAMED_DRIFTS } from '../loadgen/drift.js';
import { combinePasses, type VariantResult } from './adapt-passes.js';

const SECONDS = Number(process.env.ADAPT_SECONDS ?? 8);
/** Passes per drift, alternating the order of the variants (ADAPT_PASSES=1: one pass, as before). */
const PASSES = Math.max(1, Number(process.env.ADAPT_PASSES ?? 2));
const OUT_DIR = 'runs/bench-adapt';
const RESULTS_FILE = 'bench/results/adapt.json';
const VARIANTS = [
  { key: 'withRamps', name: 'online' },
  { key: 'withFixedRamps', name: 'online, fixed ramps' },
  { key: 'withSharedBudgetRamps', name: 'online, half budget' },
  { key: 'withStaticRamps', name: 'static' },
  { key: 'withOracleRamps', name: 'oracle' },
  { key: 'withSafeOracleRamps', name: 'safe oracle' },
] as const;
const VARIANT_NAMES = VARIANTS.map((v) => v.name);
/**
 * A tenth of the run (~390 requests) falls below 99 % agreement with 4 disagreements; at a true
 * disagreement rate of 0.35 % that happens to 5 % of tenths (binomial), so a tuner that keeps 95 %
 * of them must run at about 0.35 %, and the oracle at that budget per tenth bounds what it can
 * reach (any tuner pays at least this for the first goal; the second compares with the 1 % oracle).
 */
const SAFE_ORACLE_BUDGET = 0.0035;
/** The online tuner also runs spending half the budget (`--tuning-budget-share`): what keeping the tenths costs online. */
const HALF_BUDGET = 0.5;
/** Goals of issue #18. */
const WINDOW_AGREEMENT = 0.99;
const WINDOWS_OK_GOAL = 0.95;
const P50_VS_ORACLE_GOAL = 1.1;

interface Summary {
  p50Ms: number;
  agreement: number;
  exitFraction: number;
  sloAttainment: number;
  windows: { agreement?: number; exitFraction: number }[];
}

function runDrift(drift: string, reverse: boolean) {
  const out = join(OUT_DIR, reverse ? `${drift}-reversed` : drift);
  const jsonFile = join(out, 'compare.json');
  const logDir = join(out, 'controller-logs');
  const args = [
    'compare',
    '--drift',
    drift,
    '--static',
    '--oracle',
    '--safe-oracle-budget',
    String(SAFE_ORACLE_BUDGET),
    '--tuning-budget-share',
    String(HALF_BUDGET),
    '--fixed-ramps',
    '--baseline',
    'false',
    '--max-seconds',
    String(SECONDS),
    '--out',
    out,
    '--json',
    jsonFile,
    '--log-dir',
    logDir,
  ];
  if (reverse) args.push('--reverse-variants');
  process.stderr.write(`[bench:adapt] ${drift}: escapement ${args.join(' ')}\n`);
  const run = spawnSync(process.execPath, [cliEntryPath(), ...args], { encoding: 'utf8', timeout: 900_000, stdio: ['ignore', 'pipe', 'inherit'] });
  if (run.status !== 0) throw new Error(`compare --drift ${drift} failed (${run.status ?? run.signal})`);
  const result = JSON.parse(readFileSync(jsonFile, 'utf8')) as Record<string, Summary | unknown>;
  const plain = result.withoutRamps as Summary;
  const variants = Object.fromEntries(
    VARIANTS.map(({ key, name }): [string, VariantResult] => {
      const s = result[key] as Summary;
      const agreements = s.windows.flatMap((w) => (w.agreement === undefined || Number.isNaN(w.agreement) ? [] : [w.agreement]));
      const violating = agreements.filter((a) => a < WINDOW_AGREEMENT).length;
      return [
        name,
        {
          agreement: s.agreement,
          worstWindowAgreement: Math.min(...agreements),
          windowsBelow99: violating,
          numWindows: agreements.length,
          windowsWithinBudgetPct: (100 * (agreements.length - violating)) / Math.max(1, agreements.length),
          exitFraction: s.exitFraction,
          p50Ms: s.p50Ms,
          p50RatioVsNoRamps: s.p50Ms / plain.p50Ms,
          sloAttainment: s.sloAttainment,
          windows: s.windows.flatMap((w) =>
            w.agreement === undefined || Number.isNaN(w.agreement) ? [] : [{ agreement: w.agreement, exitFraction: w.exitFraction }],
          ),
        },
      ];
    }),
  );
  // Only the online variant may change its ramp set (the others fix ramps or thresholds): every
  // ramp change the controller logged is its own (warm-up included).
  const rampChanges = readFileSync(join(logDir, 'thresholds.csv'), 'utf8')
    .split('\n')
    .filter((line) => line.includes(',ramps: '))
    .map((line) => line.split(',').slice(2, 5).join(' | '));
  return {
    drift,
    numRequests: result.numRequests,
    sloMs: result.sloMs,
    onlineRampChanges: rampChanges,
    noRamps: { p50Ms: plain.p50Ms, sloAttainment: plain.sloAttainment },
    variants: variants as Record<(typeof VARIANTS)[number]['name'], VariantResult>,
    oracleThresholds: result.oracleThresholds,
  };
}

/** Agreement and exits per tenth of the run, per drift (columns) and variant (lines), against the 99 % line. */
async function plotWindows(perWindow: { drift: string; variant: string; tenth: number; agreementPct: number; exitPct: number }[]): Promise<string> {
  const row = (field: 'agreementPct' | 'exitPct', title: string, layerRule: boolean) => ({
    width: 220,
    height: 160,
    layer: [
      {
        mark: { type: 'line' as const, point: true },
        encoding: {
          x: { field: 'tenth', type: 'ordinal' as const, title: 'tenth of the run' },
          y: { field, type: 'quantitative' as const, title, scale: { zero: false } },
          color: { field: 'variant', type: 'nominal' as const, title: null },
        },
      },
      ...(layerRule ? [{ mark: { type: 'rule' as const, strokeDash: [4, 4], color: 'gray' }, encoding: { y: { datum: 100 * WINDOW_AGREEMENT } } }] : []),
    ],
  });
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `fmnist-resnet under drift: online (with and without ramp adjustment), static and oracle thresholds (1 % and safe) (compact ramps, ${SECONDS} s per variant)`,
    data: { values: perWindow },
    vconcat: [
      { facet: { column: { field: 'drift', type: 'nominal' as const, title: null } }, spec: row('agreementPct', 'agreement with the full model (%)', true) },
      { facet: { column: { field: 'drift', type: 'nominal' as const, title: null } }, spec: row('exitPct', 'answered at a ramp (%)', false) },
    ],
  };
  return (await renderPlot(spec as never, join(OUT_DIR, 'adapt'))).pngPath;
}

async function main(): Promise<void> {
  mkdirSync(OUT_DIR, { recursive: true });
  // Each drift twice, the variants in one order then the other: the p50 of one variant against
  // another otherwise carries how the host's speed drifted over the minutes between them (the
  // same code measured 9-34 % apart in one pass).
  const runs = NAMED_DRIFTS.map((drift) =>
    combinePasses(
      Array.from({ length: PASSES }, (_, k) => runDrift(drift, k % 2 === 1)),
      VARIANT_NAMES,
    ),
  );
  const rows = runs.flatMap((r) =>
    VARIANTS.map(({ name }) => {
      const v = r.variants[name];
      return {
        drift: r.drift,
        variant: name,
        'agree %': (100 * v.agreement).toFixed(2),
        'worst tenth %': (100 * v.worstWindowAgreement).toFixed(1),
        'tenths < 99 %': `${v.windowsBelow99}/${v.numWindows}`,
        'exit %': (100 * v.exitFraction).toFixed(1),
        'p50 ms': v.p50Ms.toFixed(2),
        'p50 / no ramps': v.p50RatioVsNoRamps.toFixed(2),
      };
    }),
  );
  process.stdout.write(
    `\nfmnist-resnet, compact ramps, ${SECONDS} s per variant (after a 3 s warm-up), ${PASSES} pass(es) per drift workload (tenths counted over all):\n${formatTable(rows)}\n`,
  );
  for (const r of runs)
    process.stdout.write(
      `${r.drift}: the online variant changed its ramp set ${r.onlineRampChanges.length} times${r.onlineRampChanges.map((c) => `\n  ${c}`).join('')}\n`,
    );
  const byDrift = runs;
  const goals = {
    onlineWithinBudgetInAtLeast95PctOfWindows: Object.fromEntries(
      byDrift.map((r) => [r.drift, r.variants.online.windowsWithinBudgetPct / 100 >= WINDOWS_OK_GOAL]),
    ),
    staticBreaksBudgetOnSomeDrift: byDrift.some((r) => r.variants.static.windowsWithinBudgetPct / 100 < WINDOWS_OK_GOAL),
    onlineP50VsOracle: Object.fromEntries(byDrift.map((r) => [r.drift, r.variants.online.p50Ms / r.variants.oracle.p50Ms])),
    onlineP50WithinTenPctOfOracle: byDrift.every((r) => r.variants.online.p50Ms / r.variants.oracle.p50Ms <= P50_VS_ORACLE_GOAL),
    /** The same two goals for the tuner at half the budget. */
    halfBudgetWithinBudgetInAtLeast95PctOfWindows: Object.fromEntries(
      byDrift.map((r) => [r.drift, r.variants['online, half budget'].windowsWithinBudgetPct / 100 >= WINDOWS_OK_GOAL]),
    ),
    halfBudgetP50VsOracle: Object.fromEntries(byDrift.map((r) => [r.drift, r.variants['online, half budget'].p50Ms / r.variants.oracle.p50Ms])),
    /** The steadier measure beside p50: the share answered early against the oracle's. */
    onlineExitsVsOracle: Object.fromEntries(byDrift.map((r) => [r.drift, r.variants.online.exitFraction / r.variants.oracle.exitFraction])),
    halfBudgetExitsVsOracle: Object.fromEntries(byDrift.map((r) => [r.drift, r.variants['online, half budget'].exitFraction / r.variants.oracle.exitFraction])),
    /**
     * What this bench resolves in p50: where the online variant changed no ramp, it and `online,
     * fixed ramps` ran the same code, and their p50s differ by the host's noise alone.
     */
    sameCodeP50Spread: Object.fromEntries(
      byDrift.flatMap((r) => {
        if (r.onlineRampChanges.length > 0) return [];
        const [a, b] = [r.variants.online.p50Ms, r.variants['online, fixed ramps'].p50Ms];
        return [[r.drift, Math.abs(a - b) / Math.min(a, b)]];
      }),
    ),
    /** What keeping the tenths costs even with hindsight: the safe oracle's p50 and exits against the oracle's. */
    safeOracleP50VsOracle: Object.fromEntries(byDrift.map((r) => [r.drift, r.variants['safe oracle'].p50Ms / r.variants.oracle.p50Ms])),
    safeOracleExitsVsOracle: Object.fromEntries(byDrift.map((r) => [r.drift, r.variants['safe oracle'].exitFraction / r.variants.oracle.exitFraction])),
    /**
     * The tuner that keeps the tenths against the best any such tuner can do (the safe oracle): the
     * second goal's ratio once the first holds.
     */
    halfBudgetP50VsSafeOracle: Object.fromEntries(byDrift.map((r) => [r.drift, r.variants['online, half budget'].p50Ms / r.variants['safe oracle'].p50Ms])),
  };
  process.stdout.write(
    `goals: online within the budget in >= 95 % of tenths: ${byDrift.map((r) => `${r.drift} ${goals.onlineWithinBudgetInAtLeast95PctOfWindows[r.drift] ? 'yes' : 'no'}`).join(', ')}; ` +
      `static breaks it on some drift: ${goals.staticBreaksBudgetOnSomeDrift ? 'yes' : 'no'}; ` +
      `online p50 / oracle: ${byDrift.map((r) => `${r.drift} ${goals.onlineP50VsOracle[r.drift]!.toFixed(2)}`).join(', ')} (goal <= ${P50_VS_ORACLE_GOAL}); ` +
      `exits / oracle's: ${byDrift.map((r) => `${r.drift} ${goals.onlineExitsVsOracle[r.drift]!.toFixed(2)}`).join(', ')}\n` +
      `p50 of the same code twice (online and fixed ramps, where no ramp changed): ${
        Object.entries(goals.sameCodeP50Spread)
          .map(([drift, spread]) => `${drift} ${(100 * spread).toFixed(0)} % apart`)
          .join(', ') || 'n/a'
      }\n` +
      `at half the budget: within it in >= 95 % of tenths: ${byDrift.map((r) => `${r.drift} ${goals.halfBudgetWithinBudgetInAtLeast95PctOfWindows[r.drift] ? 'yes' : 'no'}`).join(', ')}; ` +
      `p50 / oracle: ${byDrift.map((r) => `${r.drift} ${goals.halfBudgetP50VsOracle[r.drift]!.toFixed(2)}`).join(', ')}; ` +
      `p50 / safe oracle: ${byDrift.map((r) => `${r.drift} ${goals.halfBudgetP50VsSafeOracle[r.drift]!.toFixed(2)}`).join(', ')}; ` +
      `exits / oracle's: ${byDrift.map((r) => `${r.drift} ${goals.halfBudgetExitsVsOracle[r.drift]!.toFixed(2)}`).join(', ')}\n` +
      `with hindsight at ${(100 * SAFE_ORACLE_BUDGET).toFixed(2)} % per tenth, p50 / exits against the 1 % oracle: ` +
      `${byDrift.map((r) => `${r.drift} ${goals.safeOracleP50VsOracle[r.drift]!.toFixed(2)} / ${goals.safeOracleExitsVsOracle[r.drift]!.toFixed(2)}`).join(', ')}\n`,
  );
  writeFileSync(
    RESULTS_FILE,
    `${JSON.stringify({ model: 'fmnist-resnet', exitMode: 'compact', secondsPerVariant: SECONDS, safeOracleBudget: SAFE_ORACLE_BUDGET, drifts: runs, goals }, null, 2)}\n`,
  );
  const plot = await plotWindows(
    runs.flatMap((r) =>
      VARIANTS.flatMap(({ name }) =>
        r.variants[name].windows.map((w, tenth) => ({ drift: r.drift, variant: name, tenth, agreementPct: 100 * w.agreement, exitPct: 100 * w.exitFraction })),
      ),
    ),
  );
  process.stdout.write(`wrote ${RESULTS_FILE} and ${plot}; per-drift reports and plots under ${OUT_DIR}/\n`);
}

await main();
