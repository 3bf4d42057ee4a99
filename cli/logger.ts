/**
 * Log lines on stderr (stdout stays free for results): human-readable on a terminal
 * (`HH:MM:SS.mmm component message`), JSON lines otherwise (`{"t","level","component","msg"}`),
 * for log collectors. `ESCAPEMENT_LOG_FORMAT=human|json` overrides the choice.
 * NOTE: request and model data never go into logs, only ids, counts and codes.
 */
export type LogFormat = 'human' | 'json';

export function logFormat(): LogFormat {
  const forced = process.env.ESCAPEMENT_LOG_FORMAT;
  if (forced === 'human' || forced === 'json') return forced;
  return process.stderr.isTTY ? 'human' : 'json';
}

export function makeLogger(component: string, format: LogFormat = logFormat()): (line: string) => void {
  return (line: string) => {
    const now = new Date().toISOString();
    if (format === 'json') process.stderr.write(`${JSON.stringify({ t: now, level: 'info', component, msg: line })}\n`);
    else process.stderr.write(`${now.slice(11, 23)} ${component} ${line}\n`);
  };
}
