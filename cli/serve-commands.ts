/** `escapement controller` and `escapement worker`: the two long-running processes. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readAuthorizedKeys, readKeyPair, readPeerKeys } from '../shared/curve-keys.js';
import { ControllerMetrics } from '../controller/controller-metrics.js';
import { ControllerServer } from '../controller/controller-server.js';
import { HttpFront } from '../controller/http-front.js';
import { loadModelRepository } from '../shared/model-manifest.js';
import { hasServingNodeFlags, SERVING_NODE_FLAGS } from '../cluster/node-flags.js';
import { ThreadExecutor } from '../worker/thread-executor.js';
import { Device } from '../worker/device.js';
import { SimulatedExecutor } from '../worker/simulated-executor.js';
import type { Executor } from '../worker/executor.js';
import { WorkerServer } from '../worker/worker-server.js';
import { makeLogger } from './logger.js';
import { setProcessNiceness } from '../shared/thread-priority.js';
import { DEFAULT_ESTIMATOR_CONFIG } from '../controller/latency-estimator.js';
import { DEFAULT_ADMISSION_MARGIN } from '../controller/admission-margin.js';

export interface ControllerArgs {
  host: string;
  port: number;
  clientPort: number;
  modelDir: string;
  scheduleAheadMs: number;
  bufferMs: number;
  maxBatch: number;
  /** Batches of exactly as many rows as requests (default true). */
  exactBatches?: boolean;
  preload: string | undefined;
  /** Serve every package as this many models (`name`, `name@1`, …); default 1. */
  modelCopies?: number;
  logDir: string | undefined;
  heartbeatTimeoutMs: number;
  exitMode: 'off' | 'release' | 'compact';
  policy: 'deadline' | 'fifo';
  batchTimeoutMs: number;
  maxEnqueuedBatches?: number;
  adjustRamps: boolean;
  /** Pool this many recent runs per worker into every deadline bound (0: off; see latency-estimator.ts). */
  tailPoolRuns?: number;
  /** Estimates forget measurements older than this (ms; 0: by count only; absent: the default, see latency-estimator.ts). */
  maxSampleAgeMs?: number;
  /** Early-exit thresholds tuned online (default) or static (a baseline). */
  thresholds?: 'online' | 'static';
  /** The share of the accuracy budget the online tuner may spend (default 1). */
  tuningBudgetShare?: number;
  /** Admission's learned margin: this quantile of its past errors (0 or absent: off; see admission-margin.ts). */
  admissionMarginQuantile?: number;
  /** Release mode on the fused model when requests queue behind a batch (default true). */
  fusedRelease?: boolean;
  /** HTTP front door port (Open Inference Protocol and /metrics); 0 picks a free one, -1 disables it. */
  httpPort: number;
  /** Require `Authorization: Bearer <token>` on HTTP (health endpoints stay open). */
  httpToken: string | undefined;
  /** Require this token for configure and for HTTP repository load/unload. */
  adminToken?: string | undefined;
  /** A folder from `escapement keys`: CURVE on the worker (and client) ports. */
  keys: string | undefined;
  /** Allow a non-loopback address without keys. */
  insecure?: boolean;
  /** Niceness of every controller thread (0 or absent: leave it); see shared/thread-priority.ts. */
  nice?: number;
}

