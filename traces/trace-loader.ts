/** Reads any supported trace file into arrivals, detecting the format from its first line. */
import { readFileSync } from 'node:fs';
import { expandCounts, type ArrivalDistribution } from './arrival-process.js';
import { readAzureFunctions2019, readAzureFunctions2021 } from './azure-functions-reader.js';
import { readAzureLlmTrace } from './azure-llm-reader.js';
import { readJsonlTrace } from './jsonl-reader.js';
import type { Arrival } from './trace.js';

export type TraceFormat = 'azure-llm' | 'azure-functions-2019' | 'azure-functions-2021' | 'jsonl';

export function detectFormat(firstLine: string): TraceFormat | undefined {
  const line = firstLine.trim();
  if (/^TIMESTAMP,ContextTokens,GeneratedTokens$/i.test(line)) return 'azure-llm';
  if (line.startsWith('HashOwner,HashApp,HashFunction,Trigger,')) return 'azure-functions-2019';
  if (line === 'app,func,end_timestamp,duration') return 'azure-functions-2021';
  if (line.startsWith('{')) return 'jsonl';
  return undefined;
}

export interface LoadTraceOptions {
  format?: TraceFormat;
  /** How per-minute counts become arrivals (2019 format only). Default poisson. */
  distribution?: ArrivalDistribution;
  cv?: number;
  seed: number;
}

export function loadTrace(path: string, options: LoadTraceOptions): Arrival[] {
  const text = readFileSync(path, 'utf8');
  const format = options.format ?? detectFormat(text.slice(0, text.indexOf('\n') >>> 0));
  switch (format) {
    case 'azure-llm':
      return readAzureLlmTrace(text, path);
    case 'azure-functions-2019':
      return expandCounts(readAzureFunctions2019(text, path), { distribution: options.distribution ?? 'poisson', seed: options.seed, ...(options.cv !== undefined ? { cv: options.cv } : {}) });
    case 'azure-functions-2021':
      return readAzureFunctions2021(text, path);
    case 'jsonl':
      return readJsonlTrace(text, path);
    default:
      throw new Error(`${path}: unknown trace format (give --format azure-llm | azure-functions-2019 | azure-functions-2021 | jsonl)`);
  }
}
