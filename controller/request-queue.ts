/**
 * One model's waiting requests, ordered by deadline (earliest first; ties by arrival), so the
 * head is always the most urgent request and any prefix is the most urgent batch.
 */
export interface QueuedRequest {
  /** Controller-assigned id (unique per controller run). */
  id: number;
  model: string;
  arrivalNs: number;
  /** The client's deadline on the controller's clock. */
  deadlineNs: number;
  /** Text models: the sequence bucket the request's tokens are padded to (0 or absent: fixed shape). */
  seqLength?: number;
  /** Set at admission: the completion it predicted, and how many full batches were ahead. */
  admission?: AdmissionPrediction;
}

export interface AdmissionPrediction {
  predictedCompleteNs: number;
  fullBatchesAhead: number;
  /** Queued requests ahead of it (in deadline order) at its arrival. */
  rowsAhead: number;
  /** Its outcome has been folded into the learned margin. */
  settled: boolean;
}

export class RequestQueue {
  private readonly items: QueuedRequest[] = [];

  get length(): number {
    return this.items.length;
  }

  peek(): QueuedRequest | undefined {
    return this.items[0];
  }

  at(index: number): QueuedRequest | undefined {
    return this.items[index];
  }

  /** Inserts in deadline order; returns how many queued requests are ahead of it. */
  insert(request: QueuedRequest): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.items[mid]!.deadlineNs <= request.deadlineNs) lo = mid + 1;
      else hi = mid;
    }
    this.items.splice(lo, 0, request);
    return lo;
  }

  /** Number of queued requests whose deadline is at or before `deadlineNs`. */
  countAhead(deadlineNs: number): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.items[mid]!.deadlineNs <= deadlineNs) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  shift(): QueuedRequest | undefined {
    return this.items.shift();
  }

  take(count: number, from = 0): QueuedRequest[] {
    return this.items.splice(from, count);
  }

  /** Index of the first request whose deadline is at or after `deadlineNs`. */
  firstWithDeadlineAtLeast(deadlineNs: number): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.items[mid]!.deadlineNs < deadlineNs) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The longest sequence bucket among `count` requests from `from` (0 for fixed-shape models). */
  maxSeqLength(from: number, count: number): number {
    let longest = 0;
    const end = Math.min(this.items.length, from + count);
    for (let i = from; i < end; i++) longest = Math.max(longest, this.items[i]!.seqLength ?? 0);
    return longest;
  }

  drain(): QueuedRequest[] {
    return this.items.splice(0, this.items.length);
  }
}
