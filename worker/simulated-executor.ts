/**
 * A stand-in device: "runs" a model by waiting its modelled duration and returns zero-filled
 * outputs of the declared shapes. Same protocol, windows and error codes as a real worker; used
 * for controller scale tests and on machines without the model runtime (Clockwork's
 * worker_dummy).
 *
 * Duration = `baseUs + perItemUs × batchSize` from the manifest's `simulated` section (or the
 * defaults below), times a uniform noise factor in [1 - noise, 1 + noise].
 */
import { EscapementError, ErrorCode } from '../shared/error-codes.js';
import { monotonicNowNs } from '../shared/clock.js';
import type { ModelEntry, SimulatedLatency } from '../shared/model-manifest.js';
import { byteLength, type Tensor } from '../shared/tensor.js';
import type { Executor, InferOutcome, LoadOutcome } from './executor.js';
import { startAt } from './precise-timer.js';

/** Used when a manifest has no `simulated` section: roughly the MNIST CNN on one core. */
const DEFAULT_LATENCY: SimulatedLatency = { baseUs: 100, perItemUs: 150 };

export interface SimulatedExecutorOptions {
  /** Relative noise amplitude, e.g. 0.05 for ±5 %. Default 0. */
  noise: number;
  /** Seed of the noise generator, for reproducible runs. */
  seed: number;
  /** Overrides every model's modelled latency (e.g. a slow device for overload tests). */
  latency?: SimulatedLatency;
}

export class SimulatedExecutor implements Executor {
  readonly device = 'simulated';
  private readonly loaded = new Map<string, ModelEntry>();
  private rngState: number;

  constructor(private readonly options: SimulatedExecutorOptions = { noise: 0, seed: 1 }) {
    this.rngState = options.seed >>> 0 || 1;
  }

  private random(): number {
    // xorshift32: deterministic under a seed
    let x = this.rngState;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rngState = x >>> 0;
    return this.rngState / 0x1_0000_0000;
  }

  private durationNs(entry: ModelEntry, batchSize: number): number {
    const latency = this.options.latency ?? entry.manifest.simulated ?? DEFAULT_LATENCY;
    const baseNs = (latency.baseUs + latency.perItemUs * batchSize) * 1000;
    return baseNs * (1 + this.options.noise * (2 * this.random() - 1));
  }

  private sleepNs(durationNs: number): Promise<void> {
    return new Promise((resolve) => startAt(monotonicNowNs() + durationNs, resolve));
  }

  async load(entry: ModelEntry, batchSizes: number[]): Promise<LoadOutcome> {
    await this.sleepNs(5_000_000); // LOAD is idempotent: loading a loaded model re-profiles it
    this.loaded.set(entry.manifest.name, entry);
    const latency = this.options.latency ?? entry.manifest.simulated ?? DEFAULT_LATENCY;
    // Text models: the same simulated cost at every sequence bucket.
    const buckets = entry.manifest.sequence?.buckets ?? [0];
    const profile = buckets.flatMap((seqLength) =>
      batchSizes.map((batchSize) => {
        const ns = (latency.baseUs + latency.perItemUs * batchSize) * 1000;
        return { batchSize, ...(seqLength > 0 ? { sequenceLength: seqLength } : {}), durationNs: ns, p99DurationNs: ns * (1 + this.options.noise) };
      }),
    );
    return { profile, weightsBytes: entry.fileBytes };
  }

  async prepareRamps(modelName: string): Promise<void> {
    // Simulated models have no chains: ramps are accepted and the model still runs whole.
    if (!this.loaded.has(modelName)) throw new EscapementError(ErrorCode.RAMPS_NOT_LOADED, `${modelName} is not loaded`);
  }

  async unload(modelName: string): Promise<void> {
    if (!this.loaded.delete(modelName)) throw new EscapementError(ErrorCode.UNLOAD_NOT_LOADED, `${modelName} is not loaded`);
  }

  async infer(modelName: string, batchSize: number): Promise<InferOutcome> {
    const entry = this.loaded.get(modelName);
    if (!entry) throw new EscapementError(ErrorCode.INFER_NOT_LOADED, `${modelName} is not loaded`);
    const durationNs = this.durationNs(entry, batchSize);
    await this.sleepNs(durationNs);
    const outputs: Tensor[] = entry.manifest.outputs.map((spec) => {
      const shape = [batchSize, ...spec.shape.slice(1)];
      return { name: spec.name, dtype: spec.dtype, shape, data: new Uint8Array(byteLength({ dtype: spec.dtype, shape })) };
    });
    return { outputs, stages: [{ name: 'model', durationNs }] };
  }

  async close(): Promise<void> {
    this.loaded.clear();
  }
}
