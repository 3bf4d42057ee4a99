/**
 * Sessions on a worker's device, with no silent CPU fallback inside one.
 *
 * onnxruntime places every node its accelerator provider cannot run on the CPU provider and says
 * nothing; a model served that way on `cuda` runs at a speed no profile of the device predicts.
 * On a device other than `cpu`, sessions are created with the fallback disabled
 * (session-options.ts); when onnxruntime refuses, the model is placed again with the fallback
 * allowed, run once with profiling on, and the refusal names the nodes that ran on the CPU.
 */
import { CodedError, ErrorCode } from '../shared/error-codes.js';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { providerName, sessionOptions, type SessionSettings } from './session-options.js';

/** The words onnxruntime uses when a node would need the CPU provider and the fallback is off. */
const FALLBACK_REFUSAL = /fallback to CPU EP has been explicitly disabled/i;

export class CpuFallbackError extends CodedError {
  override readonly name = 'CpuFallbackError';
  readonly code = ErrorCode.DEVICE_PLACEMENT_REFUSED;
  constructor(
    readonly device: string,
    readonly cpuNodes: string[],
  ) {
    const shown = cpuNodes.slice(0, 12).join(', ') + (cpuNodes.length > 12 ? ` and ${cpuNodes.length - 12} more` : '');
    super(
      `on ${device}, onnxruntime would run ${cpuNodes.length} node(s) on the CPU: ${shown || '(none reported by the profile)'}. ` +
        'Export the model with operators the device supports, or serve it on a worker with --device cpu',
    );
  }
}

export function isCpuFallbackError(err: unknown): err is CpuFallbackError {
  return err instanceof CpuFallbackError;
}

/** Creates a session on the settings' device; on an accelerator, refuses nodes left to the CPU. */
export async function createDeviceSession(
  model: string | Uint8Array,
  settings: SessionSettings,
  overrides: ort.InferenceSession.SessionOptions = {},
): Promise<ort.InferenceSession> {
  const options = { ...sessionOptions(settings), ...overrides };
  try {
    return await createSession(model, options);
  } catch (err) {
    if (!FALLBACK_REFUSAL.test((err as Error).message)) throw err;
    const allowed = { ...options, extra: withFallback(options.extra, true) };
    throw new CpuFallbackError(settings.device, await nodesOffProvider(model, allowed, providerName(settings.device)));
  }
}

/**
 * The nodes (as onnxruntime names them after optimisation) that ran on a provider other than
 * `provider` in one profiled run at batch 1 on zero inputs. Every node of a model runs once in
 * such a run, whatever the inputs' values.
 */
export async function nodesOffProvider(model: string | Uint8Array, options: ort.InferenceSession.SessionOptions, provider: string): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'escapement-placement-'));
  try {
    const session = await createSession(model, { ...options, enableProfiling: true, profileFilePrefix: join(dir, 'run') });
    try {
      await session.run(zeroFeeds(session));
      session.endProfiling();
    } finally {
      await session.release();
    }
    const file = readdirSync(dir).find((f) => f.endsWith('.json'));
    if (!file) throw new Error('onnxruntime wrote no profile');
    return nodesOffProviderInProfile(JSON.parse(readFileSync(join(dir, file), 'utf8')), provider);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface ProfileEvent {
  cat?: string;
  name?: string;
  args?: { provider?: string; op_name?: string };
}

/** Reads an onnxruntime profile (a list of trace events): node names not run by `provider`. */
export function nodesOffProviderInProfile(events: unknown, provider: string): string[] {
  if (!Array.isArray(events)) throw new Error('an onnxruntime profile is a list of trace events');
  const names = new Set<string>();
  for (const e of events as ProfileEvent[]) {
    if (e.cat !== 'Node' || !e.name || !e.args?.provider || e.args.provider === provider) continue;
    names.add(`${e.name.replace(/_kernel_time$/, '')} (${e.args.op_name ?? '?'})`);
  }
  return [...names];
}

function createSession(model: string | Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  return typeof model === 'string' ? ort.InferenceSession.create(model, options) : ort.InferenceSession.create(model, options);
}

function withFallback(extra: Record<string, unknown> | undefined, allowed: boolean): Record<string, unknown> {
  const session = (extra?.session ?? {}) as Record<string, unknown>;
  return { ...extra, session: { ...session, disable_cpu_ep_fallback: allowed ? '0' : '1' } };
}

const ZERO_ARRAYS: Record<string, (n: number) => ort.Tensor['data']> = {
  float32: (n) => new Float32Array(n),
  float64: (n) => new Float64Array(n),
  int64: (n) => new BigInt64Array(n),
  int32: (n) => new Int32Array(n),
  uint8: (n) => new Uint8Array(n),
  int8: (n) => new Int8Array(n),
  bool: (n) => new Uint8Array(n),
};

/** One row of zeros for every input; symbolic dimensions (batch, sequence) become 1. */
function zeroFeeds(session: ort.InferenceSession): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const meta of session.inputMetadata) {
    if (!meta.isTensor) throw new Error(`input ${meta.name} is not a tensor`);
    const dims = meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
    const make = ZERO_ARRAYS[meta.type];
    if (!make) throw new Error(`input ${meta.name} has type ${meta.type}, which the placement check cannot fill`);
    feeds[meta.name] = new ort.Tensor(meta.type as 'float32', make(dims.reduce((a, b) => a * b, 1)) as Float32Array, dims);
  }
  return feeds;
}
