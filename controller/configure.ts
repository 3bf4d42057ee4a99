/**
 * What a `configure` message may change and how it is applied: who may send one (the admin token
 * when the controller has one; nobody when keys are on without one), which values are valid, and
 * the changes to the planner (batching policy) and the early-exit control (exit mode, threshold
 * tuning, ramp adjustment, fixed thresholds). Pure: the adapter answers, logs and records.
 */
import { ErrorCode } from '../shared/error-codes.js';
import type { ConfigureMsg } from '../shared/protocol.js';
import { sameSecret } from '../shared/secret-compare.js';
import type { ExitControl } from './exit-control.js';
import type { ThresholdChange } from './exit-monitor.js';
import type { SchedulerConfig } from './scheduler-config.js';

/** Longest batch timeout a configure accepts (ms): a minute; TF-Serving's are microseconds to milliseconds. */
export const MAX_BATCH_TIMEOUT_MS = 60_000;

export interface ConfigureAuth {
  /** Keys are on and no admin token was given: nobody may reconfigure. */
  adminLocked?: boolean;
  adminToken?: string;
}

export interface ConfigureRefusal {
  code: number;
  message: string;
  /** Refusals by authority are also worth a log line (rate-limited by the adapter). */
  logLine?: string;
}

/** Why a configure is refused (its sender, or a value), or undefined when it may be applied. */
export function configureRefusal(msg: ConfigureMsg, auth: ConfigureAuth): ConfigureRefusal | undefined {
  if (auth.adminLocked && auth.adminToken === undefined) {
    return {
      code: ErrorCode.ADMIN_TOKEN_REQUIRED,
      message:
        'this controller runs with --keys and no admin token, so configure is refused: restart it with --admin-token (or ESCAPEMENT_ADMIN_TOKEN, or --admin-token-file)',
      logLine: 'refused a configure: keys are on and no admin token is set',
    };
  }
  if (auth.adminToken !== undefined && !sameSecret(msg.adminToken, auth.adminToken)) {
    return {
      code: ErrorCode.ADMIN_TOKEN_REQUIRED,
      message: "configure needs the controller's admin token (give it with --admin-token, or ESCAPEMENT_ADMIN_TOKEN)",
      logLine: 'refused a configure without the admin token',
    };
  }
  const invalid = (message: string): ConfigureRefusal => ({ code: ErrorCode.INVALID_INPUT, message });
  // policy, exitMode and thresholds are one of their names already: the message's schema says so (protocol.ts).
  if (msg.batchTimeoutMs !== undefined && !(msg.batchTimeoutMs >= 0 && msg.batchTimeoutMs <= MAX_BATCH_TIMEOUT_MS))
    return invalid(`batchTimeoutMs must be in [0, ${MAX_BATCH_TIMEOUT_MS}]`);
  if (msg.maxEnqueuedBatches !== undefined && !(Number.isInteger(msg.maxEnqueuedBatches) && msg.maxEnqueuedBatches >= 0))
    return invalid('maxEnqueuedBatches must be an integer ≥ 0');
  if (msg.tuningBudgetShare !== undefined && !(msg.tuningBudgetShare > 0 && msg.tuningBudgetShare <= 1)) return invalid('tuningBudgetShare must be in (0, 1]');
  return undefined;
}

/** What applying a configure needs of the planner. */
export interface ConfigurablePlanner {
  readonly config: Pick<SchedulerConfig, 'policy' | 'batchTimeoutNs' | 'maxEnqueuedBatches'>;
  setPolicy(policy: SchedulerConfig['policy'], batchTimeoutNs: number, maxEnqueuedBatches: number): void;
}

/**
 * Applies a configure that `configureRefusal` let through, in order: batching policy, exit mode,
 * threshold tuning and its budget share (every early-exit model starts over from its package), ramp adjustment,
 * then fixed thresholds. Returns the fixed-threshold change to record, or why those were refused.
 */
export function applyConfigure(msg: ConfigureMsg, planner: ConfigurablePlanner, exits: ExitControl): { fixed?: ThresholdChange; refusal?: string } {
  if (msg.policy !== undefined || msg.batchTimeoutMs !== undefined || msg.maxEnqueuedBatches !== undefined) {
    planner.setPolicy(
      msg.policy ?? planner.config.policy,
      msg.batchTimeoutMs !== undefined ? msg.batchTimeoutMs * 1e6 : planner.config.batchTimeoutNs,
      msg.maxEnqueuedBatches ?? planner.config.maxEnqueuedBatches,
    );
  }
  if (msg.exitMode !== undefined || msg.thresholds !== undefined || msg.tuningBudgetShare !== undefined) {
    exits.reset({
      ...(msg.exitMode !== undefined ? { exitMode: msg.exitMode } : {}),
      ...(msg.thresholds !== undefined ? { thresholds: msg.thresholds } : {}),
      ...(msg.tuningBudgetShare !== undefined ? { budgetShare: msg.tuningBudgetShare } : {}),
    });
  }
  if (msg.adjustRamps !== undefined) exits.adjustRamps = msg.adjustRamps;
  if (msg.fixedThresholds === undefined) return {};
  const change = exits.fix(msg.fixedThresholds.model, msg.fixedThresholds.thresholds);
  return typeof change === 'string' ? { refusal: change } : { fixed: change };
}

/** The log line of an applied configure: the batching policy in force, and what else the message changed. */
export function describeConfiguration(msg: ConfigureMsg, config: Pick<SchedulerConfig, 'policy' | 'batchTimeoutNs' | 'maxEnqueuedBatches'>): string {
  const fixed = msg.fixedThresholds;
  return [
    `policy ${config.policy}`,
    `batch timeout ${(config.batchTimeoutNs / 1e6).toFixed(1)} ms`,
    `fifo queue bound ${config.maxEnqueuedBatches} batches`,
    ...(msg.exitMode ? [`exit mode ${msg.exitMode}`] : []),
    ...(msg.thresholds ? [`thresholds ${msg.thresholds}`] : []),
    ...(msg.tuningBudgetShare !== undefined ? [`tuner spends ${(100 * msg.tuningBudgetShare).toFixed(0)} % of the accuracy budget`] : []),
    ...(msg.adjustRamps !== undefined ? [`ramp adjustment ${msg.adjustRamps ? 'on' : 'off'}`] : []),
    ...(fixed ? [`${fixed.model} thresholds fixed at [${fixed.thresholds.map((t) => (t > 1 ? 'off' : t.toFixed(3))).join(' ')}]`] : []),
  ].join(', ');
}
