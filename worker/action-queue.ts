/**
 * The worker's time-release queue: actions ordered by `earliestNs` (ties in arrival order), so
 * "in order" means in order of earliest start, as in Clockwork's executors. The worker dequeues
 * the head only once its window has opened.
 */
import type { Action } from '../shared/protocol.js';
import type { Tensor } from '../shared/tensor.js';

export interface QueuedAction {
  action: Action;
  tensors: Tensor[];
  /** Local monotonic time the action arrived. */
  receivedLocalNs: number;
  seq: number;
}

export class ActionQueue {
  private readonly items: QueuedAction[] = [];
  private nextSeq = 0;

  get length(): number {
    return this.items.length;
  }

  push(action: Action, tensors: Tensor[], receivedLocalNs: number): void {
    const item: QueuedAction = { action, tensors, receivedLocalNs, seq: this.nextSeq++ };
    let i = this.items.length;
    while (i > 0 && this.items[i - 1]!.action.earliestNs > action.earliestNs) i--;
    this.items.splice(i, 0, item);
  }

  peek(): QueuedAction | undefined {
    return this.items[0];
  }

  shift(): QueuedAction | undefined {
    return this.items.shift();
  }

  drain(): QueuedAction[] {
    return this.items.splice(0, this.items.length);
  }
}
