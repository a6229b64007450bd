/**
 * Collects one incoming message: hashes it (SHA-256, the blob's address) and copies it
 * into a single growing buffer as pieces arrive, so a message is held in memory once.
 */
import { createHash, type Hash } from 'node:crypto';

const INITIAL_CAPACITY = 16 * 1024;

export class MessageSink {
  private buf: Buffer;
  private length = 0;
  private readonly hash: Hash = createHash('sha256');

  /** `sizeHint` (e.g. the SIZE= parameter) presizes the buffer, capped at `maxSize`. */
  constructor(prefix: Buffer, sizeHint: number, maxSize: number) {
    const initial = Math.min(Math.max(INITIAL_CAPACITY, sizeHint + prefix.length + 1024), maxSize + prefix.length);
    this.buf = Buffer.allocUnsafe(initial);
    this.write(prefix);
  }

  write(piece: Buffer): void {
    const need = this.length + piece.length;
    if (need > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
      this.buf.copy(grown, 0, 0, this.length);
      this.buf = grown;
    }
    piece.copy(this.buf, this.length);
    this.length = need;
    this.hash.update(piece);
  }

  finish(): { blob: Buffer; hash: string } {
    return { blob: this.buf.subarray(0, this.length), hash: this.hash.digest('hex') };
  }
}
