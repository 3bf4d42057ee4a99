import { describe, expect, it } from 'vitest';
import { loadModelEntry, loadModelRepository, ManifestError, modelCopyName, packageNameOf } from '../../shared/model-manifest.js';

describe('model copies in the repository', () => {
  it('names copy 0 after the package and copy k as name@k', () => {
    expect(modelCopyName('mnist-cnn', 0)).toBe('mnist-cnn');
    expect(modelCopyName('mnist-cnn', 7)).toBe('mnist-cnn@7');
    expect(packageNameOf('mnist-cnn@7')).toBe('mnist-cnn');
    expect(packageNameOf('mnist-cnn')).toBe('mnist-cnn');
  });

  it('refuses names that are neither a package nor a copy, including paths', () => {
    for (const bad of ['../models/mnist-cnn', 'mnist-cnn@0', 'mnist-cnn@x', 'mnist-cnn@-1', 'a/b', '', 'mnist-cnn@1@2']) {
      expect(() => packageNameOf(bad), bad).toThrow(ManifestError);
    }
    expect(() => loadModelEntry('models', '../models/mnist-cnn')).toThrow(ManifestError);
  });

  it('loads a copy from its package, under its own name', () => {
    const original = loadModelEntry('models', 'mnist-cnn');
    const copy = loadModelEntry('models', 'mnist-cnn@3');
    expect(copy.manifest.name).toBe('mnist-cnn@3');
    expect(copy.onnxPath).toBe(original.onnxPath);
    expect(copy.manifest.inputs).toEqual(original.manifest.inputs);
    expect(original.manifest.name).toBe('mnist-cnn');
  });

  it('serves every package as N models when asked', () => {
    const one = loadModelRepository('models');
    const three = loadModelRepository('models', 3);
    expect(three.size).toBe(3 * one.size);
    for (const name of one.keys()) {
      for (const copy of [name, `${name}@1`, `${name}@2`]) expect(three.get(copy)?.manifest.name).toBe(copy);
    }
    expect(() => loadModelRepository('models', 0)).toThrow(ManifestError);
  });
});
