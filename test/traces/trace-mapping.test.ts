import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { profiledCapacityRps } from '../../loadgen/profiled-capacity.js';
import { traceFor } from '../../cli/replay-command.js';
import { readCsvTrace, splitCsvLine } from '../../traces/csv-reader.js';
import { TraceMappingError } from '../../traces/field-mapping.js';
import { readJsonlTrace } from '../../traces/jsonl-reader.js';
import { TraceFormatError } from '../../traces/trace.js';
import { readTrace } from '../../traces/trace-loader.js';
import { summarizeTrace, timeScaleForTargetLoad } from '../../traces/trace-summary.js';

const FIXTURES = 'test/fixtures/traces';

describe('traces in public layouts, detected by their field names', () => {
  it('reads a Mooncake-layout trace: timestamp in ms, rows sorted, ties kept', () => {
    const trace = readTrace(`${FIXTURES}/mooncake-layout.jsonl`, { seed: 1 });
    expect(trace.format).toBe('jsonl');
    expect(trace.readAs).toMatch(/time from timestamp \(ms\).*layout mooncake/);
    expect(trace.arrivals.map((a) => a.timeMs)).toEqual([0, 0, 1500, 3052]);
    expect(trace.numOutOfOrder).toBe(1);
  });

  it('reads a BurstGPT-layout trace: Timestamp in seconds', () => {
    const trace = readTrace(`${FIXTURES}/burstgpt-layout.csv`, { seed: 1 });
    expect(trace.format).toBe('csv');
    expect(trace.readAs).toMatch(/layout burstgpt/);
    expect(trace.arrivals.map((a) => a.timeMs)).toEqual([0, 40_000, 113_000, 113_000]);
    expect(trace.arrivals.every((a) => a.model === undefined)).toBe(true); // LLM names are not served models
  });

  it('reads an Alibaba GPU 2023 pod list: creation_time in seconds, unsorted rows sorted', () => {
    const trace = readTrace(`${FIXTURES}/alibaba-gpu-2023-layout.csv`, { seed: 1 });
    expect(trace.readAs).toMatch(/time from creation_time \(s\).*layout alibaba-gpu-2023/);
    expect(trace.arrivals.map((a) => a.timeMs)).toEqual([0, 25_000, 205_000]);
    expect(trace.numOutOfOrder).toBe(1);
  });

  it('reads the Alibaba PAI 2020 job table, published without a header row, by its values', () => {
    const trace = readTrace(`${FIXTURES}/alibaba-pai-2020-jobs.csv`, { seed: 1 });
    expect(trace.format).toBe('csv');
    expect(trace.readAs).toMatch(/time from start_time \(s\).*layout alibaba-pai-2020/);
    expect(trace.arrivals.map((a) => a.timeMs)).toEqual([0, 12_500, 100_000]);
    // with its .header file's row in front, the same
    const withHeader = readCsvTrace(`job_name,inst_id,user,status,start_time,end_time\n${readFileSync(`${FIXTURES}/alibaba-pai-2020-jobs.csv`, 'utf8')}`);
    expect(withHeader.arrivals.map((a) => a.timeMs)).toEqual([0, 12_500, 100_000]);
    // a header-less file of any other shape is still refused as one
    expect(() => readCsvTrace('1,2,3\n4,5,6\n')).toThrow(/time|field/i);
  });

  it('reads an Azure LLM 2024-layout file as CSV with dates, the same as its own reader', () => {
    const asCsv = readTrace(`${FIXTURES}/azure-llm-2024-layout.csv`, { seed: 1, format: 'csv' });
    const own = readTrace(`${FIXTURES}/azure-llm-2024-layout.csv`, { seed: 1 });
    expect(own.format).toBe('azure-llm');
    expect(asCsv.arrivals.map((a) => a.timeMs)).toEqual(own.arrivals.map((a) => a.timeMs));
    expect(asCsv.arrivals[1]!.timeMs).toBeCloseTo(508.921, 3);
  });
});

