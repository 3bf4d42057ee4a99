import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { pinProcess } from '../../shared/cpu-affinity.js';

const onLinux = process.platform === 'linux';
/** A CPU other than the first, so that a pin that did nothing shows. */
const lastCpu = String(availableParallelism() - 1);
const allowedCpus = (pid: number) => /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1];

describe('pinning a process to CPUs', () => {
  const children: ReturnType<typeof spawn>[] = [];
  afterEach(() => children.splice(0).forEach((c) => c.kill('SIGKILL')));

  it.runIf(onLinux && availableParallelism() > 1)('pins every thread of a running process to the CPUs named', () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10_000)'], { stdio: 'ignore' });
    children.push(child);
    expect(pinProcess(child.pid!, lastCpu)).toBeUndefined();
    expect(allowedCpus(child.pid!)).toBe(lastCpu);
    for (const tid of readdirSync(`/proc/${child.pid}/task`)) {
      expect(/Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${child.pid}/task/${tid}/status`, 'utf8'))![1]).toBe(lastCpu);
    }
  });

  it.runIf(onLinux)('says why when it cannot', () => {
    expect(pinProcess(process.pid, '999')).toMatch(/could not pin process \d+ to CPUs 999/);
  });
});
