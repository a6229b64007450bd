/**
 * Collects one incoming message body: hashes it (SHA-256, the blob's address) as pieces
 * arrive and keeps at most one chunk in memory. A body that outgrows one chunk is staged
 * in the store chunk by chunk while it arrives (BlobStore.stage), so a 25 MB message costs
 * no more memory than a 256 KB one. Every buffered byte is charged to the global budget.
 */
import { createHash, type Hash } from 'node:crypto';
import { CHUNK_SIZE } from '../store/sql/reads.js';
import type { BlobRef, BlobStore } from '../store/store.js';
import type { ByteBudget } from './byte-budget.js';

/** Staged chunks in flight per message before the session stops reading from its client. */
const MAX_IN_FLIGHT = 2;

export class MessageSink {
  private chunk: Buffer = Buffer.alloc(0);
  private filled = 0;
  private size = 0;
  private readonly hash: Hash = createHash('sha256');
  private upload: string | null = null;
  private seq = 0;
  private inFlight = 0;
  private failure: Error | null = null;
  private staged: Array<Promise<void>> = [];
  private waiters: Array<() => void> = [];
  private charged = 0;
  private done = false;

  constructor(
    private readonly blobs: BlobStore,
    private readonly budget: ByteBudget,
  ) {}

  get length(): number {
    return this.size;
  }

  write(piece: Buffer): void {
    this.hash.update(piece);
    this.size += piece.length;
    let offset = 0;
    while (offset < piece.length) {
      if (this.filled === this.chunk.length) this.newChunk();
      const n = piece.copy(this.chunk, this.filled, offset);
      this.filled += n;
      offset += n;
      if (this.filled === this.chunk.length && offset < piece.length) this.stageChunk();
    }
  }

  /** Resolves when the client may send more (few enough chunks are being staged). */
  async writable(): Promise<void> {
    while (this.inFlight >= MAX_IN_FLIGHT) await new Promise<void>((r) => this.waiters.push(r));
  }

  /** Ends the body: the last chunk is staged (or kept inline) and every staging write has committed. */
  async finish(): Promise<BlobRef> {
    this.done = true;
    const hash = this.hash.digest('hex');
    if (this.upload === null) {
      const data = Buffer.from(this.chunk.subarray(0, this.filled)); // exact size, its own memory
      this.releaseAll();
      return { hash, size: this.size, data };
    }
    if (this.filled > 0) this.stageChunk();
    await Promise.all(this.staged);
    if (this.failure) throw this.failure;
    return { hash, size: this.size, upload: this.upload };
  }

  /** Gives up on the body (refused, reset, connection lost): staged chunks are dropped. */
  abort(): void {
    if (this.done) return;
    this.done = true;
    this.releaseAll();
    const upload = this.upload;
    if (upload) void Promise.allSettled(this.staged).then(() => this.blobs.discard(upload).catch(() => undefined));
  }

  private newChunk(): void {
    // Its own ArrayBuffer (not the shared pool), so it can be moved to the writer thread.
    this.chunk = Buffer.allocUnsafeSlow(CHUNK_SIZE);
    this.filled = 0;
    this.budget.charge(CHUNK_SIZE);
    this.charged += CHUNK_SIZE;
  }

  private stageChunk(): void {
    this.upload ??= this.blobs.newUpload();
    const data = this.filled === this.chunk.length ? this.chunk : Buffer.from(this.chunk.subarray(0, this.filled));
    const charge = this.chunk.length;
    this.chunk = Buffer.alloc(0);
    this.filled = 0;
    this.inFlight++;
    const staged = this.blobs
      .stage(this.upload, this.seq++, data)
      .catch((err: unknown) => {
        this.failure ??= err instanceof Error ? err : new Error(String(err));
      })
      .finally(() => {
        this.inFlight--;
        this.budget.release(charge);
        this.charged -= charge;
        for (const w of this.waiters.splice(0)) w();
      });
    this.staged.push(staged);
  }

  private releaseAll(): void {
    // Chunks still being staged release their own charge when they settle.
    const held = this.chunk.length;
    this.chunk = Buffer.alloc(0);
    this.filled = 0;
    this.budget.release(Math.min(held, this.charged));
    this.charged -= Math.min(held, this.charged);
  }
}
