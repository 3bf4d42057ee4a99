/**
 * What makes a saved, optimised ONNX graph run only on the kind of CPU that optimised it.
 */
import type { ModelProto } from './onnx-proto.js';

const NCHWC_DOMAIN = 'com.microsoft.nchwc';

/**
 * onnxruntime's layout optimisation (level 'all') rewrites convolutions into blocked-layout
 * kernels (domain `com.microsoft.nchwc`) whose block size is the preparing CPU's vector width: 16
 * floats with AVX-512, 8 with AVX2. Saved in a file and run on a CPU of the other width, such a
 * graph computes garbage without an error (the bundled fmnist-resnet's chain, compiled on an
 * AVX-512 host, answered 10 % of requests right on an AVX2 one). The count of such nodes: a
 * compiled copy that has any does not travel.
 */
export function hostSpecificNodes(model: ModelProto): number {
  return (model.graph?.node ?? []).filter((node) => node.domain === NCHWC_DOMAIN).length;
}
