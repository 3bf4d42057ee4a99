/**
 * bench:adapt's passes of one drift as one result (bench/adapt-bench.ts): each drift is served
 * twice, the variants in one order and then the other, so that a ratio of two variants' p50s
 * does not carry how the host's speed drifted over the minutes between them.
 */

export interface VariantResult {
  agreement: number;
  worstWindowAgreement: number;
  windowsBelow99: number;
  numWindows: number;
  windowsWithinBudgetPct: number;
  exitFraction: number;
  p50Ms: number;
  p50RatioVsNoRamps: number;
  sloAttainment: number;
  /** Per tenth of the run (windows without an answer to judge left out). */
  windows: { agreement: number; exitFraction: number }[];
}

export interface DriftPass<Name extends string = string> {
  drift: string;
  onlineRampChanges: string[];
  noRamps: { p50Ms: number; sloAttainment: number };
  variants: Record<Name, VariantResult>;
}

const mean = (values: readonly number[]) => values.reduce((sum, x) => sum + x, 0) / values.length;

/**
 * Agreement, exits, p50 and SLO averaged over the passes (they serve the same requests), the
 * tenths below 99 % counted over all of them, the p50 ratio taken of the averages, the plotted
 * tenths averaged; each variant's p50 per pass kept for the record.
 */
export function combinePasses<Name extends string, P extends DriftPass<Name>>(
  passes: readonly P[],
  names: readonly Name[],
): P & { p50MsByPass: Record<string, number[]> } {
  if (passes.length === 0) throw new RangeError('combinePasses needs a pass');
  const noRampsP50Ms = mean(passes.map((p) => p.noRamps.p50Ms));
  const variants = Object.fromEntries(
    names.map((name): [Name, VariantResult] => {
      const each = passes.map((p) => p.variants[name]);
      const windowsBelow99 = each.reduce((sum, v) => sum + v.windowsBelow99, 0);
      const numWindows = each.reduce((sum, v) => sum + v.numWindows, 0);
      const p50Ms = mean(each.map((v) => v.p50Ms));
      return [
        name,
        {
          agreement: mean(each.map((v) => v.agreement)),
          worstWindowAgreement: Math.min(...each.map((v) => v.worstWindowAgreement)),
          windowsBelow99,
          numWindows,
          windowsWithinBudgetPct: (100 * (numWindows - windowsBelow99)) / Math.max(1, numWindows),
          exitFraction: mean(each.map((v) => v.exitFraction)),
          p50Ms,
          p50RatioVsNoRamps: p50Ms / noRampsP50Ms,
          sloAttainment: mean(each.map((v) => v.sloAttainment)),
          windows: each[0]!.windows.map((w, k) => ({
            agreement: mean(each.map((v) => v.windows[k]?.agreement ?? w.agreement)),
            exitFraction: mean(each.map((v) => v.windows[k]?.exitFraction ?? w.exitFraction)),
          })),
        },
      ];
    }),
  ) as Record<Name, VariantResult>;
  return {
    ...passes[0]!,
    onlineRampChanges: passes.flatMap((p) => p.onlineRampChanges),
    noRamps: { p50Ms: noRampsP50Ms, sloAttainment: mean(passes.map((p) => p.noRamps.sloAttainment)) },
    variants,
    p50MsByPass: Object.fromEntries([
      ['no ramps', passes.map((p) => p.noRamps.p50Ms)],
      ...names.map((name) => [name, passes.map((p) => p.variants[name].p50Ms)]),
    ]),
  };
}
