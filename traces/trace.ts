/**
 * A trace is a list of request arrivals, in time order, relative to the trace's start. Readers
 * report every bad row with its line number (`TraceFormatError`) instead of skipping it silently.
 */
import { CodedError, ErrorCode } from '../shared/error-codes.js';
export interface Arrival {
  /** Milliseconds since the first arrival of the trace (after scaling). */
  timeMs: number;
  /** Model to call, when the trace (or a mapping) says. */
  model?: string;
  sloMs?: number;
  /** Which function / stream of the source trace it came from. */
  source?: string;
}

export interface BadRow {
  line: number;
  message: string;
}

export class TraceFormatError extends CodedError {
  override readonly name = 'TraceFormatError';
  readonly code = ErrorCode.TRACE_INVALID;

  constructor(
    readonly path: string,
    readonly badRows: BadRow[],
  ) {
    const shown = badRows
      .slice(0, 10)
      .map((b) => `  line ${b.line}: ${b.message}`)
      .join('\n');
    super(`${path}: ${badRows.length} bad row(s)\n${shown}${badRows.length > 10 ? `\n  … and ${badRows.length - 10} more` : ''}`);
  }
}

export function isTraceFormatError(err: unknown): err is TraceFormatError {
  return err instanceof TraceFormatError;
}

/** Splits text into non-empty lines with their 1-based line numbers. */
export function numberedLines(text: string): { line: number; text: string }[] {
  return text
    .split(/\r?\n/)
    .map((t, i) => ({ line: i + 1, text: t }))
    .filter((l) => l.text.trim() !== '');
}
