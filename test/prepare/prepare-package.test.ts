import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { imageInputs, loadDataset, readIdx, DatasetError, bootstrapSplit } from '../../prepare/dataset.js';
import { DEFAULT_PREPARE_OPTIONS, preparePackage, PrepareError, type PrepareOptions } from '../../prepare/prepare-package.js';
import { loadModelEntry, ManifestError } from '../../shared/model-manifest.js';

const scratch = mkdtempSync(join(tmpdir(), 'escapement-prepare-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function writeNpy(path: string, descr: '<f4' | '<i4', shape: number[], values: ArrayLike<number>): void {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  while ((10 + header.length + 1) % 64 !== 0) header += ' ';
  header += '\n';
  const body = descr === '<f4' ? Buffer.from(Float32Array.from(values).buffer) : Buffer.from(Int32Array.from(values).buffer);
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  writeFileSync(path, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
}

/** The first n Fashion-MNIST test images as an unlabelled NPY dataset, [n, 1, 28, 28]. */
function unlabelledNpy(n: number): string {
  const { values } = readIdx('datasets/fashion-mnist-test/t10k-images-idx3-ubyte.gz');
  const path = join(scratch, `unlabelled-${n}.npy`);
  writeNpy(path, '<f4', [n, 1, 28, 28], values.subarray(0, n * 784));
  return path;
}

const quiet = () => undefined;
const fast = { ...DEFAULT_PREPARE_OPTIONS.profile, numRuns: 5, numWarmup: 1, maxMsPerSize: 50 };

function options(overrides: Partial<PrepareOptions>): PrepareOptions {
  return {
    ...DEFAULT_PREPARE_OPTIONS,
    modelPath: 'zoo/mnist-cnn/original.onnx',
    datasetPath: 'datasets/fashion-mnist-test',
    outDir: join(scratch, 'pkg'),
    name: 'pkg',
    profile: fast,
    onProgress: quiet,
    ...overrides,
  };
}

describe('escapement prepare', () => {
  it("trains ramps on the model's own predictions when the data has no labels, deterministically", async () => {
    const dataset = unlabelledNpy(600);
    const outA = join(scratch, 'a', 'mnist-ee');
    const outB = join(scratch, 'b', 'mnist-ee');
    const a = await preparePackage(options({ datasetPath: dataset, labels: 'model', outDir: outA, name: 'mnist-ee', bootstrapFraction: 0.5 }));
    await preparePackage(options({ datasetPath: dataset, labels: 'model', outDir: outB, name: 'mnist-ee', bootstrapFraction: 0.5 }));
    expect(a.numSites).toBe(4);
    expect(a.manifest.earlyExit!.dataset).toMatchObject({
      labels: 'model',
      numSamples: 600,
      train: { start: 0, end: 30 },
      validation: { start: 30, end: 300 },
      serveStart: 300,
    });
    for (const siteId of [0, 1, 2, 3]) {
      expect(readFileSync(join(outA, `ramp_${siteId}.onnx`))).toEqual(readFileSync(join(outB, `ramp_${siteId}.onnx`)));
    }
    const entry = loadModelEntry(join(scratch, 'a'), 'mnist-ee');
    expect(entry.manifest.earlyExit!.ramps).toHaveLength(4);
    // Each head is the better of its two training candidates on the validation split.
    for (const ramp of entry.manifest.earlyExit!.ramps) {
      const { distilled, labels } = ramp.candidateExitFractions!;
      expect(ramp.validation.exitFraction).toBe(Math.max(distilled, labels));
      expect(ramp.training).toBe(labels > distilled ? 'labels' : 'distilled');
    }
    expect(entry.manifest.earlyExit!.verification.predictionAgreement).toBe(1);
  });

  it('says precisely what is missing from a broken package', async () => {
    const out = join(scratch, 'broken', 'mnist-ee');
    await preparePackage(options({ datasetPath: unlabelledNpy(300), labels: 'model', outDir: out, name: 'mnist-ee', bootstrapFraction: 0.5 }));
    unlinkSync(join(out, 'ramp_2.onnx'));
    expect(() => loadModelEntry(join(scratch, 'broken'), 'mnist-ee')).toThrow(ManifestError);
    expect(() => loadModelEntry(join(scratch, 'broken'), 'mnist-ee')).toThrow(/ramp_2\.onnx does not exist/);
  });

  it.each([
    [
      'a file that is not ONNX',
      () => {
        const p = join(scratch, 'junk.onnx');
        writeFileSync(p, 'not a model');
        return options({ modelPath: p });
      },
      /not a valid ONNX model|no graph/,
    ],
    [
      'a dataset of the wrong shape',
      () => {
        const p = join(scratch, 'wrong.npy');
        writeNpy(p, '<f4', [50, 10], new Float32Array(500));
        return options({ datasetPath: p, labels: 'model' });
      },
      /dataset samples have shape \[10\] but the model's input 'Input3' expects \[1,28,28\]/,
    ],
    ['ground-truth labels that do not exist', () => options({ datasetPath: unlabelledNpy(300), labels: 'truth' }), /has no labels: use --labels model/],
    [
      'a bootstrap split too small to train on',
      () => options({ datasetPath: unlabelledNpy(300), labels: 'model', bootstrapFraction: 0.01 }),
      /bootstrap split too small/,
    ],
  ])('refuses %s with a clear error', async (_name, make, message) => {
    await expect(preparePackage(make())).rejects.toThrow(message);
  });

  it('refuses a model with no usable ramp site', async () => {
    const mlp = join(scratch, 'mlp');
    mkdirSync(mlp, { recursive: true });
    const { onnx, encodeModel } = await import('../../onnx/onnx-proto.js');
    const model = onnx.ModelProto.create({
      irVersion: 7,
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'mlp',
        node: [
          { opType: 'Flatten', input: ['x'], output: ['f'] },
          { opType: 'MatMul', input: ['f', 'w'], output: ['y'] },
        ],
        initializer: [{ name: 'w', dims: [784, 10], dataType: 1, rawData: new Uint8Array(784 * 10 * 4) }],
        input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, { dimValue: 1 }, { dimValue: 28 }, { dimValue: 28 }] } } } }],
        output: [{ name: 'y', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, { dimValue: 10 }] } } } }],
      },
    });
    writeFileSync(join(mlp, 'mlp.onnx'), encodeModel(model));
    await expect(preparePackage(options({ modelPath: join(mlp, 'mlp.onnx') }))).rejects.toThrow(PrepareError);
    await expect(preparePackage(options({ modelPath: join(mlp, 'mlp.onnx') }))).rejects.toThrow(/no usable ramp site/);
  });
});

