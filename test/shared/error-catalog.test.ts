import { describe, expect, it } from 'vitest';
import { isDriftError, DriftError } from '../../loadgen/drift.js';
import { CpuFallbackError, isCpuFallbackError } from '../../onnx/device-sessions.js';
import { isOpsetUpgradeError, OpsetUpgradeError } from '../../onnx/opset-upgrade.js';
import { DatasetError, isDatasetError } from '../../prepare/dataset.js';
import { ImageFolderError, isImageFolderError } from '../../prepare/image-folder.js';
import { isPrepareError, PrepareError } from '../../prepare/prepare-package.js';
import { EarlyExitManifestError, isEarlyExitManifestError } from '../../shared/early-exit-manifest.js';
import { describeError, errorName, ErrorCode, EscapementError, httpStatusFor, isCodedError } from '../../shared/error-codes.js';
import { isManifestError, ManifestError } from '../../shared/model-manifest.js';
import { CorpusError, isCorpusError } from '../../text/text-corpus.js';
import { isTokenizerError, TokenizerError } from '../../text/word-tokenizer.js';
import { isTraceMappingError, TraceMappingError } from '../../traces/field-mapping.js';
import { isTraceFormatError, TraceFormatError } from '../../traces/trace.js';

/** Every error class the tools throw, one instance each, with its guard and the code it carries. */
const CASES: [Error, (err: unknown) => boolean, number][] = [
  [new PrepareError('no ramp site'), isPrepareError, ErrorCode.PREPARE_REFUSED],
  [new DatasetError('bad IDX'), isDatasetError, ErrorCode.DATASET_INVALID],
  [new ImageFolderError('no classes'), isImageFolderError, ErrorCode.DATASET_INVALID],
  [new CorpusError('empty'), isCorpusError, ErrorCode.DATASET_INVALID],
  [new ManifestError('bad'), isManifestError, ErrorCode.MANIFEST_INVALID],
  [new EarlyExitManifestError('bad'), isEarlyExitManifestError, ErrorCode.MANIFEST_INVALID],
  [new TraceFormatError('t.csv', [{ line: 2, message: 'no time' }]), isTraceFormatError, ErrorCode.TRACE_INVALID],
  [new TraceMappingError('no time field'), isTraceMappingError, ErrorCode.TRACE_INVALID],
  [new TokenizerError('bad'), isTokenizerError, ErrorCode.TOKENIZER_INVALID],
  [new OpsetUpgradeError('no converter'), isOpsetUpgradeError, ErrorCode.OPSET_UPGRADE_FAILED],
  [new DriftError('bad'), isDriftError, ErrorCode.DRIFT_INVALID],
  [new CpuFallbackError('cuda:0', ['n1 (Shape)']), isCpuFallbackError, ErrorCode.DEVICE_PLACEMENT_REFUSED],
];

describe('the error catalog', () => {
  it.each(CASES.map(([err, guard, code]) => [err.name, err, guard, code] as const))(
    '%s carries a catalogued code and has a type guard',
    (_name, err, guard, code) => {
      expect(isCodedError(err)).toBe(true);
      expect((err as Error & { code: number }).code).toBe(code);
      expect(errorName(code)).not.toMatch(/^UNKNOWN_ERROR/);
      expect(describeError(code)).not.toBe('unknown error code');
      expect(httpStatusFor(code)).toBeGreaterThanOrEqual(400);
      expect(guard(err)).toBe(true);
      // each guard knows its own class only
      for (const [other, otherGuard] of CASES) if (other.constructor !== err.constructor) expect(otherGuard(err)).toBe(false);
      expect(guard(new Error('plain'))).toBe(false);
    },
  );

  it("keeps a tool error's message its own, and an EscapementError's prefixed with its code", () => {
    expect(new PrepareError('the model has no usable ramp site').message).toBe('the model has no usable ramp site');
    expect(new EscapementError(ErrorCode.QUEUE_FULL, 'full').message).toBe('QUEUE_FULL: full');
    expect(isCodedError(new EscapementError(ErrorCode.QUEUE_FULL, 'full'))).toBe(false);
  });

  it('gives every code one name and one description', () => {
    const codes = Object.values(ErrorCode);
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) expect(describeError(code)).not.toBe('unknown error code');
  });
});
