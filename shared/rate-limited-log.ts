/**
 * A log that a hostile peer cannot flood: at most `perWindow` lines per kind of event in each
 * window; the rest are counted and summed up in the next line that gets through.
 */
export class RateLimitedLog {
  private readonly windows = new Map<string, { startMs: number; lines: number; suppressed: number }>();

  constructor(
    private readonly log: (line: string) => void,
    private readonly perWindow = 10,
    private readonly windowMs = 1000,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** Logs `line` unless this kind of event has used up its window. */
  write(kind: string, line: string): void {
    const now = this.nowMs();
    let w = this.windows.get(kind);
    if (!w || now - w.startMs >= this.windowMs) {
      const suppressed = w?.suppressed ?? 0;
      w = { startMs: now, lines: 0, suppressed: 0 };
      this.windows.set(kind, w);
      if (suppressed > 0) this.log(`(${suppressed} more '${kind}' lines suppressed)`);
    }
    if (w.lines < this.perWindow) {
      w.lines++;
      this.log(line);
    } else {
      w.suppressed++;
    }
  }
}
