import { afterEach, describe, expect, it, vi } from 'vitest';
import { formatDuration, makeProgress } from '../../cli/progress-bar.js';

describe('the progress line', () => {
  afterEach(() => vi.useRealTimers());

  it('formats durations as minutes and seconds', () => {
    expect(formatDuration(9_000)).toBe('9s');
    expect(formatDuration(75_000)).toBe('1m15s');
    expect(formatDuration(600_000)).toBe('10m00s');
  });

  it('off a terminal, prints a stage while it runs (every 10 s, with the time left) and when it ends', () => {
    vi.useFakeTimers({ now: 0 });
    const lines: string[] = [];
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => (lines.push(String(chunk)), true));
    const isTTY = process.stderr.isTTY;
    Object.defineProperty(process.stderr, 'isTTY', { value: false, configurable: true });
    try {
      const progress = makeProgress('prepare m');
      progress('train ramps', 0, 10);
      vi.setSystemTime(5_000);
      progress('train ramps', 1, 10); // too soon after the last line
      vi.setSystemTime(20_000);
      progress('train ramps', 4, 10); // 4 in 20 s: 6 more take about 30 s
      vi.setSystemTime(50_000);
      progress('train ramps', 10, 10);
    } finally {
      write.mockRestore();
      Object.defineProperty(process.stderr, 'isTTY', { value: isTTY, configurable: true });
    }
    expect(lines).toEqual([
      'prepare m train ramps      [##########..............] 4/10, about 30s left\n',
      'prepare m train ramps      [########################] 10/10\n',
    ]);
  });
});
