/**
 * How a controller is started: where it listens, what it serves, how it plans and supervises,
 * who may do what (keys, admin token), and its clock, timers and log (injected in tests).
 */
import type { AuthorizedKeys, KeyPair } from '../shared/curve-keys.js';
import type { ModelEntry } from '../shared/model-manifest.js';
import type { ExitMode, RequestStatus } from '../shared/protocol.js';
import type { LoopTimers } from './planning-loop.js';
import type { ActionRecord } from './result-folding.js';
import type { SchedulerConfig } from './scheduler-config.js';

export interface ControllerOptions {
  host: string;
  /** Port for workers; 0 picks a free one (reported by `start()`). */
  workerPort: number;
  /** Port for clients; 0 picks a free one. */
  clientPort: number;
  /** Bind these ZeroMQ endpoints instead of `tcp://host:port` (`inproc://...` for in-process tests). */
  endpoints?: { workers: string; clients: string };
  models: Map<string, ModelEntry>;
  scheduler: Partial<SchedulerConfig>;
  /** Heartbeat period asked of workers. Default 200 ms. */
  heartbeatIntervalMs: number;
  /** A worker silent this long is declared dead. Default 1000 ms (5 missed heartbeats). */
  heartbeatTimeoutMs: number;
  /** Models to keep loaded on every worker. */
  preloadModels: string[];
  /** Where to write requests.csv and actions.csv; none when undefined. */
  logDir?: string;
  /**
   * How early-exit packages run: `off` (whole model), `release` (Apparate: answer at the ramp,
   * the batch runs on) or `compact` (exited requests leave the batch). Default off.
   */
  exitMode: ExitMode | 'off';
  /** Batches of exactly as many rows as requests (default true); see `plannedBatchSizes`. */
  exactBatches?: boolean;
  /** Most pending requests per client (ZeroMQ peer or HTTP address). Default 25,000. */
  maxPendingPerClient?: number;
  /** Let the ramp adjuster activate and deactivate ramps at run time (the CLI's default: on; see monitorExits). */
  adjustRamps: boolean;
  /** `static`: keep the packages' validation thresholds, never re-tune (a baseline). Default online. */
  thresholds?: 'online' | 'static';
  /** The share of each package's accuracy budget the online tuner may spend (ExitMonitorOptions.budgetShare; default 1). */
  tuningBudgetShare?: number;
  /** When set, `configure` needs this token (clients send it as `adminToken`). */
  adminToken?: string;
  /**
   * Refuse `configure` altogether (no admin token to check): a controller with `--keys` but no
   * `--admin-token` is secured, and any authorized client could otherwise reconfigure it.
   */
  adminLocked?: boolean;
  /**
   * CURVE: the controller's key pair and the public keys allowed to connect. Workers must be in
   * `authorizedWorkers`; clients in `authorizedClients` (when absent, the client port is plain).
   */
  curve?: { keys: KeyPair; authorizedWorkers: AuthorizedKeys; authorizedClients?: AuthorizedKeys };
  /** Where answers and action results are counted for /metrics. */
  metrics?: {
    observeAnswer(model: string, status: RequestStatus, code: number, latencyNs: number, exitRamp: number | undefined): void;
    observeAction(record: ActionRecord): void;
    observeQueue(model: string, queueNs: number): void;
  };
  /** The controller's clock (default: the process's monotonic clock); every time on the wire is on it. */
  nowNs?: () => number;
  /** Timers for planning and supervision (default: Node's). */
  timers?: LoopTimers;
  log: (line: string) => void;
}
