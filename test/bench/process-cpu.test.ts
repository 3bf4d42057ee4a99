import { describe, expect, it } from 'vitest';
import { hostBusyCpuSeconds, processCpuSeconds, startCpuMeter } from '../../bench/process-cpu.js';

const onLinux = process.platform === 'linux';

function spinMs(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end);
}

describe('process CPU accounting', () => {
  it.runIf(onLinux)('counts the CPU this process burns, and the host counts at least as much', () => {
    const before = processCpuSeconds(process.pid)!;
    const hostBefore = hostBusyCpuSeconds()!;
    spinMs(300);
    const used = processCpuSeconds(process.pid)! - before;
    expect(used).toBeGreaterThan(0.1);
    expect(hostBusyCpuSeconds()! - hostBefore).toBeGreaterThanOrEqual(used - 0.02);
  });

  it.runIf(onLinux)('a meter reports about one core for a spinning process, per name', () => {
    const meter = startCpuMeter([{ name: 'self', pid: process.pid }]);
    spinMs(300);
    const cores = meter.stop();
    expect(cores.byProcess.self).toBeGreaterThan(0.5);
    expect(cores.loadGenerator).toBeGreaterThan(0.5);
    expect(cores.host).toBeGreaterThan(0.5);
  });

  it('a process that does not exist has no figure', () => {
    expect(processCpuSeconds(2 ** 30)).toBeUndefined();
    const cores = startCpuMeter([{ name: 'gone', pid: 2 ** 30 }]).stop();
    expect(cores.byProcess.gone).toBeUndefined();
  });
});
