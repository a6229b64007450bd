/**
 * Group commit: deliveries that arrive while a commit is being prepared or written
 * share one transaction, so throughput is not one fsync per message.
 *
 * Items submitted in the same event-loop turn are flushed together on the next
 * `setImmediate`; at most `concurrency` batches are in flight. If a batch of several
 * items fails, each item is retried alone so one bad item cannot fail its neighbours —
 * unless the store itself is unavailable (StoreUnavailableError): then every item fails
 * at once, instead of waiting out one connection timeout per item.
 */
import { StoreUnavailableError } from '../errors.js';

export type BatchWriter<T, R> = (items: T[]) => Promise<R[]>;

interface Pending<T, R> {
  item: T;
  resolve: (value: R) => void;
  reject: (reason: unknown) => void;
}

export class GroupCommit<T, R> {
  private queue: Array<Pending<T, R>> = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly writeBatch: BatchWriter<T, R>,
    private readonly options: { maxBatch: number; concurrency: number },
  ) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once everything submitted so far has been written or failed. */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.inFlight > 0) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.options.concurrency || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.inFlight < this.options.concurrency && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      this.inFlight++;
      void this.write(batch).finally(() => {
        this.inFlight--;
        this.schedule();
      });
    }
  }

  private async write(batch: Array<Pending<T, R>>): Promise<void> {
    try {
      const results = await this.writeBatch(batch.map((p) => p.item));
      batch.forEach((p, i) => p.resolve(results[i] as R));
    } catch (err) {
      if (batch.length === 1 || err instanceof StoreUnavailableError) {
        for (const p of batch) p.reject(err);
        return;
      }
      let unavailable: StoreUnavailableError | undefined;
      for (const p of batch) {
        if (unavailable) {
          p.reject(unavailable);
          continue;
        }
        try {
          const [result] = await this.writeBatch([p.item]);
          p.resolve(result as R);
        } catch (single) {
          if (single instanceof StoreUnavailableError) unavailable = single;
          p.reject(single);
        }
      }
    }
  }
}
