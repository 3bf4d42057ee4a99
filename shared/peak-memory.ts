/**
 * The most memory this process has held resident since it started (Linux's VmHWM), for reports
 * such as prepare's; undefined where /proc is not there.
 */
import { readFileSync } from 'node:fs';

export function peakRssBytes(): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
