/** `escapement submit` and `escapement status`: talking to a running controller. */
import { EscapementClient } from '../client/escapement-client.js';
import { inputsFromFile, randomInputs } from '../client/input-tensors.js';
import { packageTokenizer, textInputs } from '../client/text-inputs.js';
import { formatTable, summarize } from '../loadgen/latency-summary.js';
import { runOpenLoop } from '../loadgen/open-loop.js';
import { loadModelEntry } from '../shared/model-manifest.js';
import { asFloat32 } from '../shared/tensor.js';
import { readPeerKeys } from '../shared/curve-keys.js';

export interface SubmitArgs {
  controller: string;
  model: string;
  sloMs: number;
  input: string | undefined;
  text?: string | undefined;
  random: boolean;
  count: number;
  rate: number;
  modelDir: string;
  seed: number;
  json: boolean;
  /** Client key file from `escapement keys` (CURVE). */
  key?: string | undefined;
}

export async function runSubmit(args: SubmitArgs): Promise<number> {
  const entry = loadModelEntry(args.modelDir, args.model);
  const manifest = entry.manifest;
  let fixed = args.input ? inputsFromFile(manifest, args.input) : undefined;
  const tokenizer = packageTokenizer(entry);
  if (args.text !== undefined) {
    if (!tokenizer) throw new Error(`--text needs a text model; ${args.model} has no tokenizer`);
    fixed = textInputs(tokenizer, args.text);
  } else if (tokenizer && !fixed) {
    throw new Error(`${args.model} is a text model: give --text "..."`);
  }
  const client = await EscapementClient.connect(args.controller, args.key ? { curve: readPeerKeys(args.key) } : {});
  try {
    const result = await runOpenLoop(client, {
      model: args.model,
      numRequests: args.count,
      ratePerSec: args.rate,
      sloMs: args.sloMs,
      seed: args.seed,
      inputsFor: (i) => fixed ?? randomInputs(manifest, args.seed + i),
    });
    const summary = summarize(result.responses);
    if (args.json) {
      process.stdout.write(`${JSON.stringify({ summary, responses: args.count === 1 ? result.responses.map(describe) : undefined })}\n`);
    } else {
      if (args.count === 1) process.stdout.write(`${JSON.stringify(describe(result.responses[0]!), null, 2)}\n`);
      process.stdout.write(
        formatTable([
          {
            requests: summary.numRequests,
            ok: summary.byStatus.OK ?? 0,
            rejected: summary.byStatus.REJECTED ?? 0,
            missed: summary.byStatus.DEADLINE_MISSED ?? 0,
            errors: summary.byStatus.ERROR ?? 0,
            p50Ms: summary.p50Ms,
            p99Ms: summary.p99Ms,
            maxMs: summary.maxMs,
          },
        ]) + '\n',
      );
    }
    return (summary.byStatus.ERROR ?? 0) > 0 ? 1 : 0;
  } finally {
    await client.close();
  }
}

function describe(r: Awaited<ReturnType<EscapementClient['submit']>>) {
  return {
    status: r.status,
    code: r.code,
    message: r.message,
    latencyMs: r.clientLatencyMs,
    workerId: r.workerId,
    batchSize: r.batchSize,
    outputs: r.outputs.map((t) => ({ name: t.name, shape: t.shape, values: t.dtype === 'float32' ? Array.from(asFloat32(t.data)) : undefined })),
  };
}

export async function runStatus(args: { controller: string; json: boolean; key?: string | undefined }): Promise<void> {
  const client = await EscapementClient.connect(args.controller, { syncClock: false, ...(args.key ? { curve: readPeerKeys(args.key) } : {}) });
  try {
    const status = await client.status();
    process.stdout.write(`${JSON.stringify(status, null, args.json ? 0 : 2)}\n`);
  } finally {
    await client.close();
  }
}
