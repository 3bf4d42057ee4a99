import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeModel, encodeModel } from '../../onnx/onnx-proto.js';
import { defaultDomainOpset, findPythonWithOnnx, needsOpsetUpgrade, OpsetUpgradeError, upgradeOpset } from '../../onnx/opset-upgrade.js';
import { inspectModel } from '../../prepare/model-inspection.js';
import { preparePackage } from '../../prepare/prepare-package.js';
import { testPrepareOptions } from '../support/prepare-options.js';

const OPSET7 = 'zoo/mnist-cnn/original.onnx';
const OPSET6 = 'test/fixtures/onnx-opsets/mnist-cnn-opset6.onnx';
const LOGITS = 'Plus214_Output_0';
const scratch = mkdtempSync(join(tmpdir(), 'escapement-opsets-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The opset-7 CNN stamped with another opset (its Conv, Add, Relu, MaxPool, Reshape and MatMul mean the same from 7 to 21). */
function stamped(opset: number): string {
  const model = decodeModel(readFileSync(OPSET7));
  model.opsetImport = [{ domain: '', version: opset }];
  if (opset >= 21) model.irVersion = 10;
  const path = join(scratch, `mnist-opset${opset}.onnx`);
  writeFileSync(path, encodeModel(model));
  return path;
}

const samples = Array.from({ length: 4 }, (_, s) => Float32Array.from({ length: 784 }, (_, i) => (((i * (s + 3)) % 251) / 251) * 255));

async function logits(path: string): Promise<number[]> {
  const session = await ort.InferenceSession.create(path, { logSeverityLevel: 3, intraOpNumThreads: 1 });
  const out: number[] = [];
  for (const x of samples) out.push(...((await session.run({ Input3: new ort.Tensor('float32', x, [1, 1, 28, 28]) }))[LOGITS]!.data as Float32Array));
  await session.release();
  return out;
}

describe('opsets', () => {
  it("reads the default domain opset and upgrades only below onnxruntime's floor of 7", () => {
    expect(defaultDomainOpset(decodeModel(readFileSync(OPSET6)))).toBe(6);
    expect(needsOpsetUpgrade(decodeModel(readFileSync(OPSET6)))).toBe(true);
    expect(needsOpsetUpgrade(decodeModel(readFileSync(OPSET7)))).toBe(false);
  });

  it.each([9, 21])('prepares an opset-%i model as it is, keeping its opset', async (opset) => {
    const report = await preparePackage(testPrepareOptions(stamped(opset), scratch, `opset${opset}`));
    const packaged = join(scratch, `opset${opset}`, 'model.onnx');
    expect(defaultDomainOpset(decodeModel(readFileSync(packaged)))).toBe(opset);
    expect(report.inputNotes.some((n) => /upgraded/.test(n))).toBe(false);
    expect(report.ramps.length).toBeGreaterThan(0);
  });

  it("upgrades an opset-6 export with the ONNX library's converter, and the package answers as the original does", async () => {
    // onnxruntime has no kernel for Add-6: the model cannot be served as it is.
    await expect(ort.InferenceSession.create(OPSET6, { logSeverityLevel: 4 })).rejects.toThrow(/Add\(6\)/);
    expect(findPythonWithOnnx(), 'needs Python with the onnx package (apt-get install python3-onnx; .ci/run installs it)').toBeDefined();
    const report = await preparePackage(testPrepareOptions(OPSET6, scratch, 'opset6'));
    expect(report.inputNotes[0]).toMatch(/^opset 6 upgraded to 13 with onnx \d+\.\d+\.\d+ version_converter/);
    const packaged = join(scratch, 'opset6', 'model.onnx');
    expect(defaultDomainOpset(decodeModel(readFileSync(packaged)))).toBe(13);
    const [want, got] = [await logits(OPSET7), await logits(packaged)];
    expect(got.map((v, i) => Math.abs(v - want[i]!)).reduce((a, b) => Math.max(a, b))).toBeLessThan(1e-3);
  });

  it('inspect says it would upgrade, and judges the upgraded model', async () => {
    const inspection = await inspectModel(OPSET6, readFileSync(OPSET6));
    expect(inspection.refusal).toBeUndefined();
    expect(inspection.plan[0]).toMatch(/^upgrade opset 6 to 13 with onnx/);
    expect(inspection.sites.length).toBeGreaterThan(0);
  });

  it('without the converter, or when it fails, says what to do', () => {
    const bytes = readFileSync(OPSET6);
    expect(() => upgradeOpset(bytes, 6, { python: null })).toThrow(OpsetUpgradeError);
    expect(() => upgradeOpset(bytes, 6, { python: null })).toThrow(/opset 6 .*apt-get install python3-onnx.*convert_version\(model, 13\)/);
    expect(() => upgradeOpset(new Uint8Array([1, 2, 3, 4]), 6)).toThrow(/could not take the model from opset 6 to 13.*Re-export it at opset 7/);
  });
});
