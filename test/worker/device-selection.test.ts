import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { cliEntryPath } from '../../cluster/local-cluster.js';

function startWorker(device: string) {
  // The controller address is never reached: the device check comes first.
  return spawnSync(process.execPath, [cliEntryPath(), 'worker', '--controller', 'tcp://127.0.0.1:9', '--device', device], {
    encoding: 'utf8',
    timeout: 30_000,
  });
}

describe('worker device selection', () => {
  it.each(['cuda:0', 'webgpu', 'nonsense'])('exits with a clear message when device %s is unavailable, never falling back to CPU', (device) => {
    const run = startWorker(device);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(`device '${device}' is unavailable`);
    expect(run.stdout).not.toContain('"event":"ready"');
  });

  it('says how to install the CUDA provider when its library is missing', () => {
    const run = startWorker('cuda:0');
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js');
  });
});
