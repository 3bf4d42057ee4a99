/**
 * The worker's inference thread: owns every onnxruntime session (ort-executor.ts) and runs one
 * request at a time, as its main thread asks. Tensors arrive and leave as transferred
 * ArrayBuffers.
 *
 * NOTE: the queue of actions stays on the main thread (device-loop.ts). Tried: the queue here, so
 * that one action follows the next without a round trip. On two cores it served worse (p50 +1 to
 * +2.5 ms, INFER prediction error p50 14 % -> 21-26 % at 75 % load): with every inference thread
 * busy back to back, the main threads, the controller and the client preempt the runs; the hand-
 * off leaves each inference thread idle while its main thread does its share.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ErrorCode, isEscapementError } from '../shared/error-codes.js';
import { pinThisThread } from '../shared/cpu-affinity.js';
import { OrtExecutor } from './ort-executor.js';
import { fromWire, toWire, type ThreadReply, type ThreadRequest, type ThreadSettings } from './thread-messages.js';

const settings = workerData as ThreadSettings;
const executor = new OrtExecutor(settings);
const post = (reply: ThreadReply, transfer: ArrayBuffer[] = []): void => parentPort!.postMessage(reply, transfer);

async function handle(req: ThreadRequest): Promise<void> {
  switch (req.kind) {
    case 'load': {
      const outcome = await executor.load(req.entry, req.batchSizes);
      return post({ id: req.id, ok: true, kind: 'load', ...outcome });
    }
    case 'unload':
      await executor.unload(req.modelName);
      return post({ id: req.id, ok: true, kind: 'done' });
    case 'ramps':
      await executor.prepareRamps(req.modelName, req.siteIds, req.fused, req.warmup);
      return post({ id: req.id, ok: true, kind: 'done' });
    case 'probe':
      await executor.probe(req.onnxBytes);
      return post({ id: req.id, ok: true, kind: 'done' });
    case 'pin': {
      const problem = pinThisThread(req.cpus);
      if (problem) throw new Error(problem);
      return post({ id: req.id, ok: true, kind: 'done' });
    }
    case 'infer': {
      const outcome = await executor.infer(req.modelName, req.batchSize, req.inputs.map(fromWire), {
        numRequests: req.numRequests,
        ...(req.earlyExit ? { earlyExit: req.earlyExit } : {}),
        onExit: (e) => {
          const probabilities = e.probabilities.buffer as ArrayBuffer;
          post(
            {
              id: req.id,
              ok: true,
              kind: 'exit',
              siteId: e.siteId,
              rows: e.rows,
              confidences: e.confidences,
              predictions: e.predictions,
              numClasses: e.numClasses,
              atLocalNs: e.atLocalNs,
              probabilities,
            },
            [probabilities],
          );
        },
      });
      const outputs = outcome.outputs.map((t) => toWire(t, true)); // fresh copies out of ORT's memory
      const { outputs: _sent, ...rest } = outcome;
      return post(
        { id: req.id, ok: true, kind: 'infer', ...rest, outputs },
        outputs.map((o) => o.buffer),
      );
    }
  }
}

parentPort!.on('message', (req: ThreadRequest) => {
  handle(req).catch((err: Error) => {
    const code = isEscapementError(err) ? err.code : ErrorCode.INFER_RUNTIME_ERROR;
    post({ id: req.id, ok: false, code, message: err.message });
  });
});