/** Node's default heap settings cost a serving process GC pauses of up to ~15 ms (see node-flags.ts). */
function warnWithoutServingFlags(log: (message: string) => void): void {
  if (!hasServingNodeFlags())
    log(
      `note: started without the serving heap settings; expect GC pauses of up to ~15 ms. Start through bin/escapement, or give node ${SERVING_NODE_FLAGS.join(' ')}`,
    );
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

function onSignals(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (): void => {
    if (stopping) return;
    stopping = true;
    void stop().then(() => process.exit(0));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

export async function runController(args: ControllerArgs): Promise<void> {
  if (!args.keys && !args.insecure) {
    // Loopback too: any local process (another user's, a compromised one) could register a worker,
    // draw every request and its inputs to itself, or take over a worker's id.
    const who = isLoopback(args.host) ? 'any process on this machine' : 'any peer that reaches the ports';
    throw new Error(
      `listening on ${args.host} without --keys would let ${who} register a worker or submit requests: give --keys DIR ` +
        `(from escapement keys), or --insecure on a machine or private network you trust (the local demo and tests do)`,
    );
  }
  if (args.maxSampleAgeMs !== undefined && !(args.maxSampleAgeMs >= 0)) throw new Error(`--max-sample-age-ms must be >= 0, got ${args.maxSampleAgeMs}`);
  const q = args.admissionMarginQuantile ?? 0;
  if (!(q >= 0 && q < 1)) throw new Error(`--admission-margin-quantile must be in [0, 1), got ${q}`);
  const log = makeLogger('controller');
  warnWithoutServingFlags(log);
  // First, so that the threads zeromq and libuv start later inherit it.
  const priorityProblem = args.nice ? setProcessNiceness(args.nice) : undefined;
  if (priorityProblem) log(`note: running at the default priority: ${priorityProblem}`);
  const models = loadModelRepository(args.modelDir, args.modelCopies ?? 1);
  let metrics: ControllerMetrics | undefined;
  const clientsFile = args.keys ? join(args.keys, 'authorized-clients.json') : undefined;
  const curve = args.keys
    ? {
        keys: readKeyPair(join(args.keys, 'controller.key.json')),
        authorizedWorkers: readAuthorizedKeys(join(args.keys, 'authorized-workers.json')),
        ...(clientsFile && existsSync(clientsFile) ? { authorizedClients: readAuthorizedKeys(clientsFile) } : {}),
      }
    : undefined;
  const server = new ControllerServer({
    host: args.host,
    workerPort: args.port,
    clientPort: args.clientPort,
    models,
    scheduler: {
      scheduleAheadNs: args.scheduleAheadMs * 1e6,
      bufferNs: args.bufferMs * 1e6,
      latestDeltaNs: args.bufferMs * 1e6,
      maxBatchSize: args.maxBatch,
      policy: args.policy,
      batchTimeoutNs: args.batchTimeoutMs * 1e6,
      ...(args.maxEnqueuedBatches !== undefined ? { maxEnqueuedBatches: args.maxEnqueuedBatches } : {}),
      estimator: {
        ...DEFAULT_ESTIMATOR_CONFIG,
        ...(args.tailPoolRuns ? { tailWindow: args.tailPoolRuns } : {}),
        ...(args.maxSampleAgeMs !== undefined ? { maxSampleAgeNs: args.maxSampleAgeMs * 1e6 } : {}),
      },
      ...(args.admissionMarginQuantile ? { admissionMargin: { ...DEFAULT_ADMISSION_MARGIN, quantile: args.admissionMarginQuantile } } : {}),
      ...(args.fusedRelease === false ? { fusedRelease: false } : {}),
    },
    heartbeatIntervalMs: 200,
    heartbeatTimeoutMs: args.heartbeatTimeoutMs,
    preloadModels: args.preload ? args.preload.split(',').filter(Boolean) : [],
    exitMode: args.exitMode,
    exactBatches: args.exactBatches ?? true,
    adjustRamps: args.adjustRamps,
    ...(args.thresholds ? { thresholds: args.thresholds } : {}),
    ...(args.tuningBudgetShare !== undefined ? { tuningBudgetShare: args.tuningBudgetShare } : {}),
    ...(args.adminToken ? { adminToken: args.adminToken } : {}),
    // With keys the controller is secured: without an admin token nobody may reconfigure it.
    ...(args.keys && !args.adminToken ? { adminLocked: true } : {}),
    ...(curve ? { curve } : {}),
    metrics: {
      observeAnswer: (...a) => metrics?.observeAnswer(...a),
      observeAction: (r) => metrics?.observeAction(r),
      observeQueue: (m, ns) => metrics?.observeQueue(m, ns),
    },
    ...(args.logDir ? { logDir: args.logDir } : {}),
    log,
  });
  if (!args.adminToken && args.keys) log('note: keys on and no --admin-token: configure and repository load/unload are refused');
  else if (!args.adminToken && !isLoopback(args.host))
    log(`note: listening on ${args.host} without --admin-token: any client that reaches it can reconfigure it and load or unload models`);
  const urls = await server.start();
  metrics = new ControllerMetrics(server);
  const registry = metrics.registry;
  const http =
    args.httpPort >= 0
      ? new HttpFront(server, {
          host: args.host,
          port: args.httpPort,
          maxBodyBytes: 16 * 2 ** 20,
          defaultSloMs: 100,
          metrics: () => registry.metrics(),
          metricsContentType: registry.contentType,
          ...(args.httpToken ? { token: args.httpToken } : {}),
          ...(args.adminToken ? { adminToken: args.adminToken } : {}),
          ...(args.keys && !args.adminToken ? { adminLocked: true } : {}),
        })
      : undefined;
  const httpUrl = http ? await http.start() : undefined;
  log(
    `serving ${models.size} model(s) [${[...models.keys()].join(', ')}]; workers at ${urls.workerUrl}, clients at ${urls.clientUrl}${httpUrl ? `, HTTP at ${httpUrl}` : ''}`,
  );
  process.stdout.write(`${JSON.stringify({ event: 'ready', role: 'controller', ...urls, ...(httpUrl ? { httpUrl } : {}) })}\n`);
  onSignals(async () => {
    await http?.close();
    await server.close();
  });
}

export interface WorkerArgs {
  controller: string;
  device: string;
  memoryMb: number;
  id: string | undefined;
  modelDir: string;
  threads: number;
  cpuFallback?: boolean;
  /** Niceness of the inference thread (negative: higher priority; needs CAP_SYS_NICE). */
  nice: number;
  /** Pin the inference thread to these CPUs (a taskset list, Linux). */
  inferenceCpus?: string | undefined;
  simulate: boolean;
  noise: number;
  seed: number;
  /** This worker's key file from `escapement keys` (CURVE). */
  key: string | undefined;
  /** Simulated latency override: "baseUs,perItemUs". */
  simLatency: string | undefined;
  /** Testing aid: this worker's clock runs this far from the controller's (ms). */
  clockSkewMs: number;
}

export async function runWorker(args: WorkerArgs): Promise<void> {
  const workerId = args.id ?? `worker-${process.pid}`;
  const log = makeLogger(workerId);
  warnWithoutServingFlags(log);
  const memoryBudgetBytes = args.memoryMb * 2 ** 20;
  // Every thread of a worker that runs models: the inference thread runs them; the main thread
  // and zeromq's I/O thread take actions in and send results out, which at the default niceness
  // waited behind two raised inference runs on two cores (shared/thread-priority.ts). A simulated
  // device spins on its timer and keeps the default.
  const priorityProblem = args.nice !== 0 && !args.simulate ? setProcessNiceness(args.nice) : undefined;
  if (priorityProblem) log(`note: running at the default priority: ${priorityProblem}`);
  let executor: Executor;
  if (args.simulate) {
    const [baseUs, perItemUs] = (args.simLatency ?? '').split(',').map(Number);
    const latency = args.simLatency && baseUs! >= 0 && perItemUs! >= 0 ? { latency: { baseUs: baseUs!, perItemUs: perItemUs! } } : {};
    executor = new SimulatedExecutor({ noise: args.noise, seed: args.seed, ...latency });
  } else {
    // The inference thread inherits the process's niceness (set above).
    const onnx = new ThreadExecutor({ device: args.device, intraOpNumThreads: args.threads, ...(args.cpuFallback ? { allowCpuFallback: true } : {}) });
    try {
      await onnx.probe();
    } catch (err) {
      // Never fall back silently to another device.
      log((err as Error).message);
      await onnx.close();
      process.exit(2);
    }
    if (args.inferenceCpus !== undefined) {
      const pinProblem = await onnx.pinInferenceThread(args.inferenceCpus);
      log(pinProblem ? `note: the inference thread is not pinned: ${pinProblem}` : `inference thread pinned to CPUs ${args.inferenceCpus}`);
    }
    executor = onnx;
  }
  const device = new Device(executor, { modelDir: args.modelDir, memoryBudgetBytes });
  const server = new WorkerServer(device, {
    controllerUrl: args.controller,
    workerId,
    modelDir: args.modelDir,
    memoryBudgetBytes,
    heartbeatIntervalMs: 200,
    clockResyncIntervalMs: 5000,
    log,
    ...(args.key ? { curve: readPeerKeys(args.key) } : {}),
    clockSkewNs: args.clockSkewMs * 1e6,
  });
  await server.start();
  process.stdout.write(`${JSON.stringify({ event: 'ready', role: 'worker', workerId, device: device.device })}\n`);
  onSignals(() => server.close());
}
