/**
 * How fast this host runs a package's model against the host that profiled it: the largest
 * profiled batch, timed here in-process on one onnxruntime thread (as workers run it), against
 * the package profile's time for it. Rates sized from a package profile (the demo's trace speed)
 * scale by it, so that a load meant as a share of capacity stays that share on a slower host.
 *
 * NOTE: the bundled fmnist-resnet was profiled at 16.4 ms a batch of 16; an AVX2-only host ran it
 * in 41 ms, and the demo's fixed 100x trace speed (~500 req/s), meant as about a third of two
 * workers' capacity, was 72 % of that host's, where the planner without ramps met 92.5 % of SLOs.
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { loadModelEntry } from '../shared/model-manifest.js';
import { openSession, timeBatches } from '../prepare/profiler.js';

export interface HostSpeed {
  /** Profiled time over the time measured here (< 1: this host is slower). */
  ratio: number;
  batchSize: number;
  profiledMs: number;
  measuredMs: number;
}

/** Undefined for a package without a profile or with inputs other than fixed-shape float32 (text). */
export async function measureHostSpeed(modelDir: string, model: string): Promise<HostSpeed | undefined> {
  const entry = loadModelEntry(modelDir, model);
  const profile = entry.manifest.earlyExit?.profile;
  const inputs = entry.manifest.inputs;
  if (!profile || !inputs.every((spec) => spec.dtype === 'float32' && spec.shape.slice(1).every((d) => d > 0))) return undefined;
  const batchSize = Math.max(...Object.keys(profile.wholeMs).map(Number));
  const feeds = Object.fromEntries(
    inputs.map((spec) => {
      const shape = [batchSize, ...spec.shape.slice(1)];
      return [spec.name, new ort.Tensor('float32', new Float32Array(shape.reduce((a, b) => a * b, 1)), shape)];
    }),
  );
  const session = await openSession(readFileSync(entry.onnxPath));
  try {
    const measuredMs = (await timeBatches(() => session.run(feeds), { batchSizes: [batchSize], numRuns: 9, numWarmup: 2, maxMsPerSize: 500 }))[batchSize]!;
    const profiledMs = profile.wholeMs[String(batchSize)]!;
    return { ratio: profiledMs / measuredMs, batchSize, profiledMs, measuredMs };
  } finally {
    await session.release();
  }
}

/**
 * The factor a rate sized from the package profile is scaled by on this host: its measured
 * slowdown, or 1 when it is not clearly slower (a package timed on this host reads within ~15 %
 * of its own profile) or was not measured. Never above 1.
 */
export function profileRateFactor(speed: HostSpeed | undefined): number {
  return speed && speed.ratio < SAME_HOST_RATIO ? speed.ratio : 1;
}
const SAME_HOST_RATIO = 0.85;

/**
 * An SLO set for the profiling host, stretched by as much as this host is slower (`speed`, as
 * `profileRateFactor` reads it) and rounded up to 10 ms, so that a batch keeps the headroom under
 * the SLO it had there. Never tighter than `sloMs`.
 */
export function stretchedSloMs(sloMs: number, speed: HostSpeed | undefined): number {
  const factor = profileRateFactor(speed);
  return factor === 1 ? sloMs : Math.ceil(sloMs / factor / 10) * 10;
}

/**
 * The SLO a benchmark runs at, from its environment `setting`: unset, `sloMs`; a number of ms;
 * or `host`, `sloMs` stretched for this host against `model`'s package profile (`stretchedSloMs`).
 */
export async function sloForHost(sloMs: number, setting: string | undefined, modelDir: string, model: string): Promise<number> {
  if (setting === undefined || setting === '') return sloMs;
  if (setting === 'host') return stretchedSloMs(sloMs, await measureHostSpeed(modelDir, model));
  const value = Number(setting);
  if (!(value > 0)) throw new Error(`an SLO setting is a number of ms or 'host', not '${setting}'`);
  return value;
}
