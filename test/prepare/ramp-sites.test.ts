import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { dataInputNames, makeBatchDynamic } from '../../prepare/batch-dimension.js';
import { GraphIndex } from '../../onnx/onnx-graph.js';
import { decodeModel, encodeModel, onnx, type ModelProto } from '../../onnx/onnx-proto.js';
import { findCuts, findRampSites } from '../../prepare/ramp-sites.js';
import { SegmentChain } from '../../onnx/segment-chain.js';
import { segmentModel } from '../../onnx/segmenter.js';

function load(path: string): ModelProto {
  const model = decodeModel(readFileSync(path));
  makeBatchDynamic(model);
  return model;
}

function input(model: ModelProto, shape: number[]) {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = 100 * Math.sin(i * 0.37);
  return { name: dataInputNames(model)[0]!, shape, data };
}

const opOf = (index: GraphIndex, tensor: string): string => index.nodes[index.producer.get(tensor)!]!.opType ?? '';

describe('ramp sites on real architectures', () => {
  it('ResNet-50 has a site after each of its 16 residual blocks', async () => {
    const model = load('test/fixtures/onnx-light/light_resnet50.onnx');
    const index = new GraphIndex(model);
    const { sites } = await findRampSites(model, [input(model, [1, 3, 224, 224])]);
    // a block ends where the residual Sum is followed by its Relu
    const blockEnds = index.nodes
      .filter((n) => n.opType === 'Relu' && index.nodes[index.producer.get(n.input![0]!)!]!.opType === 'Sum')
      .map((n) => n.output![0]!);
    expect(blockEnds).toHaveLength(16);
    const siteTensors = sites.map((s) => s.tensor);
    for (const t of blockEnds) expect(siteTensors).toContain(t);
    // and never inside a block, where the skip connection is live too
    expect(sites.every((s) => ['Relu', 'MaxPool'].includes(opOf(index, s.tensor)))).toBe(true);
    expect(sites.filter((s) => opOf(index, s.tensor) === 'Relu')).toHaveLength(17); // + the stem
    expect(sites.map((s) => s.shape.slice(1, 2)[0])).toContain(2048);
  });

  it('SqueezeNet fire modules are never split between their parallel expand branches', async () => {
    const model = load('test/fixtures/onnx-light/light_squeezenet.onnx');
    const index = new GraphIndex(model);
    const { sites } = await findRampSites(model, [input(model, [1, 3, 224, 224])]);
    const concats = index.nodes.filter((n) => n.opType === 'Concat');
    expect(concats).toHaveLength(8);
    const siteTensors = new Set(sites.map((s) => s.tensor));
    for (const concat of concats) {
      // each module's output is a site (or, when a Dropout follows, the Dropout's identical output)
      const out = concat.output![0]!;
      const next = index.consumers.get(out)!.map((c) => index.nodes[c]!);
      expect(siteTensors.has(out) || (next.length === 1 && next[0]!.opType === 'Dropout' && siteTensors.has(next[0]!.output![0]!))).toBe(true);
      for (const branch of concat.input!) expect(siteTensors.has(branch)).toBe(false); // its branches are not
    }
  });

  it('finds the four feature-map sites of the MNIST CNN and none in its flattened tail', async () => {
    const model = load('zoo/mnist-cnn/original.onnx');
    const { sites } = await findRampSites(model, [input(model, [2, 1, 28, 28])]);
    expect(sites.map((s) => s.shape)).toEqual([
      [-1, 8, 28, 28],
      [-1, 8, 14, 14],
      [-1, 16, 14, 14],
      [-1, 16, 4, 4],
    ]);
    expect(findCuts(new GraphIndex(model)).length).toBeGreaterThan(sites.length); // flat cuts exist but are no sites
  });

  it('finds no site in a model without a feature map or sequence', async () => {
    const model = onnx.ModelProto.create({
      irVersion: 7,
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'mlp',
        node: [
          { opType: 'MatMul', input: ['x', 'w1'], output: ['h'] },
          { opType: 'Relu', input: ['h'], output: ['a'] },
          { opType: 'MatMul', input: ['a', 'w2'], output: ['y'] },
        ],
        initializer: [
          { name: 'w1', dims: [4, 3], dataType: 1, floatData: Array(12).fill(0.1) },
          { name: 'w2', dims: [3, 2], dataType: 1, floatData: Array(6).fill(0.1) },
        ],
        input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, { dimValue: 4 }] } } } }],
        output: [{ name: 'y', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, { dimValue: 2 }] } } } }],
      },
    });
    const { sites } = await findRampSites(model, [{ name: 'x', shape: [2, 4], data: new Float32Array(8).fill(1) }]);
    expect(sites).toEqual([]);
  });
});

