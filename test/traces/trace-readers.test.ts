import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { expandCounts, mapSourcesToModels, scaleArrivals, zipfSplit } from '../../traces/arrival-process.js';
import { readAzureFunctions2019, readAzureFunctions2021 } from '../../traces/azure-functions-reader.js';
import { parseAzureTimestamp, readAzureLlmTrace } from '../../traces/azure-llm-reader.js';
import { readJsonlTrace } from '../../traces/jsonl-reader.js';
import { TraceFormatError } from '../../traces/trace.js';
import { detectFormat, loadTrace } from '../../traces/trace-loader.js';

function badLines(fn: () => unknown): number[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof TraceFormatError) return err.badRows.map((b) => b.line);
    throw err;
  }
  throw new Error('expected a TraceFormatError');
}

describe('the Azure LLM 2023 trace', () => {
  it('reads the bundled production trace: 19,366 requests over about 58 minutes, in order', () => {
    const arrivals = loadTrace('traces/azure-llm-2023-conv.csv', { seed: 1 });
    expect(arrivals).toHaveLength(19_366);
    expect(arrivals[0]!.timeMs).toBe(0);
    expect(arrivals.at(-1)!.timeMs / 60_000).toBeGreaterThan(57);
    expect(arrivals.at(-1)!.timeMs / 60_000).toBeLessThan(59);
    expect(arrivals.every((a, i) => i === 0 || a.timeMs >= arrivals[i - 1]!.timeMs)).toBe(true);
    expect(arrivals[1]!.timeMs).toBeCloseTo(4314.579, 2); // 18:15:50.9951690 − 18:15:46.6805900
  });

  it('parses timestamps to 100 ns and refuses nonsense', () => {
    expect(parseAzureTimestamp('2023-11-16 18:15:46.6805900')! % 1000).toBeCloseTo(680.59, 3);
    expect(parseAzureTimestamp('2023-13-16 18:15:46')).toBeUndefined();
    expect(parseAzureTimestamp('yesterday')).toBeUndefined();
  });

  it('reports every bad row with its line number', () => {
    const text = [
      'TIMESTAMP,ContextTokens,GeneratedTokens',
      '2023-11-16 18:15:46.1,1,2',
      'garbage',
      '2023-11-16 18:15:47.1,x,2',
      '2023-11-16 18:15:45.0,1,2',
      '2023-11-16 18:15:48.0,1,2',
    ].join('\n');
    expect(badLines(() => readAzureLlmTrace(text))).toEqual([3, 4, 5]);
    expect(badLines(() => readAzureLlmTrace('ts,a,b\n'))).toEqual([1]);
  });
});

describe('Azure Functions traces', () => {
  it('reads the 2019 per-minute format fixture: 4 functions × 1,440 minutes', () => {
    const functions = readAzureFunctions2019(readFileSync('traces/azure-functions-format-fixture.csv', 'utf8'));
    expect(functions).toHaveLength(4);
    expect(functions.every((f) => f.counts.length === 1440)).toBe(true);
    expect(functions[0]!.trigger).toBeTruthy();
  });

  it('reports malformed 2019 rows with line numbers', () => {
    const header = `HashOwner,HashApp,HashFunction,Trigger,${Array.from({ length: 3 }, (_, i) => i + 1).join(',')}`;
    const text = [header, 'o,a,f,http,1,2,3', 'o,a,g,http,1,2', 'o,a,h,timer,1,-2,3'].join('\n');
    expect(badLines(() => readAzureFunctions2019(text))).toEqual([3, 4]);
  });

  it('reads 2021 invocations, arriving at end − duration, sorted', () => {
    const text = ['app,func,end_timestamp,duration', 'a,f,10.5,0.5', 'a,g,10.2,2.0', 'b,f,12.0,0'].join('\n');
    expect(readAzureFunctions2021(text).map((a) => [Math.round(a.timeMs * 1000) / 1000, a.source])).toEqual([
      [0, 'a/g'],
      [1800, 'a/f'],
      [3800, 'b/f'],
    ]);
    expect(badLines(() => readAzureFunctions2021(['app,func,end_timestamp,duration', 'a,f,x,1', 'a,f,1'].join('\n')))).toEqual([2, 3]);
  });
});

describe('JSONL traces', () => {
  it('reads timestamps, models and SLOs, and reports bad lines', () => {
    const { arrivals } = readJsonlTrace(['{"timestamp_ms": 105, "model": "a", "slo_ms": 20}', '{"timestamp_ms": 100}'].join('\n'));
    expect(arrivals).toEqual([{ timeMs: 0 }, { timeMs: 5, model: 'a', sloMs: 20 }]);
    expect(badLines(() => readJsonlTrace(['{"timestamp_ms": 1}', 'nope', '{"t": 3}', '{"timestamp_ms": 4, "slo_ms": -1}'].join('\n')))).toEqual([2, 3, 4]);
  });

  it('detects formats from the first line', () => {
    expect(detectFormat('TIMESTAMP,ContextTokens,GeneratedTokens')).toBe('azure-llm');
    expect(detectFormat('HashOwner,HashApp,HashFunction,Trigger,1,2')).toBe('azure-functions-2019');
    expect(detectFormat('app,func,end_timestamp,duration')).toBe('azure-functions-2021');
    expect(detectFormat('{"timestamp_ms": 1}')).toBe('jsonl');
    expect(detectFormat('a,b,c')).toBe('csv'); // any other header: mapped by its field names
    expect(detectFormat('1,2,3')).toBeUndefined();
  });
});

