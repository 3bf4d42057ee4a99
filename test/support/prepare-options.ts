import { join } from 'node:path';
import { DEFAULT_PREPARE_OPTIONS, type PrepareOptions } from '../../prepare/prepare-package.js';

/** Prepare options for a test: a short profile and no progress lines; MNIST digits unless told. */
export function testPrepareOptions(modelPath: string, scratch: string, name: string, datasetPath = 'datasets/mnist-digits'): PrepareOptions {
  return {
    ...DEFAULT_PREPARE_OPTIONS,
    modelPath,
    datasetPath,
    outDir: join(scratch, name),
    name,
    profile: { ...DEFAULT_PREPARE_OPTIONS.profile, numRuns: 3, numWarmup: 1, maxMsPerSize: 30 },
    onProgress: () => undefined,
  };
}
