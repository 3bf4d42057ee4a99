/** A one-line progress display on stderr (redrawn in place on a TTY, a line per stage otherwise). */
export function makeProgress(label: string): (stage: string, done: number, total: number) => void {
  let lastStage = '';
  let lastDrawMs = 0;
  return (stage, done, total) => {
    const now = Date.now();
    const finished = done >= total;
    if (stage === lastStage && !finished && now - lastDrawMs < 100) return;
    lastDrawMs = now;
    const width = 24;
    const filled = total > 0 ? Math.round((width * done) / total) : width;
    const line = `${label} ${stage.padEnd(16)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
    if (process.stderr.isTTY) process.stderr.write(`\r${line}${finished ? '\n' : ''}`);
    else if (stage !== lastStage || finished) {
      if (finished) process.stderr.write(`${line}\n`);
    }
    lastStage = stage;
  };
}
