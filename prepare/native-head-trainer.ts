/**
 * Training and evaluating ramp heads at native speed: the same algorithm as ramp-trainer.ts
 * (standardised features, Adam with L2 on shuffled mini-batches, distillation from the teacher's
 * logits), with every step's big arithmetic run by onnxruntime as a small ONNX graph (MLAS matrix
 * products, elementwise Adam). Both head kinds: a feature-map head (softmax regression) and a
 * sequence head (pooler Gemm → Tanh → classifier Gemm, backpropagated through the Tanh).
 *
 * Why: the plain-TypeScript trainer costs n·C·dim (feature maps) or n·dim² (sequence heads)
 * multiply-adds per sample per epoch, three times over. An ImageNet-shaped model (1,000 classes,
 * grid-pooled sites of 1,024–8,192 features) made that ~10^11 per head: tens of minutes with no
 * progress after "features". A BERT-base-shaped encoder (26 sites of width 768) spent 11 s per
 * head, 9.5 minutes for its 52 candidates. Here one step is a few Gemms in native code.
 *
 * Results match the TypeScript trainer up to float32 rounding (it computes in float64): the same
 * seeded initialisation, shuffles, batches and updates. prepare uses this path for heads whose
 * training would cost more than `LARGE_HEAD_WORK` multiply-adds (the bundled zoo stays
 * bit-identical).
 */
import * as ort from 'onnxruntime-node';
import { encodeModel, onnx } from '../onnx/onnx-proto.js';
import {
  checkTrainingData,
  DEFAULT_TRAIN_OPTIONS,
  foldStandardisation,
  glorotUniform,
  seededRandom,
  shuffleInPlace,
  softmaxInto,
  standardisation,
  type TrainOptions,
  type TrainedHead,
} from './ramp-trainer.js';
import type { RampOutputs } from './ramp-statistics.js';
import type { HeadWeights, LinearLayer } from './ramp-heads.js';
import type { SiteKind } from './ramp-sites.js';

/** Multiply-adds (`headTrainingWork`) above which prepare trains a head here. */
export const LARGE_HEAD_WORK = 2e9;

const FLOAT = 1;
const INT64 = 7;
const B1 = 0.9;
const B2 = 0.999;

const input = (name: string, dims: (number | string)[]) =>
  onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
const scalar = (name: string, value: number) => onnx.TensorProto.create({ name, dims: [], dataType: FLOAT, floatData: [value] });
const node = (opType: string, inputs: string[], output: string, attribute: object[] = []) =>
  onnx.NodeProto.create({ opType, input: inputs, output: [output], name: output, attribute });

function graphModel(nodes: ReturnType<typeof node>[], inputs: ReturnType<typeof input>[], outputs: string[], initializers: ReturnType<typeof scalar>[]) {
  return encodeModel(
    onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'linear_head',
        node: nodes,
        input: inputs,
        output: outputs.map((name) => onnx.ValueInfoProto.create({ name })),
        initializer: initializers,
      },
    }),
  );
}

/** Multiply-adds one head's training costs: per sample and epoch, classes × features, and features² more for a sequence head's pooler. */
export function headTrainingWork(kind: SiteKind, numSamples: number, dim: number, numClasses: number, epochs: number): number {
  return numSamples * epochs * (numClasses * dim + (kind === 'sequence' ? dim * dim : 0));
}

/** The trained parameters: a sequence head's pooler (`w1`, `b1`) and the classifier (`w2`, `b2`) every head has. */
type ParamName = 'w1' | 'b1' | 'w2' | 'b2';

/** Adam's update of parameter `p` from its gradient `g<p>`, as ramp-trainer.ts's `adamStep`. */
function adamNodes(p: ParamName): ReturnType<typeof node>[] {
  const g = `g${p}`;
  return [
    node('Mul', [`m_${p}`, 'b1_decay'], `m_${p}_old`),
    node('Mul', [g, 'one_minus_b1'], `m_${p}_new`),
    node('Add', [`m_${p}_old`, `m_${p}_new`], `m_${p}_out`),
    node('Mul', [`v_${p}`, 'b2_decay'], `v_${p}_old`),
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
  ];
}

/** Mean gradients over the batch of a Gemm's weights and bias from the gradient at its output; L2 on the weights only. */
function gemmGradientNodes(grad: string, layerInput: string, w: 'w1' | 'w2', b: 'b1' | 'b2'): ReturnType<typeof node>[] {
  return [
    node('Gemm', [grad, layerInput], `g${w}_sum`, [{ name: 'transA', type: 2, i: 1 }]),
    node('Div', [`g${w}_sum`, 'batch'], `g${w}_mean`),
    node('Mul', [w, 'l2'], `${w}_decay`),
    node('Add', [`g${w}_mean`, `${w}_decay`], `g${w}`),
    node('ReduceSum', [grad, 'axis0'], `g${b}_sum`, [{ name: 'keepdims', type: 2, i: 0 }]),
    node('Div', [`g${b}_sum`, 'batch'], `g${b}`),
  ];
}

