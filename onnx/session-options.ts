/**
 * onnxruntime session options for predictable one-at-a-time execution, and the mapping from a
 * worker's `--device` to an execution provider.
 */
import type { InferenceSession } from 'onnxruntime-node';

export interface SessionSettings {
  device: string;
  /** Intra-op threads. Default 1: linear, stable latency on a shared 2-core machine. */
  intraOpNumThreads: number;
  /** On an accelerator, let onnxruntime place nodes its provider lacks on the CPU (default: refuse). */
  allowCpuFallback?: boolean;
}

export function executionProviders(device: string): InferenceSession.ExecutionProviderConfig[] {
  if (device === 'cpu') return ['cpu'];
  if (device === 'webgpu') return ['webgpu'];
  const cuda = /^cuda(?::(\d+))?$/.exec(device);
  if (cuda) return [{ name: 'cuda', deviceId: Number(cuda[1] ?? 0) }];
  throw new Error(`unknown device '${device}' (expected cpu, cuda:N or webgpu)`);
}

/** onnxruntime's name for the provider a device runs on (the name its profiles report). */
export function providerName(device: string): string {
  const provider = executionProviders(device)[0]!;
  const name = typeof provider === 'string' ? provider : provider.name;
  return ({ cpu: 'CPUExecutionProvider', cuda: 'CUDAExecutionProvider', webgpu: 'WebGpuExecutionProvider' } as Record<string, string>)[name] ?? name;
}

/**
 * What to do when the CUDA provider's libraries are missing: onnxruntime-node bundles only the CPU
 * (and WebGPU) providers; its install script downloads the CUDA 12 provider, which this project's
 * install skips (no internet on CI). The host also needs CUDA 12 and cuDNN 9 on its library path.
 */
export const CUDA_INSTALL_HINT =
  'install the CUDA provider with `ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js` ' +
  '(needs the internet; the host needs CUDA 12 and cuDNN 9 libraries on LD_LIBRARY_PATH), see docs/preparing-models.md#devices';

export function sessionOptions(settings: SessionSettings): InferenceSession.SessionOptions {
  const session: Record<string, unknown> = { intra_op: { allow_spinning: '0' } };
  // On an accelerator, a node its provider cannot run must not move to the CPU unannounced
  // (device-sessions.ts names such nodes). On the CPU the CPU provider is the device.
  if (settings.device !== 'cpu' && !settings.allowCpuFallback) session.disable_cpu_ep_fallback = '1';
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
    extra: { session },
  } as InferenceSession.SessionOptions;
}
