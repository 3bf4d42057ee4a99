/**
 * Open Inference Protocol conformance with real HTTP requests (`fetch` only) against a running
 * controller and an onnxruntime worker, plus /metrics.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLeaks } from '../support/leak-check.js';
import { EscapementClient } from '../../client/escapement-client.js';
import { LocalCluster } from '../../cluster/local-cluster.js';
import { decodeTensor } from '../../onnx/onnx-proto.js';
import { imageInputs, loadDataset } from '../../prepare/dataset.js';
import { WordTokenizer } from '../../text/word-tokenizer.js';

/** What the tests read of an OIP infer reply: its outputs, or its error. */
interface OipInferBody {
  outputs: [{ name: string; shape: number[]; datatype: string; data: number[] }];
  parameters: { early_exit?: boolean; exit_ramp?: number; exit_confidence?: number };
  error?: string;
}

const golden = Array.from(decodeTensor(readFileSync('zoo/mnist-cnn/test_data/input_0.pb')));
const expected = Array.from(decodeTensor(readFileSync('zoo/mnist-cnn/test_data/output_0.pb')));

/** Parses Prometheus text exposition into `name{labels}` -> value. */
function parseMetrics(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    // values as Go's ParseFloat reads them (prom-client writes NaN as "Nan")
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.eE+-]+|[Nn]a[Nn]|[+-]Inf)$/.exec(line);
    if (!match) throw new Error(`not Prometheus exposition format: ${line}`);
    values.set(match[1]!, Number(match[2]));
  }
  return values;
}