/** One Adam step of a head (with optional distillation) on a mini-batch. */
function stepModel(
  shapes: Record<ParamName, number[]>,
  params: readonly ParamName[],
  dim: number,
  numClasses: number,
  options: TrainOptions,
  distill: number,
): Uint8Array {
  const t = options.temperature;
  const pooled = params.includes('w1');
  const nodes = pooled
    ? [
        node('Gemm', ['x', 'w1', 'b1'], 'a', [{ name: 'transB', type: 2, i: 1 }]),
        node('Tanh', ['a'], 'h'),
        node('Gemm', ['h', 'w2', 'b2'], 'z', [{ name: 'transB', type: 2, i: 1 }]),
      ]
    : [node('Gemm', ['x', 'w2', 'b2'], 'z', [{ name: 'transB', type: 2, i: 1 }])];
  nodes.push(node('Softmax', ['z'], 'p', [{ name: 'axis', type: 2, i: 1 }]), node('Sub', ['p', 'y'], 'g_ce'));
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
  nodes.push(...gemmGradientNodes(grad, pooled ? 'h' : 'x', 'w2', 'b2'));
  if (pooled) {
    // back through the classifier (its weights before this step) and the Tanh: da = (g·W2) ⊙ (1 − h²)
    nodes.push(
      node('MatMul', [grad, 'w2'], 'dh'),
      node('Mul', ['h', 'h'], 'h_sq'),
      node('Sub', ['one', 'h_sq'], 'tanh_slope'),
      node('Mul', ['dh', 'tanh_slope'], 'da'),
      ...gemmGradientNodes('da', 'x', 'w1', 'b1'),
    );
  }
  for (const p of params) nodes.push(...adamNodes(p));
  const inputs = [
    input('x', ['n', dim]),
    input('y', ['n', numClasses]),
    ...(distill > 0 ? [input('q', ['n', numClasses])] : []),
    ...params.flatMap((p) => [input(p, shapes[p]), input(`m_${p}`, shapes[p]), input(`v_${p}`, shapes[p])]),
    input('batch', []),
    input('m_scale', []),
    input('v_scale', []),
  ];
  const constants = [
    scalar('temperature', t),
    scalar('distill_t', distill * t),
    scalar('one_minus_distill', 1 - distill),
    scalar('l2', options.l2),
    scalar('one', 1),
    scalar('b1_decay', B1),
    scalar('one_minus_b1', 1 - B1),
    scalar('b2_decay', B2),
    scalar('one_minus_b2', 1 - B2),
    scalar('eps', 1e-8),
    scalar('lr', options.learningRate),
    onnx.TensorProto.create({ name: 'axis0', dims: [1], dataType: INT64, int64Data: [0] }),
  ];
  return graphModel(
    nodes,
    inputs,
    params.flatMap((p) => [`${p}_out`, `m_${p}_out`, `v_${p}_out`]),
    constants,
  );
}

/** Softmax confidences and argmax predictions of a head on raw features: Gemm layers, Tanh between them. */
function forwardModel(layers: readonly LinearLayer[]): Uint8Array {
  const nodes: ReturnType<typeof node>[] = [];
  let x = 'x';
  layers.forEach((_, i) => {
    const last = i === layers.length - 1;
    nodes.push(node('Gemm', [x, `w${i}`, `b${i}`], last ? 'z' : `a${i}`, [{ name: 'transB', type: 2, i: 1 }]));
    if (!last) nodes.push(node('Tanh', [`a${i}`], `h${i}`));
    x = `h${i}`;
  });
  nodes.push(
    node('Softmax', ['z'], 'p', [{ name: 'axis', type: 2, i: 1 }]),
    node('ReduceMax', ['p'], 'confidence', [
      { name: 'axes', type: 7, ints: [1] },
      { name: 'keepdims', type: 2, i: 0 },
    ]),
    node('ArgMax', ['z'], 'prediction', [
      { name: 'axis', type: 2, i: 1 },
      { name: 'keepdims', type: 2, i: 0 },
    ]),
  );
  const inputs = [input('x', ['n', layers[0]!.inDim]), ...layers.flatMap((l, i) => [input(`w${i}`, [l.outDim, l.inDim]), input(`b${i}`, [l.outDim])])];
  return graphModel(nodes, inputs, ['confidence', 'prediction'], []);
}

const tensor = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);
const session = (bytes: Uint8Array) => ort.InferenceSession.create(bytes, { intraOpNumThreads: 2, logSeverityLevel: 3 });

