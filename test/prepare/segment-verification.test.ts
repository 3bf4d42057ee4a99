import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeModel, onnx } from '../../onnx/onnx-proto.js';
import { segmentModel } from '../../onnx/segmenter.js';
import { makeBatchDynamic } from '../../prepare/batch-dimension.js';
import { loadDataset } from '../../prepare/dataset.js';
import { PrepareError, verifySegmenting } from '../../prepare/prepare-package.js';
import { findRampSites } from '../../prepare/ramp-sites.js';
import { fitSamples } from '../../prepare/sample-layout.js';

const LOGITS = 'Plus214_Output_0';

async function mnistSegments() {
  const model = decodeModel(readFileSync('zoo/mnist-cnn/original.onnx'));
  makeBatchDynamic(model);
  const probe = [{ name: 'Input3', shape: [2, 1, 28, 28], data: Float32Array.from({ length: 2 * 784 }, (_, i) => (i % 255) as number) }];
  const { sites, types } = await findRampSites(model, probe, 'Input3');
  return { model, segments: segmentModel(model, sites, types, 'Input3') };
}

describe('checking that the segment chain reproduces the model', () => {
  const dataset = loadDataset('datasets/mnist-digits');
  fitSamples(dataset, [1, 28, 28]);

  it("passes the chain as cut, with a tolerance that follows the outputs' scale (logits in the thousands here)", async () => {
    const { model, segments } = await mnistSegments();
    const result = await verifySegmenting(model, segments, 'Input3', LOGITS, dataset, { start: 0, end: 64 });
    expect(result.predictionAgreement).toBe(1);
    expect(result.numSamples).toBe(64);
  });

  it('refuses a chain whose last segment computes something else by 1 %', async () => {
    const { model, segments } = await mnistSegments();
    // A changed copy of a weight (segments share initializer objects with the model).
    const last = segments.at(-1)!.model.graph!;
    const index = last.initializer!.findIndex((t) => t.name === 'Parameter193'); // the classifier's weights
    const weights = last.initializer![index]!;
    const values =
      weights.rawData && weights.rawData.length > 0 ? new Float32Array(new Uint8Array(weights.rawData).slice().buffer) : Float32Array.from(weights.floatData!);
    last.initializer![index] = onnx.TensorProto.create({ name: weights.name, dims: weights.dims, dataType: 1, floatData: Array.from(values, (v) => v * 1.01) });
    await expect(verifySegmenting(model, segments, 'Input3', LOGITS, dataset, { start: 0, end: 64 })).rejects.toThrow(PrepareError);
    await expect(verifySegmenting(model, segments, 'Input3', LOGITS, dataset, { start: 0, end: 64 })).rejects.toThrow(
      /does not reproduce the model.*tolerance/,
    );
  });
});
