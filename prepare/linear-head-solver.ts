/**
 * Training and evaluating linear ramp heads (feature maps: softmax regression) at native speed:
 * the same algorithm as ramp-trainer.ts (standardised features, Adam with L2 on shuffled
 * mini-batches, distillation from the teacher's logits), with every step of the big arithmetic
 * run by onnxruntime as a small ONNX graph (MLAS matrix products, elementwise Adam).
 *
 * Why: the plain-TypeScript trainer costs n·C·dim multiply-adds per sample per epoch, three times
 * over. An ImageNet-shaped model (1,000 classes, grid-pooled sites of 1,024–8,192 features) made
 * that ~10^11 per head: the trainer ran for tens of minutes with no progress after "features".
 * Here one step is two Gemms and a few elementwise passes over the weights in native code.
 *
 * Results match the TypeScript trainer up to float32 rounding (it computes in float64): the same
 * seeded shuffles, batches and updates. prepare uses this path for heads whose training would cost
 * more than `LARGE_HEAD_WORK` multiply-adds (the bundled zoo stays bit-identical).
 */
import * as ort from 'onnxruntime-node';
import { encodeModel, onnx } from './onnx-proto.js';
import { checkTrainingData, DEFAULT_TRAIN_OPTIONS, foldStandardisation, seededRandom, shuffleInPlace, softmaxInto, standardisation, type TrainOptions, type TrainedHead } from './ramp-trainer.js';
import type { RampOutputs } from './ramp-statistics.js';
import type { HeadWeights } from './ramp-heads.js';

/** Multiply-adds (samples × classes × features × epochs) above which prepare trains a head here. */
export const LARGE_HEAD_WORK = 2e9;

const FLOAT = 1;
const INT64 = 7;
const B1 = 0.9;
const B2 = 0.999;

const input = (name: string, dims: (number | string)[]) =>
  onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } } });
const scalar = (name: string, value: number) => onnx.TensorProto.create({ name, dims: [], dataType: FLOAT, floatData: [value] });
const node = (opType: string, inputs: string[], output: string, attribute: object[] = []) => onnx.NodeProto.create({ opType, input: inputs, output: [output], name: output, attribute });

function graphModel(nodes: ReturnType<typeof node>[], inputs: ReturnType<typeof input>[], outputs: string[], initializers: ReturnType<typeof scalar>[]) {
  return encodeModel(onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: { name: 'linear_head', node: nodes, input: inputs, output: outputs.map((name) => onnx.ValueInfoProto.create({ name })), initializer: initializers },
  }));
}

