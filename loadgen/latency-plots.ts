/**
 * Plots of a comparison: the latency CDF of each variant (log-scaled latency) and p99 latency over
 * the run, as one vega-lite figure, written as SVG and PNG (resvg); `renderPlot` renders any other.
 */
import { writeFileSync } from 'node:fs';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { ReplayRecord } from './replay.js';

export interface PlotSeries {
  label: string;
  records: readonly ReplayRecord[];
}

function cdfPoints(series: PlotSeries): { run: string; latencyMs: number; fraction: number }[] {
  const latencies = series.records
    .filter((r) => r && (r.status === 'OK' || r.status === 'DEADLINE_MISSED'))
    .map((r) => r.latencyMs)
    .sort((a, b) => a - b);
  const points = [];
  const steps = 200;
  for (let k = 1; k <= steps; k++) {
    const index = Math.min(latencies.length - 1, Math.ceil((k / steps) * latencies.length) - 1);
    if (index >= 0) points.push({ run: series.label, latencyMs: Math.max(0.01, latencies[index]!), fraction: k / steps });
  }
  return points;
}

function p99OverTime(series: PlotSeries, binSec: number): { run: string; timeS: number; p99Ms: number }[] {
  const valid = series.records.filter((r) => r && (r.status === 'OK' || r.status === 'DEADLINE_MISSED'));
  if (valid.length === 0) return [];
  const start = Math.min(...valid.map((r) => r.arrivalNs));
  const bins = new Map<number, number[]>();
  for (const r of valid) {
    const bin = Math.floor((r.arrivalNs - start) / 1e9 / binSec);
    const list = bins.get(bin) ?? [];
    list.push(r.latencyMs);
    bins.set(bin, list);
  }
  return [...bins]
    .sort((a, b) => a[0] - b[0])
    .map(([bin, list]) => {
      list.sort((a, b) => a - b);
      return { run: series.label, timeS: bin * binSec, p99Ms: list[Math.min(list.length - 1, Math.floor(0.99 * list.length))]! };
    });
}

export async function writeComparisonPlots(basePath: string, series: PlotSeries[], title: string): Promise<{ svgPath: string; pngPath: string }> {
  const spec: vl.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    vconcat: [
      {
        width: 640,
        height: 280,
        title: 'latency CDF',
        data: { values: series.flatMap(cdfPoints) },
        mark: { type: 'line', interpolate: 'step-after' },
        encoding: {
          x: { field: 'latencyMs', type: 'quantitative', title: 'latency from scheduled arrival (ms, log)', scale: { type: 'log' } },
          y: { field: 'fraction', type: 'quantitative', title: 'fraction of requests' },
          color: { field: 'run', type: 'nominal', title: null, legend: { labelLimit: 320 } },
        },
      },
      {
        width: 640,
        height: 200,
        title: 'p99 latency over the run (0.5 s bins)',
        data: { values: series.flatMap((s) => p99OverTime(s, 0.5)) },
        mark: 'line',
        encoding: {
          x: { field: 'timeS', type: 'quantitative', title: 'time (s)' },
          y: { field: 'p99Ms', type: 'quantitative', title: 'p99 latency (ms)' },
          color: { field: 'run', type: 'nominal', title: null, legend: { labelLimit: 320 } },
        },
      },
    ],
  };
  return renderPlot(spec, basePath);
}

/** Renders a vega-lite figure to `basePath`.svg and `basePath`.png. */
export async function renderPlot(spec: vl.TopLevelSpec, basePath: string): Promise<{ svgPath: string; pngPath: string }> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const svgPath = `${basePath}.svg`;
  const pngPath = `${basePath}.png`;
  writeFileSync(svgPath, svg);
  writeFileSync(pngPath, new Resvg(svg, { background: 'white', font: { loadSystemFonts: true } }).render().asPng());
  return { svgPath, pngPath };
}