describe('segmenting', () => {
  it.each([
    { name: 'ResNet-50 (light)', path: 'test/fixtures/onnx-light/light_resnet50.onnx', shape: [3, 224, 224], batches: [1, 2] },
    { name: 'SqueezeNet (light)', path: 'test/fixtures/onnx-light/light_squeezenet.onnx', shape: [3, 224, 224], batches: [1, 2] },
    { name: 'MNIST CNN', path: 'zoo/mnist-cnn/original.onnx', shape: [1, 28, 28], batches: [1, 3, 16] },
  ])('the chain of segments at every site reproduces $name at several batch sizes', async ({ path, shape, batches }) => {
    const model = load(path);
    const { sites, types } = await findRampSites(model, [input(model, [2, ...shape])]);
    const segments = segmentModel(model, sites, types);
    expect(segments).toHaveLength(sites.length + 1);
    const chain = await SegmentChain.create(segments);
    const whole = await ort.InferenceSession.create(encodeModel(model), { intraOpNumThreads: 1, logSeverityLevel: 3 });
    try {
      for (const b of batches) {
        const x = input(model, [b, ...shape]);
        const feeds = { [x.name]: new ort.Tensor('float32', x.data, x.shape) };
        const out = whole.outputNames[0]!;
        const expected = (await whole.run(feeds))[out]!.data as Float32Array;
        const got = (await chain.run(feeds))[out]!.data as Float32Array;
        expect(got.length).toBe(expected.length);
        let maxDiff = 0;
        for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - expected[i]!));
        expect(maxDiff).toBeLessThan(1e-4);
      }
    } finally {
      await chain.release();
      await whole.release();
    }
  });

  it('splits weights instead of duplicating them', async () => {
    const model = load('zoo/mnist-cnn/original.onnx');
    const { sites, types } = await findRampSites(model, [input(model, [2, 1, 28, 28])]);
    const segments = segmentModel(model, sites, types);
    const initializers = segments.flatMap((s) => (s.model.graph!.initializer ?? []).map((t) => t.name));
    expect(new Set(initializers).size).toBe(initializers.length);
    expect(initializers.length).toBe(model.graph!.initializer!.length);
  });
});

describe('side inputs', () => {
  // x [N,4,8] with a mask [N,4] applied in every layer, like a transformer's attention mask
  const model = onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'masked',
      node: [
        { opType: 'Unsqueeze', input: ['mask', 'axis2'], output: ['m'] },
        { opType: 'Mul', input: ['x', 'm'], output: ['h1'] },
        { opType: 'Relu', input: ['h1'], output: ['a1'] },
        { opType: 'MatMul', input: ['a1', 'w'], output: ['h2'] },
        { opType: 'Mul', input: ['h2', 'm'], output: ['h3'] },
        { opType: 'Relu', input: ['h3'], output: ['a2'] },
        { opType: 'MatMul', input: ['a2', 'w'], output: ['h4'] },
        { opType: 'Mul', input: ['h4', 'm'], output: ['h5'] },
        {
          opType: 'ReduceMean',
          input: ['h5'],
          output: ['y'],
          attribute: [
            { name: 'axes', type: 7, ints: [1] },
            { name: 'keepdims', type: 2, i: 0 },
          ],
        },
      ],
      initializer: [
        { name: 'axis2', dims: [1], dataType: 7, int64Data: [2] },
        { name: 'w', dims: [8, 8], dataType: 1, floatData: Array.from({ length: 64 }, (_, i) => Math.cos(i)) },
      ],
      input: [
        { name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, { dimValue: 4 }, { dimValue: 8 }] } } } },
        { name: 'mask', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, { dimValue: 4 }] } } } },
      ],
      output: [{ name: 'y', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, { dimValue: 8 }] } } } }],
    },
  });
  const x = Float32Array.from({ length: 3 * 32 }, (_, i) => Math.sin(i));
  const mask = Float32Array.from({ length: 12 }, (_, i) => (i % 4 === 3 ? 0 : 1));

  it('cuts where one activation and the mask cross, and the chain passes the mask along', async () => {
    const { sites, types } = await findRampSites(
      model,
      [
        { name: 'x', shape: [3, 4, 8], data: x },
        { name: 'mask', shape: [3, 4], data: mask },
      ],
      'x',
    );
    // a1 and a2 feed a MatMul (kept); h4 -> Mul -> h5 is one place (the later kept)
    expect(sites.map((s) => [s.tensor, s.kind, s.sideTensors])).toEqual([
      ['a1', 'sequence', ['m']],
      ['a2', 'sequence', ['m']],
      ['h5', 'sequence', []],
    ]);
    const segments = segmentModel(model, sites, types, 'x');
    expect(segments.map((s) => s.inputs.sort())).toEqual([['mask', 'x'], ['a1', 'm'], ['a2', 'm'], ['h5']]);
    const chain = await SegmentChain.create(segments);
    const whole = await ort.InferenceSession.create(encodeModel(model), { logSeverityLevel: 3 });
    const feeds = { x: new ort.Tensor('float32', x, [3, 4, 8]), mask: new ort.Tensor('float32', mask, [3, 4]) };
    expect(Array.from((await chain.run(feeds)).y!.data as Float32Array)).toEqual(Array.from((await whole.run(feeds)).y!.data as Float32Array));
    await chain.release();
    await whole.release();
  });
});
