/**
 * A one-line progress display on stderr (redrawn in place on a TTY; otherwise a line when a stage
 * ends and every 10 s while it runs), with the stage's estimated time left once it has some
 * measure of its pace.
 */
export function makeProgress(label: string): (stage: string, done: number, total: number) => void {
  let lastStage = '';
  let lastDrawMs = 0;
  let stageStartMs = 0;
  return (stage, done, total) => {
    const now = Date.now();
    const finished = done >= total;
    if (stage !== lastStage) stageStartMs = now;
    const interval = process.stderr.isTTY ? 100 : 10_000;
    if (stage === lastStage && !finished && now - lastDrawMs < interval) return;
    lastDrawMs = now;
    const width = 24;
    const filled = total > 0 ? Math.round((width * done) / total) : width;
    const elapsedMs = now - stageStartMs;
    const eta = !finished && done > 0 && elapsedMs > 1_000 ? `, about ${formatDuration((elapsedMs * (total - done)) / done)} left` : '';
    const line = `${label} ${stage.padEnd(16)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}${eta}`;
    if (process.stderr.isTTY) process.stderr.write(`\r${line}\x1b[K${finished ? '\n' : ''}`);
    else if (finished || (stage === lastStage && done > 0)) process.stderr.write(`${line}\n`);
    lastStage = stage;
  };
}

/** 75_000 -> "1m15s", 9_000 -> "9s". */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}
