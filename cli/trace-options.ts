/** The workload flags `replay` and `compare` share: trace format, field mapping, target load, input drift. */
import type { Argv } from 'yargs';
import { TIME_UNITS, type MappingOverrides } from '../traces/field-mapping.js';
import { TRACE_FORMATS, type TraceFormat } from '../traces/trace-loader.js';

export function withTraceOptions<T>(y: Argv<T>) {
  return y
    .option('format', {
      choices: TRACE_FORMATS,
      describe: 'trace format (detected from the first line by default); jsonl and csv read any layout through the field flags',
    })
    .option('time-field', { type: 'string', describe: "jsonl/csv: the field holding each arrival's time (detected for known layouts)" })
    .option('time-unit', { choices: TIME_UNITS, describe: 'jsonl/csv: unit of --time-field (date: an ISO or Azure-style timestamp)' })
    .option('model-field', { type: 'string', describe: "jsonl/csv: the field naming each request's model" })
    .option('slo-field', { type: 'string', describe: "jsonl/csv: the field holding each request's SLO in ms" })
    .option('drift', {
      type: 'string',
      describe: 'serve drifting inputs: class-mix, noise, shift, or a JSON description (see loadgen/drift.ts); the report then shows each window of the run',
    })
    .option('target-load', {
      type: 'number',
      describe:
        "replace --time-scale by the speed-up that puts the replay's busiest second at this share of the model's profiled capacity (2 workers), e.g. 0.7",
    });
}

interface TraceFlags {
  format?: TraceFormat | undefined;
  'time-field'?: string | undefined;
  'time-unit'?: (typeof TIME_UNITS)[number] | undefined;
  'model-field'?: string | undefined;
  'slo-field'?: string | undefined;
  'target-load'?: number | undefined;
  drift?: string | undefined;
}

/** The parsed flags as ReplayArgs fields. */
export function traceArgsOf(a: TraceFlags): { format: TraceFormat | undefined; fields: MappingOverrides; targetLoad?: number; drift?: string } {
  const fields: MappingOverrides = {};
  if (a['time-field'] !== undefined) fields.timeField = a['time-field'];
  if (a['time-unit'] !== undefined) fields.timeUnit = a['time-unit'];
  if (a['model-field'] !== undefined) fields.modelField = a['model-field'];
  if (a['slo-field'] !== undefined) fields.sloField = a['slo-field'];
  return {
    format: a.format,
    fields,
    ...(a['target-load'] !== undefined ? { targetLoad: a['target-load'] } : {}),
    ...(a.drift !== undefined ? { drift: a.drift } : {}),
  };
}
