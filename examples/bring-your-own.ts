/**
 * `npm run byo`: the bring-your-own path end to end, on stand-ins made from bundled data in the
 * shapes users arrive with, then the two commands a user runs on their own files:
 *
 * - a model exported as TensorFlow/Keras export it: uint8 pixels in NHWC, two outputs (logits and
 *   probabilities). Made from the bundled Fashion-MNIST ResNet by putting Cast + Transpose in
 *   front and a Softmax output beside (stand-ins.ts);
 * - a folder of PNG images, one folder per class (5,000 Fashion-MNIST test images);
 * - a request trace in a public layout: the bundled Azure LLM 2023 trace rewritten as JSON lines
 *   the way the Mooncake traces are laid out (`timestamp` in ms from the start).
 *
 * Then `escapement prepare` and `escapement compare` on them, as printed. Everything goes under
 * runs/byo (git-ignored).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { loadDataset } from '../prepare/dataset.js';
import { encodeModel } from '../onnx/onnx-proto.js';
import { loadTrace } from '../traces/trace-loader.js';
import { kerasStyleExport } from './stand-ins.js';

const OUT = 'runs/byo';
// Labels are the class folders in sorted order (as torchvision's ImageFolder has them), so the
// folders are numbered in the model's class order.
const CLASSES = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle-boot'].map(
  (name, k) => `${String(k).padStart(2, '0')}-${name}`,
);
const NUM_IMAGES = 5000;

function step(line: string): void {
  process.stderr.write(`[byo] ${line}\n`);
}

function run(args: string[]): void {
  process.stdout.write(`\n$ bin/escapement ${args.join(' ')}\n`);
  const result = spawnSync('bin/escapement', args, { stdio: 'inherit' });
  if (result.status !== 0) {
    process.stderr.write(`[byo] escapement ${args[0]} failed (exit ${result.status})\n`);
    process.exit(result.status ?? 1);
  }
}

function main(): void {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });

  step('a Keras-style export: uint8 NHWC pixels in, logits and probabilities out ...');
  writeFileSync(join(OUT, 'model.onnx'), encodeModel(kerasStyleExport('zoo/fmnist-resnet/original.onnx')));

  step(`${NUM_IMAGES} PNG images in one folder per class ...`);
  const fashion = loadDataset('datasets/fashion-mnist-test');
  const pixels = fashion.inputs as Float32Array;
  for (const name of CLASSES) mkdirSync(join(OUT, 'images', name), { recursive: true });
  for (let i = 0; i < NUM_IMAGES; i++) {
    const image = new PNG({ width: 28, height: 28, colorType: 0 });
    for (let p = 0; p < 784; p++) image.data.set([pixels[i * 784 + p]!, pixels[i * 784 + p]!, pixels[i * 784 + p]!, 255], p * 4);
    writeFileSync(join(OUT, 'images', CLASSES[fashion.labels![i]!]!, `${String(i).padStart(5, '0')}.png`), PNG.sync.write(image, { colorType: 0 }));
  }

  step('a public trace layout: Azure LLM 2023 as Mooncake-style JSON lines ...');
  const arrivals = loadTrace('traces/azure-llm-2023-conv.csv', { seed: 1 });
  // token counts from the same rows (the file is in time order)
  const rows = readFileSync('traces/azure-llm-2023-conv.csv', 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split(','));
  const lines = arrivals.map((a, i) =>
    JSON.stringify({ timestamp: Math.round(a.timeMs), input_length: Number(rows[i]![1]), output_length: Number(rows[i]![2]) }),
  );
  writeFileSync(join(OUT, 'trace.jsonl'), `${lines.join('\n')}\n`);

  run(['prepare', '--model', join(OUT, 'model.onnx'), '--dataset', join(OUT, 'images'), '--out', join(OUT, 'models', 'my-classifier'), '--labels', 'truth']);
  run([
    'compare',
    '--model-dir',
    join(OUT, 'models'),
    '--model',
    'my-classifier',
    '--dataset',
    join(OUT, 'images'),
    '--trace',
    join(OUT, 'trace.jsonl'),
    '--target-load',
    '0.35',
    '--max-seconds',
    '8',
    '--baseline',
    'false',
    '--out',
    join(OUT, 'compare'),
  ]);
}

main();
