import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { ingestModel, runtimeRefusal } from '../../prepare/ingest.js';
import { decodeTensor, onnx } from '../../onnx/onnx-proto.js';
import { loadModelEntry, parseManifest, ManifestError } from '../../shared/model-manifest.js';

const MODEL_DIR = 'models';
const ORIGINAL = join('zoo', 'mnist-cnn', 'original.onnx');
const scratch = mkdtempSync(join(tmpdir(), 'escapement-ingest-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function runModel(path: string, input: Float32Array, batchSize: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1, logSeverityLevel: 3 });
  try {
    const out = await session.run({ Input3: new ort.Tensor('float32', input, [batchSize, 1, 28, 28]) });
    return out[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

describe('ingesting the bundled MNIST CNN', () => {
  const golden = decodeTensor(readFileSync(join('zoo', 'mnist-cnn', 'test_data', 'input_0.pb')));
  const expected = decodeTensor(readFileSync(join('zoo', 'mnist-cnn', 'test_data', 'output_0.pb')));

  it('rewrites the hard-wired batch of 1 in the input and the Reshape constant', async () => {
    const report = await ingestModel({ inputPath: ORIGINAL, name: 'mnist', outDir: scratch, batchSizes: [1, 2, 4, 8] });
    expect(report.rewrite).toEqual({ numInputsRewritten: 1, numOutputsRewritten: 1, reshapesRewritten: ['Times212_reshape0'] });
    expect(report.manifest.inputs).toEqual([{ name: 'Input3', dtype: 'float32', shape: [-1, 1, 28, 28] }]);
    expect(report.maxAbsDiff).toBeLessThan(1e-5);
  });

  it('the original refuses a batch of 4, the ingested model reproduces the golden vector in every row', async () => {
    const batch = new Float32Array(4 * 784);
    for (let row = 0; row < 4; row++) batch.set(golden, row * 784);
    await expect(runModel(ORIGINAL, batch, 4)).rejects.toThrow();
    const path = join(scratch, 'mnist', 'model.onnx');
    const out = await runModel(path, batch, 4);
    for (let row = 0; row < 4; row++) {
      const got = out.subarray(row * 10, row * 10 + 10);
      expect(Math.max(...Array.from(got, (v, i) => Math.abs(v - expected[i]!)))).toBeLessThan(1e-5);
    }
  });

  it('the committed models/mnist-cnn package matches a fresh ingestion', () => {
    const committed = loadModelEntry(MODEL_DIR, 'mnist-cnn');
    expect(readFileSync(committed.onnxPath)).toEqual(readFileSync(join(scratch, 'mnist', 'model.onnx')));
  });

  it('refuses a file that is not ONNX with a clear message', async () => {
    const junk = join(scratch, 'junk.onnx');
    writeFileSync(junk, Buffer.from('definitely not a protobuf model \u0000\u0001\u0002'));
    await expect(ingestModel({ inputPath: junk, name: 'junk', outDir: scratch, batchSizes: [1] })).rejects.toThrow(/not a valid ONNX model|no graph/);
  });
});

/** The bundled early-exit package's manifest, changed by `edit`. */
function earlyExitManifest(edit: (earlyExit: Record<string, unknown>) => void): Record<string, unknown> {
  const json = JSON.parse(readFileSync('models/fmnist-resnet/manifest.json', 'utf8')) as { earlyExit: Record<string, unknown> };
  edit(json.earlyExit);
  return json;
}

describe('model manifests', () => {
  const good = {
    schemaVersion: 1,
    name: 'm',
    file: 'model.onnx',
    inputs: [{ name: 'x', dtype: 'float32', shape: [-1, 4] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 2] }],
    batchSizes: [1, 2],
  };
  it.each([
    ['a future schema version', { ...good, schemaVersion: 3 }, /schemaVersion 3 is not supported/],
    ['early-exit data in a version-1 manifest', { ...good, earlyExit: {} }, /earlyExit needs schemaVersion 2/],
    ['a path escaping the package', { ...good, file: '../x.onnx' }, /relative path/],
    ['descending batch sizes', { ...good, batchSizes: [4, 2] }, /ascending/],
    ['an unknown dtype', { ...good, inputs: [{ name: 'x', dtype: 'float16', shape: [-1, 4] }] }, /inputs\[0\]\.dtype: a dtype, got "float16"/],
    ['a fixed batch dimension', { ...good, inputs: [{ name: 'x', dtype: 'float32', shape: [1, 4] }] }, /start with -1/],
    [
      'an early-exit ramp whose threshold is a string',
      earlyExitManifest((ee) => ((ee.ramps as { validation: Record<string, unknown> }[])[0]!.validation.threshold = 'high')),
      /earlyExit\.ramps\[0\]\.validation\.threshold: .*got "high"/,
    ],
    [
      'an early-exit segment file escaping the package',
      earlyExitManifest((ee) => ((ee.segments as { file: string }[])[0]!.file = '../../etc/passwd')),
      /segments\[0\]\.file must be a relative path inside the package/,
    ],
  ])('says precisely what is wrong with %s', (_name, json, message) => {
    expect(() => parseManifest(json)).toThrow(ManifestError);
    expect(() => parseManifest(json)).toThrow(message);
  });
});

describe('runtimeRefusal', () => {
  const model = onnx.ModelProto.create({
    graph: {
      node: [
        { name: 'a', opType: 'Relu' },
        { name: 'b', opType: 'GridSample' },
        { name: 'c', opType: 'GridSample' },
      ],
    },
  });
  it('names the nodes of the op onnxruntime has no implementation for', () => {
    const refusal = runtimeRefusal(model, new Error("Could not find an implementation for GridSample(16) node with name 'b'"));
    expect(refusal).toContain("no kernel for GridSample, used by node 'b', 'c'");
    expect(refusal).toMatch(/Re-export the model/);
  });
  it('passes other failures through as they are', () => {
    expect(runtimeRefusal(model, new Error('protobuf parsing failed'))).toBe('onnxruntime cannot run this model: protobuf parsing failed');
  });
});
