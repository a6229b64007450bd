/**
 * Group commit: write operations that arrive while a commit is being prepared or written
 * share one transaction, so throughput is not one fsync per message.
 *
 * Items submitted in the same event-loop turn are flushed together on the next
 * `setImmediate` (items submitted as one group are never split across batches); at most `concurrency` batches are in flight. With `overlapAfterMs`, a
 * further ordinary batch starts only once the newest ordinary one in flight has been
 * running that long: while commits are quick, waiting items gather into one larger batch
 * (concurrent batches into one mailbox would only queue on its lock), and a stuck commit
 * still lets the next batch start on another connection. Bulk batches take no locks and
 * never wait for that. Bulk items (chunks of
 * large bodies being staged) wait while ordinary items are pending and travel in small
 * batches of their own, so a one-line message never queues behind megabytes of staging.
 * A batch that fails as a whole (the store is unavailable) fails every item in it; one
 * operation's own error is its own result (see sql/batch.ts).
 */
export type BatchWriter<T, R> = (items: T[], bulk: boolean) => Promise<R[]>;

interface Pending<T, R> {
  item: T;
  /** Items of one group are never split across batches (they commit in one transaction). */
  group?: number;
  resolve: (value: R) => void;
  reject: (reason: unknown) => void;
}

export interface GroupCommitOptions {
  maxBatch: number;
  /** Bulk items per batch. */
  maxBulkBatch: number;
  concurrency: number;
  /** Start a further ordinary batch only when the newest ordinary one in flight has run this long (default 0: at once). */
  overlapAfterMs?: number;
}

export class GroupCommit<T, R> {
  private readonly queue: Array<Pending<T, R>> = [];
  private readonly bulkQueue: Array<Pending<T, R>> = [];
  private inFlight = 0;
  private scheduled = false;
  private ordinaryInFlight = 0;
  /** When the newest ordinary batch in flight started (performance.now()). */
  private newestStart = 0;
  private overlapTimer: NodeJS.Timeout | null = null;
  private idle: Array<() => void> = [];

  constructor(
    private readonly writeBatch: BatchWriter<T, R>,
    private readonly options: GroupCommitOptions,
  ) {}

  submit(item: T, bulk = false, group?: number): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      (bulk ? this.bulkQueue : this.queue).push({ item, resolve, reject, group: bulk ? undefined : group });
      this.schedule();
    });
  }

  /** Resolves once everything submitted so far has been written or failed. */
  drain(): Promise<void> {
    if (this.pending() === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private pending(): number {
    return this.queue.length + this.bulkQueue.length + this.inFlight;
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.options.concurrency || this.queue.length + this.bulkQueue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.inFlight < this.options.concurrency && this.queue.length + this.bulkQueue.length > 0) {
      const bulk = this.queue.length === 0;
      if (!bulk && this.ordinaryInFlight > 0 && this.mustWaitToOverlap()) break;
      const batch = bulk ? this.bulkQueue.splice(0, this.options.maxBulkBatch) : this.queue.splice(0, this.ordinaryBatchSize());
      this.inFlight++;
      if (!bulk) {
        this.ordinaryInFlight++;
        this.newestStart = performance.now();
      }
      void this.write(batch, bulk).finally(() => {
        this.inFlight--;
        if (!bulk) this.ordinaryInFlight--;
        if (this.pending() === 0) for (const done of this.idle.splice(0)) done();
        this.schedule();
      });
    }
  }

  /** maxBatch items, or more so that the last item's group is not split. */
  private ordinaryBatchSize(): number {
    let n = Math.min(this.options.maxBatch, this.queue.length);
    while (n < this.queue.length && this.queue[n]!.group !== undefined && this.queue[n]!.group === this.queue[n - 1]!.group) n++;
    return n;
  }

  /** True when another batch may not start yet; then a timer flushes once it may. */
  private mustWaitToOverlap(): boolean {
    const wait = this.newestStart + (this.options.overlapAfterMs ?? 0) - performance.now();
    if (wait <= 0) return false;
    this.overlapTimer ??= setTimeout(() => {
      this.overlapTimer = null;
      this.flush();
    }, Math.ceil(wait));
    return true;
  }

  private async write(batch: Array<Pending<T, R>>, bulk: boolean): Promise<void> {
    try {
      const results = await this.writeBatch(
        batch.map((p) => p.item),
        bulk,
      );
      batch.forEach((p, i) => p.resolve(results[i] as R));
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }
}
