/** `escapement prepare`: ONNX classifier + dataset -> early-exit model package, with a summary. */
import { formatTable } from '../loadgen/latency-summary.js';
import { DEFAULT_PREPARE_OPTIONS, preparePackage, type PrepareReport } from '../prepare/prepare-package.js';
import { makeProgress } from './progress-bar.js';

export interface PrepareArgs {
  model: string;
  dataset: string;
  out: string;
  labels: 'truth' | 'model';
  bootstrapFraction: number;
  trainVal: string;
  maxRamps: number;
  overheadBudget: number;
  seed: number;
  include: string[];
  tokenizer?: string;
  sequenceBuckets?: number[];
  /** The output that is the answer, for models with several. */
  output?: string;
  json: boolean;
}

function parseTrainVal(text: string): [number, number] {
  const match = /^(\d+(?:\.\d+)?):(\d+(?:\.\d+)?)$/.exec(text);
  if (!match) throw new Error(`--train-val must look like 1:9, got '${text}'`);
  return [Number(match[1]), Number(match[2])];
}

export function summaryTable(report: PrepareReport): string {
  const rows = report.ramps.map((r) => ({
    site: r.siteId,
    at: r.producer,
    shape: `[${r.shape.slice(1).join('x')}]`,
    trained: r.training,
    'train acc': (100 * r.trainAccuracy).toFixed(1),
    'val acc': r.validationAccuracy === undefined ? '-' : (100 * r.validationAccuracy).toFixed(1),
    'agree %': (100 * r.agreement).toFixed(1),
    'τ@99': r.threshold > 1 ? 'off' : r.threshold.toFixed(3),
    'exit@99 %': (100 * r.exitFraction).toFixed(1),
    'cost ms': r.costMsAtReference.toFixed(3),
    chosen: r.chosen ? 'yes' : '',
  }));
  const s = report.selection;
  return [
    report.outputChoice,
    ...report.inputNotes,
    formatTable(rows),
    '',
    `sites found: ${report.numSites}; ramps trained: ${report.ramps.length}; chosen: [${s.chosen.join(', ')}]`,
    `segment chain == model: max |diff| ${report.verification.maxAbsDiff.toExponential(2)}, prediction agreement ` +
      `${(100 * report.verification.predictionAgreement).toFixed(2)} % on ${report.verification.numSamples} samples`,
    `predicted saving at batch ${report.manifest.earlyExit!.profile.referenceBatchSize}: ${s.savingMs.toFixed(3)} ms ` +
      `of ${report.wholeMsAtReference.toFixed(3)} ms (${((100 * s.savingMs) / report.wholeMsAtReference).toFixed(1)} ` +
      `%), ramp overhead ${s.overheadMs.toFixed(3)} ms (${((100 * s.overheadMs) / report.wholeMsAtReference).toFixed(1)} %), agreement ${(100 * s.agreement).toFixed(2)} %`,
    `prepared in ${report.seconds.toFixed(1)} s${report.peakRssMb !== undefined ? `, peak resident memory ${report.peakRssMb} MB` : ''}`,
  ].join('\n');
}

export async function runPrepare(args: PrepareArgs): Promise<void> {
  const name = args.out.replace(/\/+$/, '').split('/').at(-1)!;
  const report = await preparePackage({
    ...DEFAULT_PREPARE_OPTIONS,
    modelPath: args.model,
    datasetPath: args.dataset,
    outDir: args.out,
    name,
    labels: args.labels,
    bootstrapFraction: args.bootstrapFraction,
    trainVal: parseTrainVal(args.trainVal),
    maxRamps: args.maxRamps,
    overheadBudget: args.overheadBudget,
    seed: args.seed,
    include: args.include,
    ...(args.tokenizer ? { tokenizerPath: args.tokenizer } : {}),
    ...(args.sequenceBuckets ? { sequenceBuckets: args.sequenceBuckets } : {}),
    ...(args.output ? { output: args.output } : {}),
    onProgress: makeProgress(`prepare ${name}`),
  });
  if (args.json) process.stdout.write(`${JSON.stringify({ ...report, manifest: undefined })}\n`);
  else process.stdout.write(`${summaryTable(report)}\n`);
}
