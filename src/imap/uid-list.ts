/**
 * The uids of a selected mailbox in sequence order, compact (Uint32Array chunks) and
 * immutable: appending copies only the last chunk, removing copies only the chunks it
 * touches, and the rest is shared. Thousands of sessions on one mailbox (IDLE) so hold
 * one copy of its uids, not one each (see MailboxViews).
 */
const CHUNK = 1024;

export class UidList {
  private constructor(
    private readonly chunks: readonly Uint32Array[],
    /** Index of the first uid of each chunk. */
    private readonly starts: readonly number[],
    readonly length: number,
  ) {}

  static from(uids: readonly number[]): UidList {
    const chunks: Uint32Array[] = [];
    const starts: number[] = [];
    for (let i = 0; i < uids.length; i += CHUNK) {
      chunks.push(Uint32Array.from(uids.slice(i, i + CHUNK)));
      starts.push(i);
    }
    return new UidList(chunks, starts, uids.length);
  }

  /** The chunk holding index `i` (binary search over the starts). */
  private chunkOf(i: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= i) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** The uid at 0-based index `i` (sequence number i + 1). */
  at(i: number): number {
    const c = this.chunkOf(i);
    return this.chunks[c]![i - this.starts[c]!]!;
  }

  get last(): number {
    const c = this.chunks[this.chunks.length - 1];
    return c ? c[c.length - 1]! : 0;
  }

  /** Index of the first uid ≥ `uid` (length when none). */
  lowerBound(uid: number): number {
    let lo = 0;
    let hi = this.chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const c = this.chunks[mid]!;
      if (c[c.length - 1]! < uid) lo = mid + 1;
      else hi = mid;
    }
    if (lo === this.chunks.length) return this.length;
    const c = this.chunks[lo]!;
    let a = 0;
    let b = c.length;
    while (a < b) {
      const mid = (a + b) >> 1;
      if (c[mid]! < uid) a = mid + 1;
      else b = mid;
    }
    return this.starts[lo]! + a;
  }

  /** 0-based index of `uid`, or -1. */
  indexOf(uid: number): number {
    const i = this.lowerBound(uid);
    return i < this.length && this.at(i) === uid ? i : -1;
  }

  /** The uids at indexes [from, to). */
  slice(from: number, to: number): number[] {
    const out: number[] = [];
    const end = Math.min(to, this.length);
    if (from >= end) return out;
    for (let c = this.chunkOf(from); c < this.chunks.length && this.starts[c]! < end; c++) {
      const chunk = this.chunks[c]!;
      const base = this.starts[c]!;
      for (let j = Math.max(0, from - base); j < chunk.length && base + j < end; j++) out.push(chunk[j]!);
    }
    return out;
  }

  /** A list with `uids` (ascending, all above `last`) added at the end. */
  appended(uids: readonly number[]): UidList {
    if (uids.length === 0) return this;
    const chunks = [...this.chunks];
    const starts = [...this.starts];
    let pending = [...uids];
    const tail = chunks[chunks.length - 1];
    if (tail && tail.length < CHUNK) {
      const room = CHUNK - tail.length;
      const merged = new Uint32Array(tail.length + Math.min(room, pending.length));
      merged.set(tail);
      merged.set(pending.slice(0, room), tail.length);
      chunks[chunks.length - 1] = merged;
      pending = pending.slice(room);
    }
    let start = this.length + uids.length - pending.length;
    for (let i = 0; i < pending.length; i += CHUNK) {
      chunks.push(Uint32Array.from(pending.slice(i, i + CHUNK)));
      starts.push(start);
      start += Math.min(CHUNK, pending.length - i);
    }
    return new UidList(chunks, starts, this.length + uids.length);
  }

  /** A list without `gone`, and the 0-based indexes the removed uids had (ascending). */
  without(gone: ReadonlySet<number>): { list: UidList; removed: number[] } {
    const removed: number[] = [];
    const chunks: Uint32Array[] = [];
    const starts: number[] = [];
    let length = 0;
    for (const [c, chunk] of this.chunks.entries()) {
      let kept: Uint32Array = chunk;
      if (chunk.some((u) => gone.has(u))) {
        kept = chunk.filter((u, j) => {
          if (!gone.has(u)) return true;
          removed.push(this.starts[c]! + j);
          return false;
        });
      }
      if (kept.length === 0) continue;
      chunks.push(kept);
      starts.push(length);
      length += kept.length;
    }
    return { list: removed.length === 0 ? this : new UidList(chunks, starts, length), removed };
  }
}
