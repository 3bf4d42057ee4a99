/** Reads any supported trace file into arrivals, detecting the format from its first line. */
import { readFileSync } from 'node:fs';
import { expandCounts, type ArrivalDistribution } from './arrival-process.js';
import { readAzureFunctions2019, readAzureFunctions2021 } from './azure-functions-reader.js';
import { readAzureLlmTrace } from './azure-llm-reader.js';
import { readCsvTrace } from './csv-reader.js';
import type { MappingOverrides } from './field-mapping.js';
import { readJsonlTrace } from './jsonl-reader.js';
import type { Arrival } from './trace.js';

export const TRACE_FORMATS = ['azure-llm', 'azure-functions-2019', 'azure-functions-2021', 'jsonl', 'csv'] as const;
export type TraceFormat = (typeof TRACE_FORMATS)[number];

export function detectFormat(firstLine: string): TraceFormat | undefined {
  const line = firstLine.trim();
  if (/^TIMESTAMP,ContextTokens,GeneratedTokens$/i.test(line)) return 'azure-llm';
  if (line.startsWith('HashOwner,HashApp,HashFunction,Trigger,')) return 'azure-functions-2019';
  if (line === 'app,func,end_timestamp,duration') return 'azure-functions-2021';
  if (line.startsWith('{')) return 'jsonl';
  // any other header row: a CSV whose columns field-mapping.ts maps (or says what to give)
  if (line.includes(',') && /[A-Za-z]/.test(line)) return 'csv';
  return undefined;
}

export interface LoadTraceOptions {
  format?: TraceFormat;
  /** How per-minute counts become arrivals (2019 format only). Default poisson. */
  distribution?: ArrivalDistribution;
  cv?: number;
  seed: number;
  /** JSON lines and CSV: which fields hold the time (and its unit), the model and the SLO. */
  fields?: MappingOverrides;
}

/** A loaded trace: arrivals from 0 ms, and how the file was read (for the trace summary). */
export interface LoadedTrace {
  arrivals: Arrival[];
  format: TraceFormat;
  /** JSON lines and CSV: the field mapping used, e.g. "Timestamp (s), layout burstgpt". */
  readAs?: string;
  numOutOfOrder: number;
}

export function loadTrace(path: string, options: LoadTraceOptions): Arrival[] {
  return readTrace(path, options).arrivals;
}

export function readTrace(path: string, options: LoadTraceOptions): LoadedTrace {
  const text = readFileSync(path, 'utf8');
  const format = options.format ?? detectFormat(text.slice(0, text.indexOf('\n') >>> 0));
  const plain = (arrivals: Arrival[]): LoadedTrace => ({ arrivals, format: format!, numOutOfOrder: 0 });
  switch (format) {
    case 'azure-llm':
      return plain(readAzureLlmTrace(text, path));
    case 'azure-functions-2019':
      return plain(
        expandCounts(readAzureFunctions2019(text, path), {
          distribution: options.distribution ?? 'poisson',
          seed: options.seed,
          ...(options.cv !== undefined ? { cv: options.cv } : {}),
        }),
      );
    case 'azure-functions-2021':
      return plain(readAzureFunctions2021(text, path));
    case 'jsonl':
    case 'csv': {
      const mapped = (format === 'jsonl' ? readJsonlTrace : readCsvTrace)(text, path, options.fields ?? {});
      const m = mapped.mapping;
      const extra = [m.modelField ? `model from ${m.modelField}` : '', m.sloField ? `SLO from ${m.sloField} (ms)` : ''].filter(Boolean).join(', ');
      return {
        arrivals: mapped.arrivals,
        format,
        readAs: `time from ${m.timeField} (${m.timeUnit})${extra ? `, ${extra}` : ''}; layout ${mapped.layout}`,
        numOutOfOrder: mapped.numOutOfOrder,
      };
    }
    default:
      throw new Error(`${path}: unknown trace format (give --format ${TRACE_FORMATS.join(' | ')})`);
  }
}
