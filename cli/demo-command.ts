/**
 * `escapement demo`: the README's main command. Starts a controller and two real workers on
 * loopback, checks the bundled MNIST CNN against its golden vector through the whole system,
 * then sends open-loop bursts with SLO deadlines at a low and a high rate and prints a
 * latency / SLO table. Exits non-zero if any request was lost or answered with an error.
 */
import { join } from 'node:path';
import { EscapementClient, type InferResponse } from '../client/escapement-client.js';
import { inputsFromFile, randomInputs } from '../client/input-tensors.js';
import { formatTable, summarize } from '../client/latency-summary.js';
import { runOpenLoop } from '../client/open-loop.js';
import { loadModelEntry } from '../shared/model-manifest.js';
import { asFloat32 } from '../shared/tensor.js';
import { decodeTensor } from '../prepare/onnx-proto.js';
import { readFileSync } from 'node:fs';
import { LocalCluster } from './local-cluster.js';

export interface DemoArgs {
  modelDir: string;
  model: string;
  sloMs: number;
  seconds: number;
  verbose: boolean;
}

const PHASES = [
  { name: 'low load', ratePerSec: 200 },
  { name: 'high load', ratePerSec: 1500 },
];

export async function runDemo(args: DemoArgs): Promise<number> {
  const entry = loadModelEntry(args.modelDir, args.model);
  process.stderr.write(`starting a controller and 2 workers serving ${args.model} ...\n`);
  const cluster = await LocalCluster.start({ numWorkers: 2, modelDir: args.modelDir, preload: [args.model], verbose: args.verbose });
  const client = await EscapementClient.connect(cluster.clientUrl);
  let failures = 0;
  try {
    await cluster.waitUntilServing(client, [args.model]);

    // 1. correctness through the whole system: the golden vector
    // The zoo keeps each bundled model's golden vector beside its source ONNX.
    const goldenDir = join('zoo', args.model, 'test_data');
    const golden = await client.submit(args.model, inputsFromFile(entry.manifest, join(goldenDir, 'input_0.pb')), { sloMs: 1000 });
    const expected = decodeTensor(readFileSync(join(goldenDir, 'output_0.pb')));
    const got = golden.outputs[0] ? asFloat32(golden.outputs[0].data) : new Float32Array();
    const maxDiff = got.length === expected.length ? Math.max(...expected.map((v, i) => Math.abs(v - got[i]!))) : Infinity;
    process.stdout.write(`golden vector: status ${golden.status}, max |diff| ${maxDiff.toExponential(2)}\n`);
    if (golden.status !== 'OK' || maxDiff > 1e-4) failures++;

    // 2. open-loop bursts with deadlines
    const rows: Record<string, string | number>[] = [];
    for (const phase of PHASES) {
      const numRequests = Math.round(phase.ratePerSec * args.seconds);
      process.stderr.write(`${phase.name}: ${numRequests} requests at ${phase.ratePerSec}/s, SLO ${args.sloMs} ms\n`);
      const result = await runOpenLoop(client, {
        model: args.model,
        numRequests,
        ratePerSec: phase.ratePerSec,
        sloMs: args.sloMs,
        seed: 7,
        inputsFor: (i) => randomInputs(entry.manifest, i + 1),
      });
      const lost = result.responses.filter((r: InferResponse | undefined) => r === undefined).length;
      const s = summarize(result.responses);
      failures += lost + (s.byStatus.ERROR ?? 0);
      rows.push({
        phase: phase.name,
        'rate/s': phase.ratePerSec,
        requests: s.numRequests,
        ok: s.byStatus.OK ?? 0,
        rejected: s.byStatus.REJECTED ?? 0,
        missed: s.byStatus.DEADLINE_MISSED ?? 0,
        errors: s.byStatus.ERROR ?? 0,
        lost,
        'slo %': 100 * s.sloAttainment,
        p50Ms: s.p50Ms,
        p99Ms: s.p99Ms,
        maxMs: s.maxMs,
        meanBatch: s.meanBatchSize,
      });
    }
    process.stdout.write(`\n${formatTable(rows)}\n`);
  } catch (err) {
    process.stderr.write(`demo failed: ${(err as Error).message}\n${cluster.logTail()}\n`);
    failures++;
  } finally {
    await client.close();
    await cluster.stop();
  }
  process.stdout.write(failures === 0 ? '\ndemo: every request answered, none lost\n' : `\ndemo: ${failures} failure(s)\n`);
  return failures === 0 ? 0 : 1;
}
