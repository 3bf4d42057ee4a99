/**
 * Every action the planner sends, from its id to its result or its expiry: the `[earliest,
 * latest]` start window it carries, its place on the worker's timeline and in the worker's
 * in-flight table, and the time after which its result is overdue (the worker is assumed to have
 * dropped it: a LOAD is forgotten but its late result still adopted, an INFER's requests go back
 * to their queues, where expiry answers the hopeless).
 */
import type { Action, LoadAction } from '../shared/protocol.js';
import type { WorkerState } from './cluster-state.js';
import type { QueuedRequest } from './request-queue.js';
import type { SchedulerConfig } from './scheduler-config.js';

/** Abandoned LOADs remembered per worker (their late results are adopted); older ones are forgotten. */
const MAX_ABANDONED_LOADS = 64;

export interface ActionWindowFields {
  actionId: number;
  earliestNs: number;
  latestNs: number;
  expectedDurationNs: number;
  expectedStartNs: number;
}

/** What expiring an overdue action does beyond the book: the planner's side. */
export interface OverdueHandling {
  forgetInstance(worker: WorkerState, model: string): void;
  requeue(request: QueuedRequest): void;
}

export class ActionBook {
  private nextActionId = 1;
  /** No in-flight action can be overdue before this time (a lower bound; see expireOverdue). */
  private nextOverdueCheckNs = Number.POSITIVE_INFINITY;

  constructor(private readonly config: Pick<SchedulerConfig, 'timeline' | 'overdueGraceNs'>) {}

  /** A new action's id and start window: from now, until a start `latestDeltaNs` after the planned one (or the timeline's future horizon). */
  window(startNs: number, durationNs: number, latestDeltaNs: number, nowNs: number): ActionWindowFields {
    return {
      actionId: this.nextActionId++,
      earliestNs: nowNs,
      latestNs: Math.max(nowNs + this.config.timeline.futureNs + latestDeltaNs, startNs + latestDeltaNs),
      expectedDurationNs: Math.round(durationNs),
      expectedStartNs: Math.round(startNs),
    };
  }

  /** Puts an action on its worker's timeline and in flight. */
  commit(worker: WorkerState, action: Action, requests: QueuedRequest[], nowNs: number): void {
    worker.timeline.add(action.actionId, action.expectedDurationNs, nowNs);
    this.nextOverdueCheckNs = Math.min(this.nextOverdueCheckNs, this.overdueAtNs(action));
    worker.inflight.set(action.actionId, { action, workerId: worker.id, requests });
  }

  /** The earliest time an action in flight may become overdue (the planner wakes then). */
  get nextCheckNs(): number {
    return this.nextOverdueCheckNs;
  }

  private overdueAtNs(action: Action): number {
    return action.latestNs + action.expectedDurationNs + this.config.overdueGraceNs;
  }

  /** Gives up on every action whose result is overdue at `nowNs`. */
  expireOverdue(workers: Iterable<WorkerState>, nowNs: number, handling: OverdueHandling): void {
    if (nowNs < this.nextOverdueCheckNs) return;
    this.nextOverdueCheckNs = Number.POSITIVE_INFINITY;
    for (const worker of workers) {
      for (const [actionId, inflight] of worker.inflight) {
        const a = inflight.action;
        if (nowNs <= this.overdueAtNs(a)) {
          this.nextOverdueCheckNs = Math.min(this.nextOverdueCheckNs, this.overdueAtNs(a));
          continue;
        }
        worker.inflight.delete(actionId);
        worker.timeline.complete(actionId, nowNs);
        if (a.type === 'load') {
          handling.forgetInstance(worker, a.modelName);
          worker.abandonedLoads.set(actionId, a as LoadAction);
          // NOTE: bounded: only the most recent abandoned LOADs can still report
          if (worker.abandonedLoads.size > MAX_ABANDONED_LOADS) worker.abandonedLoads.delete(worker.abandonedLoads.keys().next().value!);
        }
        for (const r of inflight.requests) handling.requeue(r);
      }
    }
  }
}
