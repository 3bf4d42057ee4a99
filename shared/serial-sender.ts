/**
 * A bounded, serialized writer for one zeromq socket.
 *
 * NOTE: zeromq.js allows only one pending `send()` per socket (a second rejects with EBUSY), so
 * every send on a socket goes through one of these. The queue in front of the socket is bounded
 * (`maxQueuedMessages`): when it is full, `send()` returns false at once and the caller decides
 * (answer the request with an error, declare the peer overloaded) instead of buffering without
 * limit. Send failures (EHOSTUNREACH: the peer is gone; EAGAIN: its queue is full) are reported to
 * `onSendError` with the frames that were not sent.
 */
export interface FrameWriter {
  send(frames: Buffer[]): Promise<void>;
}

export type SendErrorHandler = (err: Error & { code?: string }, frames: Buffer[]) => void;

export class SerialSender {
  private readonly queue: Buffer[][] = [];
  private draining = false;
  private closed = false;

  constructor(
    private readonly socket: FrameWriter,
    private readonly onSendError: SendErrorHandler,
    /** Messages waiting behind the one being sent. 10,000 × ~1 KB headers ≈ 10 MB at most. */
    private readonly maxQueuedMessages = 10_000,
  ) {}

  get numQueued(): number {
    return this.queue.length;
  }

  /** Queues a message; false when the queue is at its bound or the sender is closed. */
  send(frames: Buffer[]): boolean {
    if (this.closed || this.queue.length >= this.maxQueuedMessages) return false;
    this.queue.push(frames);
    if (!this.draining) void this.drain();
    return true;
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    while (this.queue.length > 0 && !this.closed) {
      const frames = this.queue.shift()!;
      try {
        await this.socket.send(frames);
      } catch (err) {
        if (!this.closed) this.onSendError(err as Error & { code?: string }, frames);
      }
    }
    this.draining = false;
  }
}