/** Trains a head, as `trainHead(kind, ...)` does, with onnxruntime doing the arithmetic. */
export async function trainHeadNative(
  kind: SiteKind,
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

  // 2. parameters, initialised as the TypeScript trainer does (same draws from the same generator)
  const pooled = kind === 'sequence';
  const hidden = pooled ? dim : 0;
  const classifierIn = pooled ? hidden : dim;
  const shapes: Record<ParamName, number[]> = { w1: [hidden, dim], b1: [hidden], w2: [numClasses, classifierIn], b2: [numClasses] };
  const params: ParamName[] = pooled ? ['w1', 'b1', 'w2', 'b2'] : ['w2', 'b2'];
  const size = (p: ParamName) => shapes[p].reduce((a, b) => a * b, 1);
  const value = {} as Record<ParamName, Float32Array<ArrayBuffer>>;
  for (const p of params) value[p] = new Float32Array(size(p));
  if (pooled) {
    value.w1 = Float32Array.from({ length: size('w1') }, glorotUniform(random, dim, hidden));
    value.w2 = Float32Array.from({ length: size('w2') }, glorotUniform(random, hidden, numClasses));
  }
  let moments: Record<string, Float32Array<ArrayBuffer>> = {};
  for (const p of params) [moments[`m_${p}`], moments[`v_${p}`]] = [new Float32Array(size(p)), new Float32Array(size(p))];

  // 3. Adam over shuffled mini-batches, each step in onnxruntime
  const step = await session(stepModel(shapes, params, dim, numClasses, options, distill));
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
          batch: tensor(Float32Array.of(m), []),
          m_scale: tensor(Float32Array.of(1 / (1 - B1 ** t)), []),
          v_scale: tensor(Float32Array.of(1 / (1 - B2 ** t)), []),
        };
        for (const p of params) {
          feeds[p] = tensor(value[p], shapes[p]);
          feeds[`m_${p}`] = tensor(moments[`m_${p}`]!, shapes[p]);
          feeds[`v_${p}`] = tensor(moments[`v_${p}`]!, shapes[p]);
        }
        if (distill > 0) feeds.q = tensor(rows(soft, numClasses, start, end), [m, numClasses]);
        const out = await step.run(feeds);
        const f32 = (name: string) => out[name]!.data as Float32Array<ArrayBuffer>;
        moments = {};
        for (const p of params) {
          value[p] = f32(`${p}_out`);
          moments[`m_${p}`] = f32(`m_${p}_out`);
          moments[`v_${p}`] = f32(`v_${p}_out`);
        }
      }
    }
  } finally {
    await step.release();
  }

  // 4. fold the standardisation into the first layer, then the training accuracy on raw features
  const layers: LinearLayer[] = pooled
    ? [foldStandardisation(value.w1, value.b1, hidden, dim, mean, std), { weights: value.w2, bias: value.b2, inDim: hidden, outDim: numClasses }]
    : [foldStandardisation(value.w2, value.b2, numClasses, dim, mean, std)];
  const head: HeadWeights = { kind, layers };
  const { prediction } = await evaluateHeadNative(head, features, dim);
  let correct = 0;
  for (let i = 0; i < n; i++) if (prediction[i] === labels[i]) correct++;
  return { head, trainAccuracy: correct / n };
}

/** `evaluateHead` in onnxruntime (in batches of rows, so memory stays bounded). */
export async function evaluateHeadNative(head: HeadWeights, features: Float32Array, dim: number): Promise<RampOutputs> {
  if (head.layers[0]?.inDim !== dim) throw new Error(`the head's first layer takes ${head.layers[0]?.inDim} features, not ${dim}`);
  const n = features.length / dim;
  const confidence = new Float32Array(n);
  const prediction = new Int32Array(n);
  const forward = await session(forwardModel(head.layers));
  try {
    const weights: Record<string, ort.Tensor> = {};
    head.layers.forEach((l, i) => {
      weights[`w${i}`] = tensor(l.weights, [l.outDim, l.inDim]);
      weights[`b${i}`] = tensor(l.bias, [l.outDim]);
    });
    const rowsPerRun = 256;
    for (let start = 0; start < n; start += rowsPerRun) {
      const end = Math.min(n, start + rowsPerRun);
      const out = await forward.run({ x: tensor(features.subarray(start * dim, end * dim), [end - start, dim]), ...weights });
      confidence.set(out.confidence!.data as Float32Array, start);
      const predicted = out.prediction!.data as BigInt64Array;
      for (let i = 0; i < end - start; i++) prediction[start + i] = Number(predicted[i]);
    }
  } finally {
    await forward.release();
  }
  return { confidence, prediction };
}
