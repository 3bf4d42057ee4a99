/**
 * Compiled copies must travel: onnxruntime's 'all' level bakes the optimising CPU's vector width
 * into blocked-layout kernels (domain com.microsoft.nchwc), and such a graph computes garbage on a
 * CPU of another width. Bundled packages carry none; a worker given a package that does cuts its
 * chain from model.onnx instead of running the packaged segments.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { imageInputs, loadDataset } from '../../prepare/dataset.js';
import { decodeModel, encodeModel, onnx, type ModelProto } from '../../onnx/onnx-proto.js';
import { hostSpecificNodes } from '../../onnx/portable-graph.js';
import { loadModelEntry } from '../../shared/model-manifest.js';
import { asFloat32, bytesOf, type Tensor } from '../../shared/tensor.js';
import { OrtExecutor } from '../../worker/ort-executor.js';

const NCHWC = 'com.microsoft.nchwc';

function withBlockedNode(model: ModelProto): ModelProto {
  const node = onnx.NodeProto.create({
    opType: 'ReorderOutput',
    domain: NCHWC,
    input: [model.graph!.input![0]!.name!],
    output: ['blocked_copy'],
    attribute: [onnx.AttributeProto.create({ name: 'channels', type: onnx.AttributeProto.AttributeType.INT, i: 1 })],
  });
  model.graph!.node!.push(node);
  return model;
}

describe('compiled copies that travel', () => {
  it('bundled packages carry no CPU-specific layout nodes', () => {
    const files = readdirSync('models').flatMap((pkg) =>
      readdirSync(join('models', pkg))
        .filter((f) => f.endsWith('.opt.onnx'))
        .map((f) => join('models', pkg, f)),
    );
    expect(files.length).toBeGreaterThan(10);
    const found = files.filter((f) => hostSpecificNodes(decodeModel(readFileSync(f))) > 0);
    expect(found).toEqual([]);
  });

  it('counts the blocked-layout nodes of a graph', () => {
    const model = decodeModel(readFileSync('models/fmnist-resnet/segment_0.opt.onnx'));
    expect(hostSpecificNodes(model)).toBe(0);
    expect(hostSpecificNodes(withBlockedNode(model))).toBe(1);
  });

  describe('a package whose segments were saved for another CPU', () => {
    const folder = mkdtempSync(join(tmpdir(), 'escapement-portable-'));
    const executor = new OrtExecutor({ device: 'cpu', intraOpNumThreads: 1 });
    afterAll(async () => {
      await executor.close();
      rmSync(folder, { recursive: true, force: true });
    });

    it('is served by a chain cut from model.onnx, with the model’s answers', async () => {
      cpSync('models/fmnist-resnet', join(folder, 'fmnist-resnet'), { recursive: true });
      // The packaged first segment as another CPU would have left it: blocked-layout nodes, and
      // weights that are wrong here (zeroed, so running it would change every answer).
      const segmentFile = join(folder, 'fmnist-resnet', 'segment_0.opt.onnx');
      const segment = withBlockedNode(decodeModel(readFileSync(segmentFile)));
      for (const t of segment.graph!.initializer!) if (t.dims!.length === 4 && t.rawData) t.rawData = new Uint8Array(t.rawData.byteLength);
      segment.opsetImport!.push(onnx.OperatorSetIdProto.create({ domain: NCHWC, version: 1 }));
      writeFileSync(segmentFile, encodeModel(segment));

      const entry = loadModelEntry(folder, 'fmnist-resnet');
      const ee = entry.manifest.earlyExit!;
      await executor.load(entry, [1, 8]);
      const dataset = loadDataset('datasets/fashion-mnist-test');
      const pixels = (): Tensor[] => [
        { name: 'pixels', dtype: 'float32', shape: [8, 1, 28, 28], data: bytesOf(imageInputs(dataset).slice(2000 * 784, 2008 * 784)) },
      ];
      const plain = asFloat32((await executor.infer('fmnist-resnet', 8, pixels())).outputs[0]!.data);
      const never = ee.chosenRamps.map((siteId) => ({ siteId, threshold: 1.01 }));
      const chain = await executor.infer('fmnist-resnet', 8, pixels(), { earlyExit: { mode: 'release', ramps: never, keepRows: [] } });
      const final = asFloat32(chain.outputs[0]!.data);
      expect(final.length).toBe(plain.length);
      for (let i = 0; i < plain.length; i++) expect(final[i]).toBeCloseTo(plain[i]!, 3);
    });
  });
});
