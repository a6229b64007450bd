/**
 * Main-thread side of the writer worker: sends a batch, awaits its commit. If the worker
 * dies, pending batches fail with StoreUnavailableError and the next batch starts a new one.
 */
import { Worker } from 'node:worker_threads';
import { NotFoundError, StoreUnavailableError } from '../../errors.js';
import type { DeliveredEntry, NewDelivery } from '../store.js';
import { TRANSIENT_SQLITE_CODES } from './connection.js';
import type { WriterRequest, WriterResponse } from './writer-worker.js';

export class WriterClient {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: DeliveredEntry[][]) => void; reject: (e: Error) => void }>();

  constructor(private readonly file: string) {}

  private spawn(): Worker {
    const worker = new Worker(new URL('./writer-worker.js', import.meta.url), { workerData: { file: this.file } });
    worker.on('message', (res: WriterResponse) => {
      const p = this.pending.get(res.id);
      if (!p) return;
      this.pending.delete(res.id);
      if (res.ok) return p.resolve(res.results);
      if (res.code === 'TERN_NO_ACCOUNT') return p.reject(new NotFoundError(res.message));
      if (res.code && TRANSIENT_SQLITE_CODES.test(res.code)) return p.reject(new StoreUnavailableError(`store cannot commit: ${res.message}`));
      p.reject(Object.assign(new Error(res.message), { code: res.code }));
    });
    const fail = (why: string) => {
      if (this.worker === worker) this.worker = null;
      for (const p of this.pending.values()) p.reject(new StoreUnavailableError(`SQLite writer stopped: ${why}`));
      this.pending.clear();
    };
    worker.on('error', (err) => fail(err.message));
    worker.on('exit', (code) => fail(`exit code ${code}`));
    return worker;
  }

  write(batch: NewDelivery[]): Promise<DeliveredEntry[][]> {
    this.worker ??= this.spawn();
    const id = this.nextId++;
    const worker = this.worker;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // Copy each blob into an exact-size ArrayBuffer and transfer it: cloning the Buffer
      // itself would copy its whole backing store (the sink's spare capacity, or a pool).
      const request: WriterRequest = { id, batch: batch.map((d) => ({ ...d, blob: new Uint8Array(d.blob) })) };
      worker.postMessage(request, request.batch.map((d) => d.blob.buffer as ArrayBuffer));
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }
}
