#!/usr/bin/env node
/** The one `escapement` binary: every subcommand of the system. */
import { errorName, isCodedError } from '../shared/error-codes.js';
import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { runSubmit, runStatus } from './client-commands.js';
import { runPrepare } from './prepare-command.js';
import { runReplay } from './replay-command.js';
import { runCompare } from './compare-command.js';
import { runKeys } from './keys-command.js';
import { demoSettings } from './demo-settings.js';
import { measureHostSpeed, profileRateFactor } from '../loadgen/host-speed.js';
import { traceArgsOf, withTraceOptions } from './trace-options.js';
import { runController, runWorker } from './serve-commands.js';
import { ingestModel } from '../prepare/ingest.js';
import { formatInspection, inspectModel } from '../prepare/model-inspection.js';
import { DEFAULT_MAX_SAMPLE_AGE_NS } from '../controller/latency-estimator.js';

const DEFAULT_MODEL_DIR = 'models';

/**
 * A fraction flag's coercion: in (0, 1], or (0, 1) when `inclusive` is false. NOTE: a coercion,
 * not a `.check`: coercions run while parsing, so `--check-args` refuses a bad value too (the
 * global middleware that answers it runs before the commands' checks).
 */
function fractionFlag(flag: string, inclusive = true): (value: number) => number {
  return (value) => {
    if (!(value > 0 && (inclusive ? value <= 1 : value < 1))) throw new Error(`--${flag} must be in (0, 1${inclusive ? ']' : ')'}, not ${value}`);
    return value;
  };
}

/** A secret given inline (flag or environment) or in a file (first line; never both). */

function tokenOption(inline: string | undefined, file: string | undefined, name: string): string | undefined {
  if (inline !== undefined && file !== undefined) throw new Error(`give --${name} or --${name}-file, not both`);
  if (file === undefined) return inline;
  const token = readFileSync(file, 'utf8').split('\n')[0]!.trim();
  if (token.length === 0) throw new Error(`--${name}-file ${file} is empty`);
  return token;
}

