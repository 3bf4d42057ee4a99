/**
 * Runs a chain of segments in onnxruntime, as a worker will: an environment of named tensors
 * starts with the request's inputs and collects each segment's outputs.
 */
import * as ort from 'onnxruntime-node';
import { encodeModel } from './onnx-proto.js';
import type { Segment } from './segmenter.js';

export class SegmentChain {
  private constructor(
    readonly segments: Segment[],
    private readonly sessions: ort.InferenceSession[],
  ) {}

  static async create(
    segments: Segment[],
    options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, logSeverityLevel: 3 },
  ): Promise<SegmentChain> {
    const sessions: ort.InferenceSession[] = [];
    for (const segment of segments) sessions.push(await ort.InferenceSession.create(encodeModel(segment.model), options));
    return new SegmentChain(segments, sessions);
  }

  /** Runs every segment; returns the whole environment (inputs, cut tensors, final outputs). */
  async run(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    const env: Record<string, ort.Tensor> = { ...feeds };
    for (let i = 0; i < this.segments.length; i++) {
      const segment = this.segments[i]!;
      const segmentFeeds: Record<string, ort.Tensor> = {};
      for (const name of segment.inputs) {
        const t = env[name];
        if (!t) throw new Error(`segment ${i} needs '${name}', which no earlier step produced`);
        segmentFeeds[name] = t;
      }
      Object.assign(env, await this.sessions[i]!.run(segmentFeeds));
    }
    return env;
  }

  async release(): Promise<void> {
    for (const s of this.sessions) await s.release();
  }
}
