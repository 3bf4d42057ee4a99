/**
 * What a worker's folded result feeds besides the requests' answers: the action log and metrics,
 * predicted-against-actual errors per stage, and the exit monitors, whose threshold and ramp-set
 * changes (exit-control.ts decides them) are logged here with their reasons.
 */
import { ErrorCode } from '../shared/error-codes.js';
import type { ActionResultMsg, EarlyExitPlan, ExitFeedback } from '../shared/protocol.js';
import type { ControllerOptions } from './controller-options.js';
import type { ExitChanges, ExitControl } from './exit-control.js';
import type { SearchJob } from './exit-monitor.js';
import type { TunerResult } from '../shared/threshold-tuner.js';
import type { PredictionErrors } from './prediction-errors.js';
import type { ResultFold } from './result-folding.js';
import type { TelemetryLog } from './telemetry-log.js';

export interface ResultFeedbackDeps {
  exits: ExitControl;
  /** Runs a threshold search the exit monitors ask for (tuner-thread.ts); calls `done` with its results, now or later. */
  runSearch(jobs: SearchJob[], done: (results: TunerResult[] | undefined) => void): void;
  /** Runs a handler that must not throw out of an event (a search's results): the controller's `guarded`. */
  guarded(what: string, handler: () => void): void;
  /** Plans again soon (new thresholds or ramps change what the planner does). */
  planSoon(): void;
  predictionErrors: PredictionErrors;
  telemetry?: TelemetryLog;
  metrics?: NonNullable<ControllerOptions['metrics']>;
  nowNs(): number;
  log(line: string): void;
}

export class ResultFeedback {
  constructor(private readonly deps: ResultFeedbackDeps) {}

  fold(workerId: string, msg: ActionResultMsg, fold: ResultFold, nowNs: number): void {
    const { telemetry, metrics, predictionErrors, exits } = this.deps;
    const r = fold.record;
    if (r) {
      telemetry?.action(r, nowNs);
      metrics?.observeAction(r);
      if (r.actionType === 'infer' && r.code === ErrorCode.OK) {
        predictionErrors.observe({
          model: r.model,
          expectedDurationNs: r.expectedDurationNs,
          actualDurationNs: r.actualDurationNs,
          startLatenessNs: r.actualStartNs - r.expectedStartNs,
          expectedStages: r.expectedStages,
          stages: r.stages,
        });
      }
    }
    if (fold.exitPlan && msg.feedback) this.monitorExits(msg.modelName, fold.exitPlan, msg.feedback);
    // An early-exit model's batch run whole (release off the chain, or before a ramp set is ready): full answers all.
    else if (msg.actionType === 'infer' && msg.code === ErrorCode.OK)
      exits.countFullAnswers(msg.modelName, fold.outcomes.filter((o) => o.batchIndex !== undefined).length);
    if (msg.code !== ErrorCode.OK && msg.actionType !== 'infer')
      this.deps.log(`${msg.actionType} of ${msg.modelName} on ${workerId} failed: ${msg.message ?? msg.code}`);
  }

  /** Feeds accuracy monitoring (exit-control.ts decides). */
  private monitorExits(model: string, plan: EarlyExitPlan, feedback: ExitFeedback): void {
    this.exitChanges(model, this.deps.exits.observe(model, plan, feedback));
  }

  /**
   * Logs what the exit monitors changed, and runs the threshold search they ask for: the
   * controller serves on meanwhile, and the search's results come back here when it is done.
   */
  private exitChanges(model: string, changes: ExitChanges): void {
    const { thresholds: change, ramps: rampChange, search } = changes;
    if (search)
      this.deps.runSearch(search.jobs, (results) =>
        this.deps.guarded('threshold search result', () => {
          this.exitChanges(model, this.deps.exits.completeSearch(model, search.id, results));
          this.deps.planSoon();
        }),
      );
    const fmt = (ts: number[]) => ts.map((t) => (t > 1 ? 'off' : t.toFixed(3))).join(' ');
    if (change) {
      this.deps.log(
        `${model}: thresholds [${fmt(change.before)}] -> [${fmt(change.after)}] (${change.reason}; ${change.numSamples} samples, ` +
          `disagreement bound ${(100 * change.disagreementUpperBound).toFixed(2)} %, expected saving ${change.expectedSavingMs.toFixed(3)} ms)`,
      );
      this.deps.telemetry?.thresholds(change, this.deps.nowNs());
    }
    if (rampChange) {
      this.deps.log(
        `${model}: ramps [${rampChange.before.join(' ')}] -> [${rampChange.after.join(' ')}] (${rampChange.reason}); thresholds [${fmt(rampChange.thresholds)}]`,
      );
      const record = { model, reason: `ramps: ${rampChange.reason}`, before: rampChange.before, after: rampChange.after };
      this.deps.telemetry?.thresholds({ ...record, expectedSavingMs: 0, disagreementUpperBound: 0, numSamples: 0 }, this.deps.nowNs());
    }
  }
}