/** One Adam step of softmax regression (with optional distillation) on a mini-batch. */
function stepModel(dim: number, numClasses: number, options: TrainOptions, distill: number): Uint8Array {
  const t = options.temperature;
  const nodes = [
    node('Gemm', ['x', 'w', 'b'], 'z', [{ name: 'transB', type: 2, i: 1 }]),
    node('Softmax', ['z'], 'p', [{ name: 'axis', type: 2, i: 1 }]),
    node('Sub', ['p', 'y'], 'g_ce'),
  ];
  let grad = 'g_ce';
  if (distill > 0) {
    // d(T²·CE(softmax(z/T), q))/dz = T·(softmax(z/T) − q), mixed with the hard-label term
    nodes.push(
      node('Div', ['z', 'temperature'], 'z_t'),
      node('Softmax', ['z_t'], 's', [{ name: 'axis', type: 2, i: 1 }]),
      node('Sub', ['s', 'q'], 's_q'),
      node('Mul', ['s_q', 'distill_t'], 'g_d'),
      node('Mul', ['g_ce', 'one_minus_distill'], 'g_ce_w'),
      node('Add', ['g_ce_w', 'g_d'], 'g'),
    );
    grad = 'g';
  }
  nodes.push(
    // mean gradients over the batch, L2 on the weights only
    node('Gemm', [grad, 'x'], 'gw_sum', [{ name: 'transA', type: 2, i: 1 }]),
    node('Div', ['gw_sum', 'batch'], 'gw_mean'),
    node('Mul', ['w', 'l2'], 'w_decay'),
    node('Add', ['gw_mean', 'w_decay'], 'gw'),
    node('ReduceSum', [grad, 'axis0'], 'gb_sum', [{ name: 'keepdims', type: 2, i: 0 }]),
    node('Div', ['gb_sum', 'batch'], 'gb'),
  );
  for (const p of ['w', 'b']) {
    const g = `g${p}`;
    nodes.push(
      node('Mul', [`m_${p}`, 'b1'], `m_${p}_old`),
      node('Mul', [g, 'one_minus_b1'], `m_${p}_new`),
      node('Add', [`m_${p}_old`, `m_${p}_new`], `m_${p}_out`),
      node('Mul', [`v_${p}`, 'b2'], `v_${p}_old`),
      node('Mul', [g, g], `${g}_sq`),
      node('Mul', [`${g}_sq`, 'one_minus_b2'], `v_${p}_new`),
      node('Add', [`v_${p}_old`, `v_${p}_new`], `v_${p}_out`),
      node('Mul', [`m_${p}_out`, 'm_scale'], `m_${p}_hat`),
      node('Mul', [`v_${p}_out`, 'v_scale'], `v_${p}_hat`),
      node('Sqrt', [`v_${p}_hat`], `v_${p}_root`),
      node('Add', [`v_${p}_root`, 'eps'], `v_${p}_den`),
      node('Div', [`m_${p}_hat`, `v_${p}_den`], `${p}_dir`),
      node('Mul', [`${p}_dir`, 'lr'], `${p}_delta`),
      node('Sub', [p, `${p}_delta`], `${p}_out`),
    );
  }
  const inputs = [
    input('x', ['n', dim]), input('y', ['n', numClasses]), ...(distill > 0 ? [input('q', ['n', numClasses])] : []),
    input('w', [numClasses, dim]), input('b', [numClasses]), input('m_w', [numClasses, dim]), input('v_w', [numClasses, dim]), input('m_b', [numClasses]), input('v_b', [numClasses]),
    input('batch', []), input('m_scale', []), input('v_scale', []),
  ];
  const constants = [
    scalar('temperature', t), scalar('distill_t', distill * t), scalar('one_minus_distill', 1 - distill), scalar('l2', options.l2),
    scalar('b1', B1), scalar('one_minus_b1', 1 - B1), scalar('b2', B2), scalar('one_minus_b2', 1 - B2), scalar('eps', 1e-8), scalar('lr', options.learningRate),
    onnx.TensorProto.create({ name: 'axis0', dims: [1], dataType: INT64, int64Data: [0] }),
  ];
  return graphModel(nodes, inputs, ['w_out', 'b_out', 'm_w_out', 'v_w_out', 'm_b_out', 'v_b_out'], constants);
}

/** Softmax confidences and argmax predictions of a linear head on raw features. */
function forwardModel(dim: number, numClasses: number): Uint8Array {
  const nodes = [
    node('Gemm', ['x', 'w', 'b'], 'z', [{ name: 'transB', type: 2, i: 1 }]),
    node('Softmax', ['z'], 'p', [{ name: 'axis', type: 2, i: 1 }]),
    node('ReduceMax', ['p'], 'confidence', [{ name: 'axes', type: 7, ints: [1] }, { name: 'keepdims', type: 2, i: 0 }]),
    node('ArgMax', ['z'], 'prediction', [{ name: 'axis', type: 2, i: 1 }, { name: 'keepdims', type: 2, i: 0 }]),
  ];
  return graphModel(nodes, [input('x', ['n', dim]), input('w', [numClasses, dim]), input('b', [numClasses])], ['confidence', 'prediction'], []);
}

const tensor = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);
const session = (bytes: Uint8Array) => ort.InferenceSession.create(bytes, { intraOpNumThreads: 2, logSeverityLevel: 3 });

