/**
 * Where a host's CPU went during a benchmark phase: cores used by each serving process, by this
 * process (the load generator and its client), and by the whole host, from Linux's /proc.
 *
 * Why: on a 2-core host the serving processes, the client and the load generator share the cores,
 * and a phase sized as a share of the model's capacity can keep the CPU far busier than that share
 * (fmnist-resnet at "70 %" on an AVX2 host: 1.82 of 2 cores busy, each inference thread 0.7). A
 * missed SLO then has a measured cause in the same JSON as the miss.
 *
 * Elsewhere than Linux every figure is undefined. /proc counts in clock ticks of 1/100 s (USER_HZ,
 * 100 on every Linux configuration Node supports).
 */
import { readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) a process has used, or undefined when it is gone or not on Linux. */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    // Fields after the command name (which may hold spaces and parentheses): utime is the 12th, stime the 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** Busy CPU seconds of the whole host, summed over its cores (all but idle and iowait), or undefined. */
export function hostBusyCpuSeconds(): number | undefined {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = cpu.reduce((a, b) => a + b, 0);
    return (total - cpu[3]! - (cpu[4] ?? 0)) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** Cores used over a span: per named process, by this process, and by the host. */
export interface CpuCores {
  byProcess: Record<string, number>;
  /** This process: the load generator and its client. */
  loadGenerator: number;
  /** Every process on the host, the kernel included. */
  host: number | undefined;
}

/** Starts measuring now; `stop()` returns the cores each used since. */
export function startCpuMeter(processes: readonly { name: string; pid: number }[]): { stop(): CpuCores } {
  const startNs = process.hrtime.bigint();
  const ownStart = process.cpuUsage();
  const hostStart = hostBusyCpuSeconds();
  const starts = processes.map((p) => ({ ...p, cpuS: processCpuSeconds(p.pid) }));
  return {
    stop(): CpuCores {
      const seconds = Number(process.hrtime.bigint() - startNs) / 1e9;
      const own = process.cpuUsage(ownStart);
      const hostEnd = hostBusyCpuSeconds();
      const byProcess: Record<string, number> = {};
      for (const p of starts) {
        const end = processCpuSeconds(p.pid);
        if (p.cpuS !== undefined && end !== undefined) byProcess[p.name] = (end - p.cpuS) / seconds;
      }
      return {
        byProcess,
        loadGenerator: (own.user + own.system) / 1e6 / seconds,
        host: hostStart === undefined || hostEnd === undefined ? undefined : (hostEnd - hostStart) / seconds,
      };
    },
  };
}
