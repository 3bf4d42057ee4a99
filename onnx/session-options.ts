/**
 * onnxruntime session options for predictable one-at-a-time execution, and the mapping from a
 * worker's `--device` to an execution provider.
 */
import type { InferenceSession } from 'onnxruntime-node';

export interface SessionSettings {
  device: string;
  /** Intra-op threads. Default 1: linear, stable latency on a shared 2-core machine. */
  intraOpNumThreads: number;
}

export function executionProviders(device: string): InferenceSession.ExecutionProviderConfig[] {
  if (device === 'cpu') return ['cpu'];
  if (device === 'webgpu') return ['webgpu'];
  const cuda = /^cuda(?::(\d+))?$/.exec(device);
  if (cuda) return [{ name: 'cuda', deviceId: Number(cuda[1] ?? 0) }];
  throw new Error(`unknown device '${device}' (expected cpu, cuda:N or webgpu)`);
}

export function sessionOptions(settings: SessionSettings): InferenceSession.SessionOptions {
  return {
    executionProviders: executionProviders(settings.device),
    intraOpNumThreads: settings.intraOpNumThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableCpuMemArena: true,
    enableMemPattern: true,
    logSeverityLevel: 3,
    // NOTE: spinning intra-op threads burn a core between runs (5x CPU for small runs); the
    // Node binding honours `extra` although its types say WASM-only.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  } as InferenceSession.SessionOptions;
}