describe('arrival generation', () => {
  const fn = { id: 'f', trigger: 'http', counts: [120, 0, 60] };

  it("spaces a minute's count evenly (Apparate)", () => {
    const arrivals = expandCounts([fn], { distribution: 'uniform', seed: 1 });
    expect(arrivals).toHaveLength(180);
    expect(arrivals[0]!.timeMs).toBeCloseTo(250, 6);
    expect(arrivals.filter((a) => a.timeMs >= 60_000 && a.timeMs < 120_000)).toHaveLength(0);
  });

  it("draws Poisson and gamma arrivals reproducibly under a seed, at the minute's rate", () => {
    const many = { id: 'g', trigger: 'http', counts: Array(30).fill(600) };
    const a = expandCounts([many], { distribution: 'poisson', seed: 7 });
    const b = expandCounts([many], { distribution: 'poisson', seed: 7 });
    const c = expandCounts([many], { distribution: 'poisson', seed: 8 });
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a.length / 18_000).toBeGreaterThan(0.95);
    expect(a.length / 18_000).toBeLessThan(1.05);
    const cvOf = (xs: { timeMs: number }[]) => {
      const gaps = xs.slice(1).map((x, i) => x.timeMs - xs[i]!.timeMs);
      const mean = gaps.reduce((s, g) => s + g, 0) / gaps.length;
      return Math.sqrt(gaps.reduce((s, g) => s + (g - mean) ** 2, 0) / gaps.length) / mean;
    };
    expect(cvOf(a)).toBeCloseTo(1, 1);
    expect(cvOf(expandCounts([many], { distribution: 'gamma', cv: 3, seed: 7 }))).toBeGreaterThan(2.2);
  });

  it('scales time and rate, offsets and truncates', () => {
    const base = expandCounts([{ id: 'f', trigger: 'http', counts: Array(10).fill(60) }], { distribution: 'uniform', seed: 1 });
    const faster = scaleArrivals(base, { timeScale: 10, seed: 1 });
    expect(faster.at(-1)!.timeMs).toBeCloseTo(base.at(-1)!.timeMs / 10, 6);
    expect(scaleArrivals(base, { rateScale: 2, seed: 1 }).length).toBe(1200);
    const thinned = scaleArrivals(base, { rateScale: 0.5, seed: 1 }).length;
    expect(thinned).toBeGreaterThan(250);
    expect(thinned).toBeLessThan(350);
    const window = scaleArrivals(base, { startOffsetMs: 60_000, maxSeconds: 30, seed: 1 });
    expect(window[0]!.timeMs).toBeCloseTo(500, 6);
    expect(window.every((a) => a.timeMs < 30_000)).toBe(true);
    expect(scaleArrivals(base, { maxRequests: 7, seed: 1 })).toHaveLength(7);
  });

  it('maps functions to model copies by volume (Clockwork) or splits one stream by Zipf', () => {
    const fns = [
      { id: 'small', trigger: 'x', counts: [1] },
      { id: 'big', trigger: 'x', counts: [5] },
      { id: 'mid', trigger: 'x', counts: [3] },
    ];
    const mapped = mapSourcesToModels(expandCounts(fns, { distribution: 'uniform', seed: 1 }), ['m0', 'm1']);
    expect(new Set(mapped.filter((a) => a.source === 'big').map((a) => a.model))).toEqual(new Set(['m0']));
    expect(new Set(mapped.filter((a) => a.source === 'mid').map((a) => a.model))).toEqual(new Set(['m1']));
    expect(new Set(mapped.filter((a) => a.source === 'small').map((a) => a.model))).toEqual(new Set(['m0']));
    // an arrival that names its model keeps it; one without a source is left for the default
    const [named, anonymous] = mapSourcesToModels([{ timeMs: 0, source: 'big', model: 'x' }, { timeMs: 1 }], ['m0']);
    expect(named!.model).toBe('x');
    expect(anonymous!.model).toBeUndefined();
    const split = zipfSplit(
      Array.from({ length: 10_000 }, (_, i) => ({ timeMs: i })),
      ['a', 'b', 'c'],
      1,
      3,
    );
    const share = (m: string) => split.filter((a) => a.model === m).length / 10_000;
    expect(share('a')).toBeCloseTo(1 / (1 + 1 / 2 + 1 / 3), 1);
    expect(share('a')).toBeGreaterThan(share('b'));
    expect(share('b')).toBeGreaterThan(share('c'));
  });
});