/** Trains a linear head, as `trainHead('feature-map', ...)` does, with onnxruntime doing the arithmetic. */
export async function trainLinearHead(
  features: Float32Array,
  labels: Int32Array,
  dim: number,
  numClasses: number,
  overrides: Partial<TrainOptions> = {},
  teacherLogits?: Float32Array,
): Promise<TrainedHead> {
  const options = { ...DEFAULT_TRAIN_OPTIONS, ...overrides };
  const n = labels.length;
  checkTrainingData(features, n, dim, numClasses, teacherLogits);
  const distill = teacherLogits ? options.distillWeight : 0;
  const random = seededRandom(options.seed);

  // 1. standardise (statistics in float64, as the TypeScript trainer)
  const { mean, std } = standardisation(features, n, dim);
  const x = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) x[i * dim + j] = (features[i * dim + j]! - mean[j]!) / std[j]!;
  const onehot = new Float32Array(n * numClasses);
  for (let i = 0; i < n; i++) onehot[i * numClasses + labels[i]!] = 1;
  const soft = new Float32Array(distill > 0 ? n * numClasses : 0);
  const row = new Float64Array(numClasses);
  if (distill > 0) {
    for (let i = 0; i < n; i++) {
      softmaxInto(teacherLogits!.subarray(i * numClasses, (i + 1) * numClasses), options.temperature, row);
      soft.set(row, i * numClasses);
    }
  }

  // 2. Adam over shuffled mini-batches, each step in onnxruntime
  const step = await session(stepModel(dim, numClasses, options, distill));
  let state: Record<'w' | 'b' | 'mW' | 'vW' | 'mB' | 'vB', Float32Array<ArrayBuffer>> = { w: new Float32Array(numClasses * dim), b: new Float32Array(numClasses), mW: new Float32Array(numClasses * dim), vW: new Float32Array(numClasses * dim), mB: new Float32Array(numClasses), vB: new Float32Array(numClasses) };
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const rows = (source: Float32Array, width: number, from: number, to: number): Float32Array => {
    const out = new Float32Array((to - from) * width);
    for (let s = from; s < to; s++) out.set(source.subarray(order[s]! * width, (order[s]! + 1) * width), (s - from) * width);
    return out;
  };
  let t = 0;
  try {
    for (let epoch = 0; epoch < options.epochs; epoch++) {
      shuffleInPlace(order, random);
      for (let start = 0; start < n; start += options.batchSize) {
        const end = Math.min(n, start + options.batchSize);
        const m = end - start;
        t++;
        const feeds: Record<string, ort.Tensor> = {
          x: tensor(rows(x, dim, start, end), [m, dim]),
          y: tensor(rows(onehot, numClasses, start, end), [m, numClasses]),
          w: tensor(state.w, [numClasses, dim]), b: tensor(state.b, [numClasses]),
          m_w: tensor(state.mW, [numClasses, dim]), v_w: tensor(state.vW, [numClasses, dim]), m_b: tensor(state.mB, [numClasses]), v_b: tensor(state.vB, [numClasses]),
          batch: tensor(Float32Array.of(m), []), m_scale: tensor(Float32Array.of(1 / (1 - B1 ** t)), []), v_scale: tensor(Float32Array.of(1 / (1 - B2 ** t)), []),
        };
        if (distill > 0) feeds.q = tensor(rows(soft, numClasses, start, end), [m, numClasses]);
        const out = await step.run(feeds);
        const f32 = (name: string) => out[name]!.data as Float32Array<ArrayBuffer>;
        state = { w: f32('w_out'), b: f32('b_out'), mW: f32('m_w_out'), vW: f32('v_w_out'), mB: f32('m_b_out'), vB: f32('v_b_out') };
      }
    }
  } finally {
    await step.release();
  }

  // 3. fold the standardisation into the weights, then the training accuracy on raw features
  const head: HeadWeights = { kind: 'feature-map', layers: [foldStandardisation(state.w, state.b, numClasses, dim, mean, std)] };
  const { prediction } = await evaluateLinearHead(head, features, dim);
  let correct = 0;
  for (let i = 0; i < n; i++) if (prediction[i] === labels[i]) correct++;
  return { head, trainAccuracy: correct / n };
}

/** `evaluateHead` for a linear head, in onnxruntime (in batches of rows, so memory stays bounded). */
export async function evaluateLinearHead(head: HeadWeights, features: Float32Array, dim: number): Promise<RampOutputs> {
  const layer = head.layers[0]!;
  if (head.layers.length !== 1 || layer.inDim !== dim) throw new Error('evaluateLinearHead takes a single linear layer over the features');
  const n = features.length / dim;
  const confidence = new Float32Array(n);
  const prediction = new Int32Array(n);
  const forward = await session(forwardModel(dim, layer.outDim));
  try {
    const w = tensor(layer.weights, [layer.outDim, dim]);
    const b = tensor(layer.bias, [layer.outDim]);
    const rowsPerRun = 256;
    for (let start = 0; start < n; start += rowsPerRun) {
      const end = Math.min(n, start + rowsPerRun);
      const out = await forward.run({ x: tensor(features.subarray(start * dim, end * dim), [end - start, dim]), w, b });
      confidence.set(out.confidence!.data as Float32Array, start);
      const predicted = out.prediction!.data as BigInt64Array;
      for (let i = 0; i < end - start; i++) prediction[start + i] = Number(predicted[i]);
    }
  } finally {
    await forward.release();
  }
  return { confidence, prediction };
}
