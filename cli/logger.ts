/** Log lines to stderr: `HH:MM:SS.mmm component message`; stdout stays free for results. */
export function makeLogger(component: string): (line: string) => void {
  return (line: string) => {
    const t = new Date().toISOString().slice(11, 23);
    process.stderr.write(`${t} ${component} ${line}\n`);
  };
}
