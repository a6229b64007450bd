/**
 * Main-thread side of a worker thread (SQLite's reader, writer and checkpointer; DKIM
 * signing; legacy password checks; scheduled backups): numbered requests, promises settled by the worker's answers. If the worker
 * dies, pending requests fail with the error `failure` makes, and the next request starts
 * a new worker.
 */
import { Worker } from 'node:worker_threads';

interface Pending {
  resolve: (response: Record<string, unknown>) => void;
  reject: (err: Error) => void;
}

export class WorkerClient {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly script: URL,
    private readonly workerData: unknown,
    private readonly failure: (why: string) => Error,
    /**
     * Whether the thread keeps the process alive: always (the store's threads), never
     * (helpers the process does not wait for), or only while a request is pending (threads
     * a command may start and must not be kept running by: password checks, a backup).
     */
    private readonly keepAlive: boolean | 'while-busy' = true,
  ) {}

  private spawn(): Worker {
    // The parent's flags minus those only valid for a main script (`node --input-type=module -e …`).
    const execArgv = process.execArgv.filter((a) => !a.startsWith('--input-type'));
    const worker = new Worker(this.script, { workerData: this.workerData, execArgv });
    if (this.keepAlive !== true) worker.unref();
    worker.on('message', (res: { id: number } & Record<string, unknown>) => {
      const p = this.pending.get(res.id);
      if (!p) return;
      this.pending.delete(res.id);
      if (this.keepAlive === 'while-busy' && this.pending.size === 0) worker.unref();
      p.resolve(res);
    });
    const fail = (why: string) => {
      if (this.worker === worker) this.worker = null;
      for (const p of this.pending.values()) p.reject(this.failure(why));
      this.pending.clear();
    };
    worker.on('error', (err) => fail(err.message));
    worker.on('exit', (code) => fail(`exit code ${code}`));
    return worker;
  }

  /** Requests sent and not yet answered. */
  get busy(): number {
    return this.pending.size;
  }

  /** Sends `request` (plus a fresh id); `transfer` lists ArrayBuffers to move instead of copy. */
  request(request: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<Record<string, unknown>> {
    this.worker ??= this.spawn();
    const id = this.nextId++;
    const worker = this.worker;
    if (this.keepAlive === 'while-busy') worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...request, id }, transfer);
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }
}