await yargs(hideBin(process.argv))
  .scriptName('escapement')
  .command(
    'controller',
    'run the controller (plans every LOAD/INFER/UNLOAD for its workers)',
    (y) =>
      y
        .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to listen on (loopback unless told otherwise)' })
        .option('port', { type: 'number', default: 5555, describe: 'port for workers (0: any free port)' })
        .option('client-port', { type: 'number', default: 5556, describe: 'port for clients (0: any free port)' })
        .option('http-port', { type: 'number', default: 8000, describe: 'Open Inference Protocol REST and /metrics (0: any free port, -1: off)' })
        .option('http-token', { type: 'string', describe: 'require Authorization: Bearer <token> on HTTP (health stays open); or ESCAPEMENT_HTTP_TOKEN' })
        .option('admin-token', {
          type: 'string',
          describe:
            'require this token to change how the controller serves: configure (clients send it) and HTTP repository load/unload (Bearer); or ESCAPEMENT_ADMIN_TOKEN',
        })
        .option('keys', {
          type: 'string',
          describe: 'a folder from `escapement keys`: CURVE-encrypt and authenticate workers (and clients); each worker key is bound to its id',
        })
        .option('insecure', {
          type: 'boolean',
          default: false,
          describe:
            'serve without --keys (any process or peer that reaches the ports can register a worker or submit): ' +
            "only on a machine or private network you trust, such as the local demo's or the compose file's",
        })
        .option('admin-token-file', { type: 'string', describe: 'read the admin token from this file (instead of --admin-token or ESCAPEMENT_ADMIN_TOKEN)' })
        .option('http-token-file', { type: 'string', describe: 'read the HTTP bearer token from this file (instead of --http-token or ESCAPEMENT_HTTP_TOKEN)' })
        .option('model-dir', { type: 'string', default: DEFAULT_MODEL_DIR, describe: 'model repository' })
        .option('schedule-ahead-ms', { type: 'number', default: 5, describe: 'plan work for a worker only this far ahead' })
        .option('buffer-ms', { type: 'number', default: 5, describe: 'aim to finish this long before each deadline' })
        .option('max-batch', { type: 'number', default: 16, describe: 'largest batch formed' })
        .option('exact-batches', {
          type: 'boolean',
          default: true,
          describe:
            "run a batch with exactly as many rows as requests (any size up to the largest profiled one); --no-exact-batches pads to the package's profiled sizes, as on GPUs",
        })
        .option('preload', { type: 'string', describe: 'comma-separated models to load on every worker' })
        .option('model-copies', {
          type: 'number',
          default: 1,
          describe: 'serve every package as this many models (name, name@1, …), each loaded and evicted on its own, as Clockwork serves copies',
        })
        .option('log-dir', { type: 'string', describe: 'write requests.csv and actions.csv here' })
        .option('heartbeat-timeout-ms', { type: 'number', default: 1000, describe: 'declare a silent worker dead after this long' })
        .option('policy', {
          choices: ['deadline', 'fifo'] as const,
          default: 'deadline' as const,
          describe: 'deadline-aware planner, or the FIFO batching baseline (max batch + batch timeout)',
        })
        .option('batch-timeout-ms', { type: 'number', default: 5, describe: 'fifo: how long the oldest request waits for its batch to fill' })
        .option('max-enqueued-batches', {
          type: 'number',
          default: 10,
          describe: 'fifo: full batches that may wait per model before arrivals get QUEUE_FULL (0: unbounded)',
        })
        .option('adjust-ramps', {
          type: 'boolean',
          default: true,
          describe:
            'let the controller activate/deactivate ramps by utility, at most one change per 512 monitored requests (each change ' +
            "costs every worker a planned RAMPS action building the new chain); --no-adjust-ramps keeps the package's ramps",
        })
        .option('max-sample-age-ms', {
          type: 'number',
          default: DEFAULT_MAX_SAMPLE_AGE_NS / 1e6,
          describe:
            "duration estimates forget a worker's measurements older than this (a batch size left with none goes back to its LOAD profile); 0: only the last 100 per batch size count",
        })
        .option('tail-pool-runs', {
          type: 'number',
          default: 0,
          describe:
            "bound every deadline check by the tail of each worker's last N runs, all batch sizes pooled (0: off): fewer admitted requests miss under bursts, more are rejected",
        })
        .option('exit-mode', {
          choices: ['off', 'release', 'compact'] as const,
          default: 'off' as const,
          describe: 'early exits for packages with ramps: off, release (answer at the ramp, batch runs on) or compact (exited requests leave the batch)',
        })
        .option('thresholds', {
          choices: ['online', 'static'] as const,
          default: 'online' as const,
          describe:
            "early-exit thresholds: tuned online to the accuracy budget, or static (the package's validation-split thresholds, never re-tuned: a baseline)",
        })
        .option('tuning-budget-share', {
          type: 'number',
          describe:
            "the share of each package's accuracy budget the online tuner may spend, in (0, 1] (default 1: it holds over the tuner's window; 0.5 keeps short windows within it too, for fewer exits)",
          coerce: fractionFlag('tuning-budget-share'),
        })
        .option('fused-release', {
          type: 'boolean',
          default: true,
          describe:
            "release mode: run a batch on the whole model with the ramps fused in (no early answers, about the whole model's " +
            'cost) when more requests wait than the batch takes; --no-fused-release runs every release batch as the chain',
        })
        .option('admission-margin-quantile', {
          type: 'number',
          default: 0,
          describe:
            "admit a request only if its predicted completion plus this quantile of admission's recent prediction errors (per queue " +
            'depth) meets its deadline, e.g. 0.9 (0: off): under bursts almost nothing admitted misses, more is rejected at arrival',
        })
        .option('nice', {
          type: 'number',
          default: -10,
          describe:
            'niceness of every controller thread (Linux): on a host shared with workers, results and requests are read as they arrive instead ' +
            'of after a raised inference run (needs CAP_SYS_NICE; without it the controller says so and runs at the default; 0: leave it)',
        })
        .example('$0 controller --port 5555 --client-port 5556 --preload mnist-cnn', ''),
    async (a) => {
      await runController({
        host: a.host,
        port: a.port,
        clientPort: a['client-port'],
        modelDir: a['model-dir'],
        scheduleAheadMs: a['schedule-ahead-ms'],
        bufferMs: a['buffer-ms'],
        maxBatch: a['max-batch'],
        exactBatches: a['exact-batches'],
        preload: a.preload,
        modelCopies: a['model-copies'],
        logDir: a['log-dir'],
        heartbeatTimeoutMs: a['heartbeat-timeout-ms'],
        exitMode: a['exit-mode'],
        policy: a.policy,
        batchTimeoutMs: a['batch-timeout-ms'],
        maxEnqueuedBatches: a['max-enqueued-batches'],
        adjustRamps: a['adjust-ramps'],
        tailPoolRuns: a['tail-pool-runs'],
        maxSampleAgeMs: a['max-sample-age-ms'],
        httpPort: a['http-port'],
        httpToken: tokenOption(a['http-token'], a['http-token-file'], 'http-token'),
        adminToken: tokenOption(a['admin-token'], a['admin-token-file'], 'admin-token'),
        keys: a.keys,
        insecure: a.insecure,
        nice: a.nice,
        admissionMarginQuantile: a['admission-margin-quantile'],
        fusedRelease: a['fused-release'],
        thresholds: a.thresholds,
        ...(a['tuning-budget-share'] !== undefined ? { tuningBudgetShare: a['tuning-budget-share'] } : {}),
      });
    },
  )
  .command(
    'worker',
    "run a worker: executes the controller's actions on one device",
    (y) =>
      y
        .option('controller', { type: 'string', default: 'tcp://127.0.0.1:5555', describe: 'controller worker endpoint' })
        .option('device', { type: 'string', default: 'cpu', describe: 'cpu, cuda:N or webgpu' })
        .option('memory-mb', { type: 'number', default: 1024, describe: 'memory budget for loaded models' })
        .option('id', { type: 'string', describe: 'worker id (default worker-<pid>)' })
        .option('model-dir', { type: 'string', default: DEFAULT_MODEL_DIR })
        .option('threads', { type: 'number', default: 1, describe: 'onnxruntime intra-op threads' })
        .option('cpu-fallback', {
          type: 'boolean',
          default: false,
          describe: 'on an accelerator, let onnxruntime run nodes it cannot place there on the CPU (refused by default, naming them)',
        })
        .option('nice', {
          type: 'number',
          default: -10,
          describe:
            'niceness of every worker thread (Linux): negative runs inference, and the messages around it, ahead of other work on a shared ' +
            'host, so runs take what was predicted (needs CAP_SYS_NICE; without it the worker says so and runs at the default; 0: leave it)',
        })
        .option('inference-cpus', {
          type: 'string',
          describe:
            'pin the inference thread (and onnxruntime threads) to these CPUs, a taskset list such as 1 or 2-3 (Linux): ' +
            'workers sharing a host then never stack their runs on one core while another idles',
        })
        .option('simulate', { type: 'boolean', default: false, describe: 'sleep the modelled duration instead of running models' })
        .option('noise', { type: 'number', default: 0, describe: 'simulated duration noise (fraction)' })
        .option('seed', { type: 'number', default: 1 })
        .option('key', { type: 'string', describe: "this worker's key file from `escapement keys` (CURVE)" })
        .option('sim-latency', { type: 'string', describe: 'with --simulate: "baseUs,perItemUs" for every model' })
        .option('clock-skew-ms', { type: 'number', default: 0, describe: "testing aid: pretend this host's clock is off by this much" })
        .example('$0 worker --controller tcp://127.0.0.1:5555 --device cpu --id w0', ''),
    async (a) => {
      await runWorker({
        controller: a.controller,
        device: a.device,
        memoryMb: a['memory-mb'],
        id: a.id,
        modelDir: a['model-dir'],
        threads: a.threads,
        cpuFallback: a['cpu-fallback'],
        nice: a.nice,
        inferenceCpus: a['inference-cpus'],
        simulate: a.simulate,
        noise: a.noise,
        seed: a.seed,
        key: a.key,
        simLatency: a['sim-latency'],
        clockSkewMs: a['clock-skew-ms'],
      });
    },
  )
  .command(
    'submit',
    'submit requests with an SLO and print the answers',
    (y) =>
      y
        .option('controller', { type: 'string', default: 'tcp://127.0.0.1:5556', describe: 'controller client endpoint' })
        .option('model', { type: 'string', demandOption: true })
        .option('slo-ms', { type: 'number', default: 50 })
        .option('input', { type: 'string', describe: 'input file (.pb TensorProto, .json, raw .f32)' })
        .option('text', { type: 'string', describe: "text models: the text to classify (tokenized here, with the package's tokenizer)" })
        .option('random', { type: 'boolean', default: false, describe: 'random inputs (the default without --input)' })
        .option('count', { type: 'number', default: 1 })
        .option('rate', { type: 'number', default: 100, describe: 'requests per second (Poisson, open loop)' })
        .option('model-dir', { type: 'string', default: DEFAULT_MODEL_DIR })
        .option('seed', { type: 'number', default: 1 })
        .option('json', { type: 'boolean', default: false })
        .option('key', { type: 'string', describe: 'client key file from `escapement keys` (CURVE)' })
        .example('$0 submit --model mnist-cnn --slo-ms 50 --input zoo/mnist-cnn/test_data/input_0.pb', '')
        .example('$0 submit --model mnist-cnn --random --count 1000 --rate 500', '')
        .example('$0 submit --model spam-transformer --text "WIN a FREE cruise, reply now"', ''),
    async (a) => {
      process.exitCode = await runSubmit({
        controller: a.controller,
        model: a.model,
        sloMs: a['slo-ms'],
        input: a.input,
        text: a.text,
        random: a.random,
        count: a.count,
        rate: a.rate,
        modelDir: a['model-dir'],
        seed: a.seed,
        json: a.json,
        key: a.key,
      });
    },
  )
  .command(
    'status',
    "print the controller's workers, queues and estimates",
    (y) =>
      y
        .option('controller', { type: 'string', default: 'tcp://127.0.0.1:5556' })
        .option('json', { type: 'boolean', default: false })
        .option('key', { type: 'string', describe: 'client key file (CURVE)' }),
    async (a) => runStatus({ controller: a.controller, json: a.json, key: a.key }),
  )
  .command(
    'ingest',
    'add a plain ONNX classifier to the model repository (dynamic batch, checked)',
    (y) =>
      y
        .option('model', { type: 'string', demandOption: true, describe: 'input .onnx' })
        .option('name', { type: 'string', demandOption: true })
        .option('out', { type: 'string', default: DEFAULT_MODEL_DIR, describe: 'model repository' })
        .option('batch-sizes', { type: 'string', default: '1,2,4,8,16' }),
    async (a) => {
      const report = await ingestModel({ inputPath: a.model, name: a.name, outDir: a.out, batchSizes: a['batch-sizes'].split(',').map(Number) });
      process.stdout.write(`${JSON.stringify({ manifest: report.manifest.name, rewrite: report.rewrite, maxAbsDiff: report.maxAbsDiff })}\n`);
    },
  )
  .command(
    'inspect <model>',
    'what an ONNX model is and what prepare would make of it: inputs, outputs, opsets, the answer, ramp sites (no dataset, no training)',
    (y) =>
      y
        .positional('model', { type: 'string', demandOption: true, describe: 'an .onnx file' })
        .option('output', { type: 'string', describe: 'the output that is the answer, as for prepare' })
        .option('json', { type: 'boolean', default: false })
        .example('$0 inspect zoo/fmnist-resnet/original.onnx', ''),
    async (a) => {
      const inspection = await inspectModel(a.model!, readFileSync(a.model!), a.output);
      process.stdout.write(`${a.json ? JSON.stringify(inspection) : formatInspection(inspection)}\n`);
    },
  )
  .command(
    'prepare',
    'turn an ONNX classifier into an early-exit model package (sites, segments, trained ramps, profiles)',
    (y) =>
      y
        .option('model', { type: 'string', demandOption: true, describe: 'input .onnx' })
        .option('dataset', { type: 'string', demandOption: true, describe: 'dataset folder (dataset.json) or .npy/IDX file' })
        .option('out', { type: 'string', demandOption: true, describe: 'package folder, e.g. models/NAME (replaced)' })
        .option('labels', {
          choices: ['truth', 'model'] as const,
          default: 'model' as const,
          describe: "train ramps on the model's own predictions (default: what exits are judged on) or on ground truth",
        })
        .option('bootstrap-fraction', { type: 'number', default: 0.1, describe: 'first fraction of the dataset used to train and validate ramps' })
        .option('train-val', { type: 'string', default: '1:9', describe: 'train:validation split of the bootstrap data' })
        .option('max-ramps', { type: 'number', default: 3 })
        .option('overhead-budget', { type: 'number', default: 0.05, describe: 'total ramp cost as a fraction of the model latency' })
        .option('seed', { type: 'number', default: 1 })
        .option('include', { type: 'string', array: true, default: [] as string[], describe: 'files to copy into the package (licences, notices)' })
        .option('tokenizer', { type: 'string', describe: "text models: the tokenizer.json that turns the dataset's texts into token ids" })
        .option('sequence-buckets', {
          type: 'number',
          array: true,
          describe: 'text models: sequence lengths requests are padded up to (default powers of two from 16, then maxTokens)',
        })
        .option('output', {
          type: 'string',
          describe:
            'the output that is the answer (the logits), for models with several; default: the single float [N, classes] output left once probabilities and features are set aside',
        })
        .option('json', { type: 'boolean', default: false })
        .example('$0 prepare --model zoo/fmnist-resnet/original.onnx --dataset datasets/fashion-mnist-test --out models/fmnist-resnet', '')
        .example(
          '$0 prepare --model zoo/spam-transformer/original.onnx --tokenizer zoo/spam-transformer/tokenizer.json --dataset datasets/spam-assassin --out models/spam-transformer',
          '',
        ),
    async (a) => {
      await runPrepare({
        model: a.model,
        dataset: a.dataset,
        out: a.out,
        labels: a.labels,
        bootstrapFraction: a['bootstrap-fraction'],
        trainVal: a['train-val'],
        maxRamps: a['max-ramps'],
        overheadBudget: a['overhead-budget'],
        seed: a.seed,
        include: a.include,
        json: a.json,
        ...(a.tokenizer ? { tokenizer: a.tokenizer } : {}),
        ...(a['sequence-buckets'] ? { sequenceBuckets: a['sequence-buckets'] } : {}),
        ...(a.output ? { output: a.output } : {}),
      });
    },
  )
  .command(
    'replay',
    'replay a trace open loop against a controller and write a report folder',
    (y) =>
      withTraceOptions(y)
        .option('trace', {
          type: 'string',
          demandOption: true,
          describe: 'trace file (Azure LLM 2023/2024, Azure Functions 2019/2021, BurstGPT, Mooncake, any JSON lines or CSV with the field flags)',
        })
        .option('controller', { type: 'string', default: 'tcp://127.0.0.1:5556' })
        .option('model', { type: 'string', demandOption: true, describe: 'model for requests the trace does not assign' })
        .option('model-dir', { type: 'string', default: DEFAULT_MODEL_DIR })
        .option('slo-ms', { type: 'number', describe: "the requests' SLO (default 50, unless the trace gives one)" })
        .option('slo-factor', { type: 'number', describe: "SLO as a multiple of the model's profiled batch-1 latency" })
        .conflicts('slo-ms', 'slo-factor')
        .option('rate-scale', { type: 'number', default: 1 })
        .option('time-scale', { type: 'number', default: 1, describe: 'run the trace this many times faster' })
        .option('start-offset-s', { type: 'number', default: 0 })
        .option('max-seconds', { type: 'number' })
        .option('max-requests', { type: 'number' })
        .option('distribution', {
          choices: ['poisson', 'uniform', 'gamma'] as const,
          default: 'poisson' as const,
          describe: 'per-minute traces: arrivals within a minute',
        })
        .option('cv', { type: 'number', default: 1, describe: 'gamma arrivals: coefficient of variation' })
        .option('seed', { type: 'number', default: 1 })
        .option('dataset', { type: 'string', describe: 'inputs (and labels) in trace order; default random inputs' })
        .option('copies', {
          type: 'number',
          default: 1,
          describe: 'spread the trace over this many copies of --model (model, model@1, …; start the controller with --model-copies)',
        })
        .option('mapping', {
          choices: ['functions', 'zipf'] as const,
          describe: 'copies: function i (by volume) → copy i % copies (Clockwork), or a Zipf split of the stream (default: functions when the trace has them)',
        })
        .option('zipf-exponent', { type: 'number', default: 1, describe: 'zipf mapping: copy k with probability ∝ 1/(k+1)^s' })
        .option('warmup-s', {
          type: 'number',
          default: 0,
          describe: "first replay the slice's first seconds unmeasured (a fresh client and cluster are slow for a second or two)",
        })
        .option('out', { type: 'string', demandOption: true })
        .option('json', { type: 'boolean', default: false })
        .example(
          '$0 replay --trace traces/azure-llm-2023-conv.csv --model fmnist-resnet --slo-ms 50 --time-scale 4 --max-seconds 30 --dataset datasets/fashion-mnist-test --out runs/replay',
          '',
        ),
    async (a) => {
      process.exitCode = await runReplay({
        trace: a.trace,
        ...traceArgsOf(a),
        controller: a.controller,
        model: a.model,
        modelDir: a['model-dir'],
        sloMs: a['slo-ms'],
        sloFactor: a['slo-factor'],
        rateScale: a['rate-scale'],
        timeScale: a['time-scale'],
        startOffsetS: a['start-offset-s'],
        maxSeconds: a['max-seconds'],
        maxRequests: a['max-requests'],
        distribution: a.distribution,
        cv: a.cv,
        seed: a.seed,
        dataset: a.dataset,
        out: a.out,
        json: a.json,
        copies: a.copies,
        ...(a.mapping ? { mapping: a.mapping } : {}),
        zipfExponent: a['zipf-exponent'],
        warmupS: a['warmup-s'],
      });
    },
  )
  .command(
    'compare',
    'the same replay without and with ramps, under the planner and the FIFO baseline, side by side',
    (y) =>
      withTraceOptions(y)
        .option('controller', { type: 'string', describe: 'a running controller (default: start a local controller and 2 workers)' })
        .option('admin-token', {
          type: 'string',
          describe: "the running controller's admin token, if it has one (compare reconfigures it between variants); or ESCAPEMENT_ADMIN_TOKEN",
        })
        .option('trace', { type: 'string', default: 'traces/azure-llm-2023-conv.csv' })
        .option('model', { type: 'string', default: 'fmnist-resnet' })
        .option('model-dir', { type: 'string', default: DEFAULT_MODEL_DIR })
        .option('dataset', { type: 'string', default: 'datasets/fashion-mnist-test' })
        .option('slo-ms', { type: 'number', describe: "the requests' SLO (default 40)" })
        .option('slo-factor', { type: 'number', describe: "SLO as a multiple of the model's profiled batch-1 latency" })
        .conflicts('slo-ms', 'slo-factor')
        .option('rate-scale', { type: 'number', default: 1 })
        .option('time-scale', { type: 'number', default: 100, describe: 'the bundled trace runs 100x faster: ~550 req/s' })
        .option('start-offset-s', { type: 'number', default: 0 })
        .option('max-seconds', { type: 'number', default: 12 })
        .option('max-requests', { type: 'number' })
        .option('distribution', { choices: ['poisson', 'uniform', 'gamma'] as const, default: 'poisson' as const })
        .option('cv', { type: 'number', default: 1 })
        .option('seed', { type: 'number', default: 1 })
        .option('exit-mode', { choices: ['release', 'compact'] as const, default: 'compact' as const })
        .option('baseline', { type: 'boolean', default: true, describe: 'also run the FIFO batching baseline' })
        .option('static', {
          type: 'boolean',
          default: false,
          describe: "also run the planner with ramps at the package's validation-split thresholds, never re-tuned (the static baseline for the online tuner)",
        })
        .option('fixed-ramps', {
          type: 'boolean',
          default: false,
          describe: "also run the planner with ramps tuned online but the package's ramp set fixed (ramp adjustment off for that variant, on for the others)",
        })
        .option('reverse-variants', {
          type: 'boolean',
          default: false,
          describe: 'run the variants in the reverse order (a second run the other way round cancels a host that speeds up or slows down over the run)',
        })
        .option('oracle', {
          type: 'boolean',
          default: false,
          describe:
            "also run the planner with ramps at the oracle's thresholds: per window, the best in hindsight that keep the window's agreement >= 99 % (what online tuning can reach at best)",
        })
        .option('tuning-budget-share', {
          type: 'number',
          describe: 'also run the online tuner spending only this share of the accuracy budget, in (0, 1] (the other variants spend all of it)',
          coerce: fractionFlag('tuning-budget-share'),
        })
        .option('safe-oracle-budget', {
          type: 'number',
          describe:
            'also run the oracle at this smaller disagreement budget per window (a fraction, e.g. 0.0035): at best what a tuner reaches that keeps nearly every window within the package budget',
          coerce: fractionFlag('safe-oracle-budget', false),
        })
        .option('batch-timeout-ms', { type: 'number', default: 5 })
        .option('max-enqueued-batches', {
          type: 'number',
          default: 10,
          describe: 'fifo baseline: queue bound in full batches per model, as TF-Serving (0: unbounded)',
        })
        .option('json', { type: 'string', describe: 'also write the comparison JSON here' })
        .option('out', { type: 'string', default: 'runs/compare' })
        .option('verbose', { type: 'boolean', default: false })
        .option('log-dir', {
          type: 'string',
          describe: 'the local controller writes requests.csv and actions.csv here, all variants in turn (not with --controller)',
        })
        .option('warmup-s', {
          type: 'number',
          default: 3,
          describe:
            "before each variant, replay the slice's first seconds unmeasured under its configuration, so each is measured in its steady state (0: measure cold starts)",
        }),
    async (a) => {
      process.exitCode = await runCompare({
        warmupS: a['warmup-s'],
        controller: a.controller,
        ...(a['admin-token'] ? { adminToken: a['admin-token'] } : {}),
        trace: a.trace,
        ...traceArgsOf(a),
        model: a.model,
        modelDir: a['model-dir'],
        dataset: a.dataset,
        sloMs: a['slo-ms'],
        sloFactor: a['slo-factor'],
        rateScale: a['rate-scale'],
        timeScale: a['time-scale'],
        startOffsetS: a['start-offset-s'],
        maxSeconds: a['max-seconds'],
        maxRequests: a['max-requests'],
        distribution: a.distribution,
        cv: a.cv,
        seed: a.seed,
        exitMode: a['exit-mode'],
        baseline: a.baseline,
        staticThresholds: a.static,
        oracle: a.oracle,
        ...(a['safe-oracle-budget'] !== undefined ? { safeOracleBudget: a['safe-oracle-budget'] } : {}),
        ...(a['tuning-budget-share'] !== undefined ? { tuningBudgetShare: a['tuning-budget-share'] } : {}),
        fixedRamps: a['fixed-ramps'],
        reverseVariants: a['reverse-variants'],
        batchTimeoutMs: a['batch-timeout-ms'],
        maxEnqueuedBatches: a['max-enqueued-batches'],
        jsonFile: a.json,
        out: a.out,
        verbose: a.verbose,
        ...(a['log-dir'] ? { logDir: a['log-dir'] } : {}),
      });
    },
  )
  .command(
    'keys',
    'generate CURVE key pairs for a controller, its workers and a client',
    (y) =>
      y
        .option('out', { type: 'string', demandOption: true })
        .option('workers', { type: 'number', default: 2 })
        .option('clients', { type: 'number', default: 1 })
        .example('$0 keys --out keys && $0 controller --keys keys && $0 worker --key keys/worker-0.key.json', ''),
    (a) => runKeys({ out: a.out, workers: a.workers, clients: a.clients }),
  )
  .command(
    'bench <suite>',
    'run a benchmark suite: prints a table and writes bench/results/<suite>.json',
    (y) =>
      y
        .positional('suite', { choices: ['core', 'prepare', 'exits', 'reliability', 'bursty', 'adapt'] as const, demandOption: true })
        .example('$0 bench exits', ''),
    async (a) => {
      // Each suite runs when its module loads (top-level await).
      await import(`../bench/${a.suite}-bench.js`);
    },
  )
  .command(
    'demo',
    'the main job: a local controller + 2 workers replay a slice of the bundled Azure trace on fmnist-resnet, with and without ramps, and plot it',
    (y) =>
      y
        .option('out', { type: 'string', default: 'runs/demo' })
        .option('model', {
          type: 'string',
          default: 'fmnist-resnet',
          describe: 'a bundled early-exit package (fmnist-resnet-112: the real-size one, ~20 ms an image)',
        })
        .option('time-scale', {
          type: 'number',
          describe:
            'trace speed-up (default: 100 on fmnist-resnet, and the same share of capacity on another model; lower on a host slower than the package profile)',
        })
        .option('max-seconds', { type: 'number', default: 12, describe: 'length of each replay' })
        .option('log-dir', { type: 'string', describe: 'the controller writes requests.csv and actions.csv here, all variants in turn' })
        .option('verbose', { type: 'boolean', default: false }),
    async (a) => {
      const hostSpeed = a['time-scale'] === undefined ? await measureHostSpeed(DEFAULT_MODEL_DIR, a.model) : undefined;
      const settings = demoSettings(DEFAULT_MODEL_DIR, a.model, hostSpeed);
      if (hostSpeed && profileRateFactor(hostSpeed) < 1)
        process.stderr.write(
          `this host runs ${a.model}'s batch of ${hostSpeed.batchSize} in ${hostSpeed.measuredMs.toFixed(1)} ms, its package profile in ` +
            `${hostSpeed.profiledMs.toFixed(1)} ms: the trace plays at ${settings.timeScale}x, the same share of this host's capacity\n`,
        );
      process.exitCode = await runCompare({
        controller: undefined,
        trace: 'traces/azure-llm-2023-conv.csv',
        format: undefined,
        model: a.model,
        modelDir: DEFAULT_MODEL_DIR,
        dataset: settings.dataset,
        sloMs: undefined,
        sloFactor: undefined,
        rateScale: 1,
        timeScale: a['time-scale'] ?? settings.timeScale,
        startOffsetS: 0,
        maxSeconds: a['max-seconds'],
        maxRequests: undefined,
        distribution: 'poisson',
        cv: 1,
        seed: 1,
        exitMode: 'compact',
        baseline: true,
        batchTimeoutMs: 5,
        jsonFile: undefined,
        out: a.out,
        verbose: a.verbose,
        ...(a['log-dir'] ? { logDir: a['log-dir'] } : {}),
      });
    },
  )
  .option('log-format', {
    choices: ['auto', 'human', 'json'] as const,
    default: 'auto' as const,
    global: true,
    describe: 'logs on stderr: human on a terminal, JSON lines otherwise',
  })
  .option('debug', { type: 'boolean', default: false, global: true, describe: 'print the stack trace of a failure (or ESCAPEMENT_DEBUG=1)' })
  .option('check-args', { type: 'boolean', default: false, global: true, describe: 'validate the command line (and config/env) and exit without running' })
  .middleware((argv) => {
    if (argv['log-format'] !== 'auto') process.env.ESCAPEMENT_LOG_FORMAT = argv['log-format'];
    if (argv['check-args']) {
      // Runs after validation: reaching here means the command and its flags are accepted.
      process.stdout.write(`escapement ${String(argv._[0])}: arguments ok\n`);
      process.exit(0);
    }
  })
  .config('config', 'a JSON file of option values (e.g. escapement.json); command-line flags win')
  .env('ESCAPEMENT') // ESCAPEMENT_HTTP_PORT=8000 sets --http-port, for containers
  .demandCommand(1)
  .strict()
  .help()
  .fail((message, err, y) => {
    // A bad command line gets the help; a command that fails gets one line (its stack with --debug).
    if (err) {
      const debug = process.argv.includes('--debug') || ['1', 'true'].includes(process.env.ESCAPEMENT_DEBUG ?? '');
      // A tool's own error says its catalog code too (EscapementError messages already start with it).
      const coded = isCodedError(err) ? `${errorName(err.code)} (${err.code}): ` : '';
      process.stderr.write(`escapement: ${coded}${debug ? (err.stack ?? err.message) : err.message}\n`);
      process.exit(1);
    }
    y.showHelp();
    process.stderr.write(`\n${message}\n`);
    process.exit(2);
  })
  .parseAsync();
