/**
 * Old opsets, upgraded with the ONNX library's version converter.
 *
 * onnxruntime runs the default ONNX domain from opset 7 on (earlier operators, such as Add-6 with
 * its `broadcast` attribute, have no kernels); models from opset 7 to 21 are served as they are.
 * A model below 7 is converted to opset 13 (the opset of the ramp heads) by
 * `onnx.version_converter`, the converter the ONNX project maintains, never by rewriting nodes
 * here. It runs in Python: `apt-get install python3-onnx` or `pip install onnx`; the interpreter is
 * `$ESCAPEMENT_PYTHON`, else the first of `python3` and `/usr/bin/python3` that imports onnx.
 */
import { CodedError, ErrorCode } from '../shared/error-codes.js';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelProto } from './onnx-proto.js';

/** The oldest default-domain opset onnxruntime has kernels for. */
export const MIN_RUNTIME_OPSET = 7;
/** Where an older model is converted to: the ramp heads' opset (prepare/ramp-heads.ts). */
export const UPGRADE_TARGET_OPSET = 13;

export class OpsetUpgradeError extends CodedError {
  override readonly name = 'OpsetUpgradeError';
  readonly code = ErrorCode.OPSET_UPGRADE_FAILED;
}

export function isOpsetUpgradeError(err: unknown): err is OpsetUpgradeError {
  return err instanceof OpsetUpgradeError;
}

export interface OpsetUpgrade {
  bytes: Uint8Array;
  fromOpset: number;
  toOpset: number;
  /** The converter that did it, e.g. `onnx 1.12.0 version_converter`. */
  converter: string;
}

/** The model's opset of the default ONNX domain ('' or 'ai.onnx'), or undefined if it imports none. */
export function defaultDomainOpset(model: ModelProto): number | undefined {
  const entry = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  return entry ? Number(entry.version?.toString() ?? 0) : undefined;
}

export function needsOpsetUpgrade(model: ModelProto): boolean {
  const opset = defaultDomainOpset(model);
  return opset !== undefined && opset < MIN_RUNTIME_OPSET;
}

const CONVERT_SCRIPT = `
import sys, onnx
from onnx import version_converter, checker
model = onnx.load(sys.argv[1])
converted = version_converter.convert_version(model, int(sys.argv[3]))
checker.check_model(converted)
onnx.save(converted, sys.argv[2])
print(onnx.__version__)
`;

/** Converts a model (bytes) to `toOpset`; throws OpsetUpgradeError saying what to install or what failed. */
export function upgradeOpset(bytes: Uint8Array, fromOpset: number, options: { toOpset?: number; python?: string | null } = {}): OpsetUpgrade {
  const toOpset = options.toOpset ?? UPGRADE_TARGET_OPSET;
  const python = options.python === undefined ? findPythonWithOnnx() : options.python;
  if (!python) {
    throw new OpsetUpgradeError(
      `the model uses opset ${fromOpset} of the default ONNX domain; onnxruntime runs opset ${MIN_RUNTIME_OPSET} and later. ` +
        `Upgrading it needs the ONNX library's version converter: apt-get install python3-onnx (or pip install onnx), or set ESCAPEMENT_PYTHON to a Python that has it; ` +
        `or convert it yourself with onnx.version_converter.convert_version(model, ${toOpset})`,
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'escapement-opset-'));
  try {
    const [inPath, outPath] = [join(dir, 'in.onnx'), join(dir, 'out.onnx')];
    writeFileSync(inPath, bytes);
    const run = spawnSync(python, ['-c', CONVERT_SCRIPT, inPath, outPath, String(toOpset)], { encoding: 'utf8', timeout: 300_000 });
    if (run.status !== 0) {
      const why = (run.stderr || run.error?.message || '').trim().split('\n').at(-1) ?? 'no message';
      throw new OpsetUpgradeError(
        `the ONNX version converter could not take the model from opset ${fromOpset} to ${toOpset}: ${why}. Re-export it at opset ${MIN_RUNTIME_OPSET} or later`,
      );
    }
    return { bytes: readFileSync(outPath), fromOpset, toOpset, converter: `onnx ${run.stdout.trim()} version_converter` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

let cachedPython: string | null | undefined;

/** The first interpreter that imports onnx, or undefined; looked up once per process. */
export function findPythonWithOnnx(): string | undefined {
  if (cachedPython === undefined) {
    const candidates = [process.env.ESCAPEMENT_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p);
    cachedPython = candidates.find((p) => spawnSync(p, ['-c', 'import onnx.version_converter'], { timeout: 30_000 }).status === 0) ?? null;
  }
  return cachedPython ?? undefined;
}