describe('the HTTP front door', () => {
  let cluster: LocalCluster;
  let base: string;
  checkLeaks(() => [cluster]);

  beforeAll(async () => {
    cluster = await LocalCluster.start({
      numWorkers: 1,
      modelDir: 'models',
      preload: ['mnist-cnn', 'fmnist-resnet'],
      controllerArgs: ['--exit-mode', 'compact'],
    });
    base = cluster.httpUrl;
    const client = await EscapementClient.connect(cluster.clientUrl);
    await cluster.waitUntilServing(client, ['mnist-cnn', 'fmnist-resnet']);
    await client.close();
  });
  afterAll(() => cluster?.stop());

  const get = async (path: string) => {
    const res = await fetch(`${base}${path}`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const infer = async (model: string, body: unknown) => {
    const res = await fetch(`${base}/v2/models/${model}/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as OipInferBody };
  };

  it('answers health and server metadata', async () => {
    expect(await get('/v2/health/live')).toEqual({ status: 200, body: { live: true } });
    expect(await get('/v2/health/ready')).toEqual({ status: 200, body: { ready: true } });
    const meta = await get('/v2');
    expect(meta.body).toMatchObject({ name: 'escapement' });
    expect(meta.body.extensions).toEqual(expect.arrayContaining(['schedule_policy', 'model_repository', 'statistics', 'binary_tensor_data']));
  });

  it('describes models and their readiness, with versions', async () => {
    const meta = await get('/v2/models/fmnist-resnet');
    expect(meta.body).toMatchObject({
      name: 'fmnist-resnet',
      versions: ['1'],
      inputs: [{ name: 'pixels', datatype: 'FP32', shape: [-1, 1, 28, 28] }],
      outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 10] }],
    });
    expect((await get('/v2/models/fmnist-resnet/versions/1')).status).toBe(200);
    expect(await get('/v2/models/fmnist-resnet/ready')).toEqual({ status: 200, body: { name: 'fmnist-resnet', ready: true } });
    const missing = await get('/v2/models/nope');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatch(/unknown model 'nope'/);
    expect((await get('/v2/models/fmnist-resnet/versions/7')).status).toBe(404);
  });

  it('answers a known path with the wrong method 405 and an unknown path 404, with or without a trailing slash', async () => {
    const call = async (method: string, path: string) => {
      const res = await fetch(`${base}${path}`, { method });
      return { status: res.status, body: (await res.json()) as { error: string } };
    };
    expect(await call('DELETE', '/v2/models/mnist-cnn/infer')).toEqual({ status: 405, body: { error: 'DELETE is not allowed on /v2/models/mnist-cnn/infer' } });
    expect((await call('POST', '/v2/models/mnist-cnn')).status).toBe(405);
    expect((await call('DELETE', '/v2/models/nope/infer')).status).toBe(404); // an unknown model before the method
    expect((await call('GET', '/v2/nothing-here')).body.error).toMatch(/no route for GET \/v2\/nothing-here/);
    expect((await call('GET', '/v2/models/mnist-cnn/')).status).toBe(200);
    expect((await call('GET', '/v2/health/live/')).status).toBe(200);
  });

  it('checks an infer body against the OIP request schema and names the bad field', async () => {
    const bad = async (body: unknown, message: RegExp) => {
      const res = await infer('mnist-cnn', body);
      expect(res.status).toBe(400);
      expect(res.body.error).toMatch(message);
    };
    await bad({ inputs: [{ name: 'Input3', shape: '1x784', datatype: 'FP32', data: [] }] }, /request\.inputs\[0\]\.shape/);
    await bad({ inputs: [{ name: 'Input3', shape: [1, -784], datatype: 'FP32', data: [] }] }, /request\.inputs\[0\]\.shape\[1\]/);
    await bad({ inputs: [{ name: 7, shape: [1], datatype: 'FP32', data: [0] }] }, /request\.inputs\[0\]\.name/);
    await bad({ id: 12, inputs: [] }, /request\.id/);
    await bad({ inputs: [{ name: 'Input3', shape: [1], datatype: 'FP32', parameters: { binary_data_size: -1 } }] }, /binary_data_size/);
    await bad([1, 2, 3], /request: /);
  });

  it('infers with nested or flat JSON data and returns the right numbers', async () => {
    const nested = Array.from({ length: 28 }, (_, r) => golden.slice(r * 28, r * 28 + 28));
    for (const data of [[[nested]], golden]) {
      const { status, body } = await infer('mnist-cnn', {
        id: 'g1',
        inputs: [{ name: 'Input3', shape: [1, 1, 28, 28], datatype: 'FP32', data }],
        parameters: { timeout: 200_000 },
      });
      expect(status).toBe(200);
      expect(body).toMatchObject({ model_name: 'mnist-cnn', model_version: '1', id: 'g1', parameters: { early_exit: false, deadline_met: true } });
      expect(body.outputs[0]).toMatchObject({ name: 'Plus214_Output_0', datatype: 'FP32', shape: [1, 10] });
      (body.outputs[0].data as number[]).forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 3));
    }
  });

  it('reports early exits in the response parameters', async () => {
    const dataset = loadDataset('datasets/fashion-mnist-test');
    let early = 0;
    for (let i = 0; i < 30; i++) {
      const data = Array.from(imageInputs(dataset).subarray((1000 + i) * 784, (1001 + i) * 784));
      const { status, body } = await infer('fmnist-resnet', {
        inputs: [{ name: 'pixels', shape: [1, 1, 28, 28], datatype: 'FP32', data }],
        parameters: { slo_ms: 500 },
      });
      expect(status).toBe(200);
      expect(typeof body.parameters.early_exit).toBe('boolean');
      if (body.parameters.early_exit) {
        early++;
        expect(typeof body.parameters.exit_ramp).toBe('number');
        expect(body.parameters.exit_confidence).toBeGreaterThan(0);
        expect(body.outputs[0].name).toBe('probabilities');
      }
    }
    expect(early).toBeGreaterThan(5); // most Fashion-MNIST images exit at a ramp
  });

  it('refuses bad requests with the right status and an error body', async () => {
    const bad = async (model: string, body: unknown, status: number, message: RegExp) => {
      const res = await infer(model, body);
      expect(res.status).toBe(status);
      expect(res.body.error).toMatch(message);
    };
    await bad('mnist-cnn', { inputs: [{ name: 'Input3', shape: [1, 1, 28, 27], datatype: 'FP32', data: Array(756).fill(0) }] }, 400, /shape/);
    await bad('mnist-cnn', { inputs: [{ name: 'Input3', shape: [1, 1, 28, 28], datatype: 'FP16', data: [] }] }, 400, /unsupported datatype/);
    await bad('mnist-cnn', { inputs: [{ name: 'Input3', shape: [1, 1, 28, 28], datatype: 'FP32', data: [1, 2] }] }, 400, /values for shape/);
    await bad('mnist-cnn', { nope: true }, 400, /inputs/);
    await bad('nope', { inputs: [] }, 404, /unknown model/);
    await bad(
      'mnist-cnn',
      { inputs: [{ name: 'Input3', shape: [1, 1, 28, 28], datatype: 'FP32', data: golden }], parameters: { timeout: 5 } },
      429,
      /REJECTED/,
    );
    const raw = await fetch(`${base}/v2/models/mnist-cnn/infer`, { method: 'POST', body: '{not json' });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as { error: string }).error).toMatch(/not valid JSON/);
  });

  it('speaks the binary tensor data extension both ways', async () => {
    const header = Buffer.from(
      JSON.stringify({
        inputs: [{ name: 'Input3', shape: [1, 1, 28, 28], datatype: 'FP32', parameters: { binary_data_size: 784 * 4 } }],
        parameters: { binary_data_output: true, slo_ms: 500 },
      }),
    );
    const body = Buffer.concat([header, Buffer.from(Float32Array.from(golden).buffer)]);
    const res = await fetch(`${base}/v2/models/mnist-cnn/infer`, {
      method: 'POST',
      headers: { 'inference-header-content-length': String(header.length), 'content-type': 'application/octet-stream' },
      body,
    });
    expect(res.status).toBe(200);
    const jsonLength = Number(res.headers.get('inference-header-content-length'));
    const bytes = Buffer.from(await res.arrayBuffer());
    const meta = JSON.parse(bytes.subarray(0, jsonLength).toString()) as { outputs: { parameters: { binary_data_size: number } }[] };
    expect(meta.outputs[0]!.parameters.binary_data_size).toBe(40);
    const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset + jsonLength, bytes.byteOffset + jsonLength + 40));
    Array.from(values).forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 3));
  });

  it('indexes, unloads and loads models through the repository extension, and counts statistics', async () => {
    const index = await fetch(`${base}/v2/repository/index`, { method: 'POST', body: '{}' });
    expect(((await index.json()) as { name: string; state: string }[]).map((m) => [m.name, m.state])).toEqual([
      ['fmnist-resnet', 'READY'],
      ['fmnist-resnet-112', 'UNAVAILABLE'],
      ['mnist-cnn', 'READY'],
      ['spam-transformer', 'UNAVAILABLE'],
    ]);
    expect((await fetch(`${base}/v2/repository/models/mnist-cnn/unload`, { method: 'POST', body: '{}' })).status).toBe(200);
    const refused = await infer('mnist-cnn', { inputs: [{ name: 'Input3', shape: [1, 1, 28, 28], datatype: 'FP32', data: golden }] });
    expect(refused.status).toBe(503);
    expect(refused.body.error).toMatch(/unloaded/);
    expect((await fetch(`${base}/v2/repository/models/mnist-cnn/load`, { method: 'POST', body: '{}' })).status).toBe(200);
    for (let i = 0; i < 100 && (await get('/v2/models/mnist-cnn/ready')).status !== 200; i++) await new Promise((r) => setTimeout(r, 100));
    expect(
      (await infer('mnist-cnn', { inputs: [{ name: 'Input3', shape: [1, 1, 28, 28], datatype: 'FP32', data: golden }], parameters: { slo_ms: 500 } })).status,
    ).toBe(200);
    const stats = await get('/v2/models/mnist-cnn/stats');
    expect((stats.body.model_stats as { inference_stats: { success: { count: number } } }[])[0]!.inference_stats.success.count).toBeGreaterThanOrEqual(3);
  });

  it('exposes Prometheus metrics whose counters move as requests flow', async () => {
    const scrape = async () => parseMetrics(await (await fetch(`${base}/metrics`)).text());
    const before = await scrape();
    const key = 'escapement_inference_request_success_total{model="mnist-cnn"}';
    await infer('mnist-cnn', { inputs: [{ name: 'Input3', shape: [1, 1, 28, 28], datatype: 'FP32', data: golden }], parameters: { slo_ms: 500 } });
    const after = await scrape();
    expect(after.get(key)! - (before.get(key) ?? 0)).toBe(1);
    expect(after.get('escapement_worker_up{worker="worker-0"}')).toBe(1);
    expect([...after.keys()].some((k) => k.startsWith('escapement_inference_request_duration_seconds_bucket'))).toBe(true);
    expect([...after.keys()].some((k) => k.startsWith('escapement_ramp_threshold{model="fmnist-resnet"'))).toBe(true);
    expect(after.has('escapement_inference_pending_requests')).toBe(true);
    expect([...after.keys()].some((k) => k.startsWith('escapement_inference_queue_duration_seconds_count{model="mnist-cnn"}'))).toBe(true);
    expect([...after.keys()].some((k) => k.startsWith('escapement_inference_compute_duration_seconds_count{model="mnist-cnn"}'))).toBe(true);
  });

  it("serves the text model: token ids and mask as INT64 of the text's own length, loaded on demand", async () => {
    const meta = await get('/v2/models/spam-transformer');
    expect(meta.body).toMatchObject({
      inputs: [
        { name: 'input_ids', datatype: 'INT64', shape: [-1, -1] },
        { name: 'attention_mask', datatype: 'INT64', shape: [-1, -1] },
      ],
    });
    const tokenizer = WordTokenizer.load('models/spam-transformer/tokenizer.json');
    const { ids } = tokenizer.encode('Re: lunch on friday? the usual place works for me');
    const body = (data: number[], mask: number[]) => ({
      inputs: [
        { name: 'input_ids', shape: [1, data.length], datatype: 'INT64', data },
        { name: 'attention_mask', shape: [1, mask.length], datatype: 'INT64', data: mask },
      ],
      parameters: { slo_ms: 10_000 },
    });
    const ok = await infer(
      'spam-transformer',
      body(
        ids,
        ids.map(() => 1),
      ),
    );
    expect(ok.status).toBe(200);
    expect(ok.body.outputs[0].shape).toEqual([1, 2]);
    const tooLong = Array.from({ length: tokenizer.maxTokens + 1 }, () => 5);
    const bad = await infer(
      'spam-transformer',
      body(
        tooLong,
        tooLong.map(() => 1),
      ),
    );
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/129 tokens/);
    // 1e400 parses as Infinity: refused as bad input (it was a 500)
    const huge = JSON.stringify(body([5, 6], [1, 1])).replace('"data":[5,6]', '"data":[5,1e400]');
    const infinite = await fetch(`${base}/v2/models/spam-transformer/infer`, { method: 'POST', body: huge });
    expect(infinite.status).toBe(400);
    expect(((await infinite.json()) as { error: string }).error).toMatch(/finite/);
    const fractional = await infer('spam-transformer', {
      ...body([5, 6], [1, 1]),
      inputs: [
        { name: 'input_ids', shape: [1, 2], datatype: 'INT64', data: [5, 6.5] },
        { name: 'attention_mask', shape: [1, 2], datatype: 'INT64', data: [1, 1] },
      ],
    });
    expect(fractional.status).toBe(400);
  });
});
