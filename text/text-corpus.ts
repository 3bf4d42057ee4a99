/**
 * Labelled text corpora as gzipped (or plain) JSON lines: one `{"label": int, "text": string}`
 * per line (other fields are kept but unused), e.g. datasets/spam-assassin/messages.jsonl.gz.
 */
import { CodedError, ErrorCode } from '../shared/error-codes.js';
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

export interface TextCorpus {
  texts: string[];
  labels: Int32Array;
}

export class CorpusError extends CodedError {
  override readonly name = 'CorpusError';
  readonly code = ErrorCode.DATASET_INVALID;
}

export function isCorpusError(err: unknown): err is CorpusError {
  return err instanceof CorpusError;
}

export function readTextCorpus(path: string): TextCorpus {
  if (!existsSync(path)) throw new CorpusError(`corpus file ${path} does not exist`);
  const raw = readFileSync(path);
  const content = (raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw).toString('utf8');
  const texts: string[] = [];
  const labels: number[] = [];
  content.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let record: { label?: unknown; text?: unknown };
    try {
      record = JSON.parse(line) as typeof record;
    } catch {
      throw new CorpusError(`${path}:${i + 1}: not JSON`);
    }
    if (typeof record.text !== 'string') throw new CorpusError(`${path}:${i + 1}: "text" must be a string`);
    if (!Number.isInteger(record.label) || (record.label as number) < 0) throw new CorpusError(`${path}:${i + 1}: "label" must be a non-negative integer`);
    texts.push(record.text);
    labels.push(record.label as number);
  });
  return { texts, labels: Int32Array.from(labels) };
}
