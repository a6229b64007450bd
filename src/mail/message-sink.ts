/**
 * Collects one incoming message body: hashes it (SHA-256, the blob's address) as pieces
 * arrive and keeps at most one chunk in memory. A body that outgrows one chunk is staged
 * in the store chunk by chunk while it arrives (BlobStore.stage), so a 25 MB message costs
 * no more memory than a 128 KB one. Every buffered byte is charged to the global budget.
 * Each piece also goes through the MIME parser (mail/mime), so the body's structure and
 * search text are ready, with the BlobRef, when it ends: no message is parsed again later.
 */
import { createHash, type Hash } from 'node:crypto';
import { CHUNK_SIZE } from '../store/sql/reads.js';
import { handOver, type BlobRef, type BlobStore } from '../store/store.js';
import type { ByteBudget } from './byte-budget.js';
import { MimeParser, storedForm, type MessageStructure } from './mime/index.js';

/** Staged chunks in flight per message before the session stops reading from its client. */
const MAX_IN_FLIGHT = 1;
/** A body's first buffer; it doubles up to CHUNK_SIZE, so a small message never costs a whole chunk. */
const FIRST_CAPACITY = 16 * 1024;

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
  /** Null once parsing failed (a parser bug must never cost a message: the store's backfill parses it later). */
  private parser: MimeParser | null = new MimeParser();
  private parsed: MessageStructure | null = null;

  constructor(
    private readonly blobs: BlobStore,
    private readonly budget: ByteBudget,
  ) {}

  get length(): number {
    return this.size;
  }

  /** The body's parsed structure, once finish() has run (null if parsing failed). */
  get structure(): MessageStructure | null {
    return this.parsed;
  }

  write(piece: Buffer): void {
    this.hash.update(piece);
    this.size += piece.length;
    this.parse((p) => p.write(piece));
    let offset = 0;
    while (offset < piece.length) {
      if (this.filled === this.chunk.length) {
        if (this.chunk.length === CHUNK_SIZE) this.stageChunk(); // full, and more is coming
        this.grow();
      }
      const n = piece.copy(this.chunk, this.filled, offset);
      this.filled += n;
      offset += n;
    }
  }

  /** True while enough chunks are being staged that the client should wait. */
  get full(): boolean {
    return this.inFlight >= MAX_IN_FLIGHT;
  }

  /** Resolves when the client may send more (few enough chunks are being staged). */
  async writable(): Promise<void> {
    while (this.full) await new Promise<void>((r) => this.waiters.push(r));
  }

  /** Ends the body: the last chunk is staged (or kept inline) and every staging write has committed. */
  async finish(): Promise<BlobRef> {
    this.done = true;
    const hash = this.hash.digest('hex');
    this.parse((p) => (this.parsed = p.end()));
    const structure = this.parsed ? storedForm(this.parsed) : undefined;
    if (this.upload === null) {
      // Exact size and its own memory, so it can be moved to the writer thread without a copy.
      const data = handOver(Buffer.allocUnsafeSlow(this.filled));
      this.chunk.copy(data, 0, 0, this.filled);
      this.releaseAll();
      return { hash, size: this.size, data, structure };
    }
    if (this.filled > 0) this.stageChunk();
    await Promise.all(this.staged);
    if (this.failure) throw this.failure;
    return { hash, size: this.size, upload: this.upload, structure };
  }

  /** Gives up on the body (refused, reset, connection lost): staged chunks are dropped. */
  abort(): void {
    if (this.done) return;
    this.done = true;
    this.parser = null;
    this.releaseAll();
    const upload = this.upload;
    if (upload) void Promise.allSettled(this.staged).then(() => this.blobs.discard(upload).catch(() => undefined));
  }

  private parse(step: (parser: MimeParser) => void): void {
    if (!this.parser) return;
    try {
      step(this.parser);
    } catch {
      this.parser = null;
      this.parsed = null;
    }
  }

  /** A bigger buffer for the current chunk (doubling up to CHUNK_SIZE), or a new one after staging. */
  private grow(): void {
    const capacity = this.upload !== null && this.filled === 0 ? CHUNK_SIZE : Math.min(CHUNK_SIZE, Math.max(FIRST_CAPACITY, this.chunk.length * 2));
    // Its own ArrayBuffer (not the shared pool), so it can be moved to the writer thread.
    const next = Buffer.allocUnsafeSlow(capacity);
    this.chunk.copy(next, 0, 0, this.filled);
    this.budget.charge(capacity - this.chunk.length);
    this.charged += capacity - this.chunk.length;
    this.chunk = next;
  }

  private stageChunk(): void {
    this.upload ??= this.blobs.newUpload();
    const data = handOver(this.filled === this.chunk.length ? this.chunk : Buffer.from(this.chunk.subarray(0, this.filled)));
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
