/**
 * What the controller can serve and how each model fares, as the HTTP front's model-repository
 * and statistics extensions show it: the packages, each model's state in the planner, and per
 * model the answers counted (OK, failed, answered early).
 */
import type { ModelEntry } from '../shared/model-manifest.js';
import type { RequestStatus } from '../shared/protocol.js';
import type { Scheduler } from './scheduler.js';

export interface ModelStats {
  success: number;
  failure: number;
  early: number;
  /** Arrival to answer, summed over the OK answers. */
  successNs: number;
}

export class ModelRepository {
  private readonly stats = new Map<string, ModelStats>();

  constructor(
    private readonly models: ReadonlyMap<string, ModelEntry>,
    private readonly core: Pick<Scheduler, 'isOutOfService' | 'modelState'>,
  ) {}

  entry(name: string): ModelEntry | undefined {
    return this.models.get(name);
  }

  names(): string[] {
    return [...this.models.keys()];
  }

  isReady(name: string): boolean {
    return !this.core.isOutOfService(name) && this.core.modelState(name) === 'ready';
  }

  index(): { name: string; version: string; state: string; reason: string }[] {
    return this.names().map((name) => {
      const out = this.core.isOutOfService(name);
      const state = out ? 'UNAVAILABLE' : { ready: 'READY', loading: 'LOADING', unavailable: 'UNAVAILABLE' }[this.core.modelState(name)];
      return { name, version: '1', state, reason: out ? 'unloaded' : '' };
    });
  }

  /** Counts one answer. */
  record(model: string, status: RequestStatus, early: boolean, latencyNs: number): void {
    const stats = this.statsOf(model);
    if (status === 'OK') {
      stats.success++;
      stats.successNs += latencyNs;
      if (early) stats.early++;
    } else stats.failure++;
  }

  statsFor(model: string): ModelStats {
    return { ...this.statsOf(model) };
  }

  private statsOf(model: string): ModelStats {
    let stats = this.stats.get(model);
    if (!stats) {
      stats = { success: 0, failure: 0, early: 0, successNs: 0 };
      this.stats.set(model, stats);
    }
    return stats;
  }
}
