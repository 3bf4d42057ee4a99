import { describe, expect, it } from 'vitest';
import { CpuFallbackError, createDeviceSession, nodesOffProvider, nodesOffProviderInProfile } from '../../onnx/device-sessions.js';
import { providerName, sessionOptions } from '../../onnx/session-options.js';
import { compiledCopiesFit } from '../../worker/ort-executor.js';

const CNN = 'models/mnist-cnn/model.onnx';
const TEXT = 'models/spam-transformer/model.onnx';
const sessionExtra = (o: ReturnType<typeof sessionOptions>) => (o as { extra: { session: Record<string, unknown> } }).extra.session;

describe('session options per device', () => {
  it('turns the silent CPU fallback off on an accelerator, unless the worker allows it', () => {
    expect(sessionExtra(sessionOptions({ device: 'cpu', intraOpNumThreads: 1 })).disable_cpu_ep_fallback).toBeUndefined();
    expect(sessionExtra(sessionOptions({ device: 'cuda:1', intraOpNumThreads: 1 })).disable_cpu_ep_fallback).toBe('1');
    expect(sessionExtra(sessionOptions({ device: 'webgpu', intraOpNumThreads: 1 })).disable_cpu_ep_fallback).toBe('1');
    expect(sessionExtra(sessionOptions({ device: 'cuda:0', intraOpNumThreads: 1, allowCpuFallback: true })).disable_cpu_ep_fallback).toBeUndefined();
    expect(sessionOptions({ device: 'cuda:1', intraOpNumThreads: 1 }).executionProviders).toEqual([{ name: 'cuda', deviceId: 1 }]);
  });

  it('names the provider a device runs on as onnxruntime profiles report it', () => {
    expect(providerName('cpu')).toBe('CPUExecutionProvider');
    expect(providerName('cuda:0')).toBe('CUDAExecutionProvider');
    expect(() => providerName('tpu')).toThrow(/unknown device/);
  });
});

describe('nodes placed off the device', () => {
  const cpu = sessionOptions({ device: 'cpu', intraOpNumThreads: 1 });

  it('lists every node a profiled run placed on another provider, and none on its own', async () => {
    const offCuda = await nodesOffProvider(CNN, cpu, 'CUDAExecutionProvider');
    expect(offCuda.length).toBeGreaterThanOrEqual(3);
    expect(offCuda.some((n) => n.endsWith('(Conv)'))).toBe(true);
    expect(await nodesOffProvider(CNN, cpu, 'CPUExecutionProvider')).toEqual([]);
  });

  it('fills integer inputs too (a text model with ids and a mask)', async () => {
    const off = await nodesOffProvider(TEXT, cpu, 'CUDAExecutionProvider');
    expect(off.some((n) => /\((MatMul|FusedMatMul|Attention|Gemm)\)$/.test(n))).toBe(true);
  });

  it('reads node events of a profile, once per node, and refuses what is not a profile', () => {
    const events = [
      { cat: 'Session', name: 'model_run' },
      { cat: 'Node', name: 'conv1_kernel_time', args: { provider: 'CPUExecutionProvider', op_name: 'Conv' } },
      { cat: 'Node', name: 'conv1_kernel_time', args: { provider: 'CPUExecutionProvider', op_name: 'Conv' } },
      { cat: 'Node', name: 'gemm_kernel_time', args: { provider: 'CUDAExecutionProvider', op_name: 'Gemm' } },
    ];
    expect(nodesOffProviderInProfile(events, 'CUDAExecutionProvider')).toEqual(['conv1 (Conv)']);
    expect(() => nodesOffProviderInProfile({ traceEvents: [] }, 'CPUExecutionProvider')).toThrow(/list of trace events/);
  });

  it('turns onnxruntime refusing a fallback into an error that names the device and what to do', async () => {
    // The CPU provider refuses a disabled fallback for its own nodes, which lets the refusal path run here.
    const refused = createDeviceSession(CNN, { device: 'cpu', intraOpNumThreads: 1 }, { extra: { session: { disable_cpu_ep_fallback: '1' } } });
    await expect(refused).rejects.toBeInstanceOf(CpuFallbackError);
    await expect(refused).rejects.toThrow(/on cpu, onnxruntime would run 0 node\(s\) on the CPU.*--device cpu/);
    const session = await createDeviceSession(CNN, { device: 'cpu', intraOpNumThreads: 1 });
    expect(session.inputNames).toHaveLength(1);
    await session.release();
  });
});

describe('which copy of a package a worker loads', () => {
  const compiled = { compile: { optimizationLevel: 'extended', onnxruntime: '1.30.0', device: 'cpu' } };
  it('uses the compiled copies only for the device kind and onnxruntime version that compiled them', () => {
    expect(compiledCopiesFit(compiled, 'cpu', '1.30.0')).toBe(true);
    expect(compiledCopiesFit(compiled, 'cuda:0', '1.30.0')).toBe(false);
    expect(compiledCopiesFit(compiled, 'cpu', '1.31.0')).toBe(false);
    expect(compiledCopiesFit({ compile: { ...compiled.compile, device: 'cuda:0' } }, 'cuda:3', '1.30.0')).toBe(true);
  });
});