describe("a layout of the user's own", () => {
  it('refuses a bare number it cannot put a unit on, and says which flag to give', () => {
    expect(() => readTrace(`${FIXTURES}/custom-seconds.jsonl`, { seed: 1 })).toThrow(TraceMappingError);
    expect(() => readTrace(`${FIXTURES}/custom-seconds.jsonl`, { seed: 1 })).toThrow(/'arrival_time' holds numbers.*--time-unit ms\|s\|us\|ns/);
  });

  it('reads it with the unit, model and SLO fields given', () => {
    const trace = readTrace(`${FIXTURES}/custom-seconds.jsonl`, { seed: 1, fields: { timeUnit: 's', modelField: 'endpoint', sloField: 'deadline_ms' } });
    expect(trace.arrivals).toEqual([
      { timeMs: 0, model: 'fmnist-resnet', sloMs: 40 },
      { timeMs: 250, model: 'fmnist-resnet-112', sloMs: 300 },
      { timeMs: 1500, model: 'fmnist-resnet' }, // no SLO on the row: the replay's own
    ]);
  });

  it('takes the unit from the field name, and dates from the values', () => {
    expect(readJsonlTrace('{"sent_time_us": 2000}\n{"sent_time_us": 5000}').arrivals.map((a) => a.timeMs)).toEqual([0, 3]);
    const dated = readCsvTrace('id,time\na,2026-01-01T00:00:00Z\nb,2026-01-01T00:00:01.5Z');
    expect(dated.mapping).toEqual({ timeField: 'time', timeUnit: 'date' });
    expect(dated.arrivals.map((a) => a.timeMs)).toEqual([0, 1500]);
  });

  it('names the fields it has when none holds a time, or a given one is missing', () => {
    expect(() => readCsvTrace('a,b\n1,2')).toThrow(/no arrival-time field among \[a, b\]; name it with --time-field/);
    expect(() => readJsonlTrace('{"t": 1}', 'x.jsonl', { timeField: 'when', timeUnit: 'ms' })).toThrow(
      /--time-field 'when' is not a field of this trace \[t\]/,
    );
    expect(() => readJsonlTrace('{"t": 1}', 'x.jsonl', { timeField: 't', timeUnit: 'ms', modelField: 'm' })).toThrow(/--model-field 'm'/);
  });

  it('reports every bad row with its line number', () => {
    const text = ['t_ms,model', '1,a', 'x,a', '3', '4,"b', '5,'].join('\n');
    try {
      readCsvTrace(text, 'bad.csv', { modelField: 'model' });
      throw new Error('expected a TraceFormatError');
    } catch (err) {
      expect(err).toBeInstanceOf(TraceFormatError);
      expect((err as TraceFormatError).badRows.map((b) => b.line)).toEqual([3, 4, 5]);
    }
  });

  it('splits quoted CSV cells', () => {
    expect(splitCsvLine('1,"a, b","say ""hi""",')).toEqual(['1', 'a, b', 'say "hi"', '']);
    expect(splitCsvLine('1,"open')).toBeUndefined();
  });
});

describe('the trace summary', () => {
  const even = Array.from({ length: 1000 }, (_, i) => ({ timeMs: i * 100 })); // 10 req/s for 100 s

  it('gives requests, span, mean and peak rate, and the burstiness of the gaps', () => {
    const s = summarizeTrace(even);
    expect(s).toMatchObject({ numRequests: 1000, peakRps: 10 });
    expect(s.spanS).toBeCloseTo(99.9, 6);
    expect(s.meanRps).toBeCloseTo(10, 6);
    expect(s.gapCv).toBeCloseTo(0, 6);
    const bursty = summarizeTrace([...Array.from({ length: 50 }, () => ({ timeMs: 0 })), { timeMs: 60_000 }]);
    expect(bursty.peakRps).toBe(50);
    expect(bursty.gapCv).toBeGreaterThan(5);
  });

  it('finds the speed-up that puts the busiest replay second at the target share of capacity', () => {
    // 100 req/s capacity at 50 %: a replay second may hold 50 arrivals, i.e. 5 s of this trace
    expect(timeScaleForTargetLoad(even, 100, 0.5)).toBeCloseTo(5, 3);
    // a burst of 40 in one instant, then quiet: the burst alone bounds the speed-up from below
    expect(() => timeScaleForTargetLoad([...Array.from({ length: 40 }, () => ({ timeMs: 0 })), { timeMs: 1000 }], 20, 1)).toThrow(/share one instant/);
  });

  it("replays a trace at --target-load of the model's profiled capacity", () => {
    const args = {
      trace: `${FIXTURES}/mooncake-layout.jsonl`,
      format: undefined,
      distribution: 'poisson' as const,
      cv: 1,
      seed: 1,
      timeScale: 1,
      rateScale: 1,
      startOffsetS: 0,
      maxSeconds: undefined,
      maxRequests: undefined,
      model: 'fmnist-resnet',
      modelDir: 'models',
    };
    const plain = traceFor(args);
    expect(plain.timeScale).toBe(1);
    expect(plain.notes[0]).toMatch(/4 requests over 3\.1 s.*peak second 2 req\/s/);
    const targetLoad = 0.002;
    const allowed = Math.floor(targetLoad * profiledCapacityRps('models', 'fmnist-resnet'));
    expect(allowed).toBeGreaterThanOrEqual(2); // the fixture's two arrivals at 0 ms fit in one second
    const scaled = traceFor({ ...args, targetLoad });
    expect(scaled.notes.at(-1)).toMatch(/^time scale [\d.]+: the busiest replay second offers/);
    expect(summarizeTrace(scaled.arrivals).peakRps).toBeLessThanOrEqual(allowed);
    // and only just: 1 % faster would put more in its busiest second
    expect(summarizeTrace(traceFor({ ...args, timeScale: scaled.timeScale * 1.01 }).arrivals).peakRps).toBeGreaterThan(allowed);
    // A host that runs the model at 60 % of its profile's speed gets the same share of its own
    // capacity: a slower replay. One within the profile's own noise gets the profile's.
    const speed = (ratio: number) => ({ ratio, batchSize: 16, profiledMs: 16, measuredMs: 16 / ratio });
    const slow = traceFor({ ...args, targetLoad, hostSpeed: speed(0.6) });
    const profiled = traceFor({ ...args, targetLoad });
    expect(slow.timeScale).toBeLessThan(profiled.timeScale);
    expect(summarizeTrace(slow.arrivals).peakRps).toBeLessThanOrEqual(Math.floor(targetLoad * 0.6 * profiledCapacityRps('models', 'fmnist-resnet')));
    expect(slow.notes.at(-1)).toMatch(/scaled by 0\.60/);
    expect(traceFor({ ...args, targetLoad, hostSpeed: speed(0.95) }).timeScale).toBe(profiled.timeScale);
  });
});