describe('datasets', () => {
  it('reads the bundled Fashion-MNIST test set (IDX, gzipped) with its labels', () => {
    const d = loadDataset('datasets/fashion-mnist-test');
    expect(d.numSamples).toBe(10_000);
    expect(d.sampleShape).toEqual([28, 28]);
    expect(d.labels!.length).toBe(10_000);
    expect(Math.max(...imageInputs(d).subarray(0, 784))).toBeLessThanOrEqual(255);
    expect(new Set(d.labels).size).toBe(10);
  });

  it('reads NPY inputs with labels from a folder, and rejects mismatched labels', () => {
    const dir = join(scratch, 'npy-ds');
    mkdirSync(dir, { recursive: true });
    writeNpy(join(dir, 'x.npy'), '<f4', [4, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    writeNpy(join(dir, 'y.npy'), '<i4', [4], [0, 1, 0, 1]);
    writeFileSync(join(dir, 'dataset.json'), JSON.stringify({ format: 'npy', inputs: 'x.npy', labels: 'y.npy' }));
    const d = loadDataset(dir);
    expect(Array.from(imageInputs(d))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(Array.from(d.labels!)).toEqual([0, 1, 0, 1]);
    writeNpy(join(dir, 'y.npy'), '<i4', [3], [0, 1, 0]);
    expect(() => loadDataset(dir)).toThrow(/3 labels for 4 samples/);
    writeFileSync(join(dir, 'x.npy'), 'garbage!!');
    expect(() => loadDataset(dir)).toThrow(DatasetError);
  });

  it('splits the first 10 % 1:9 into training and validation, serving the rest', () => {
    expect(bootstrapSplit(10_000, 0.1, 1, 9)).toEqual({
      train: { start: 0, end: 100 },
      validation: { start: 100, end: 1000 },
      serve: { start: 1000, end: 10_000 },
    });
  });
});
