/**
 * The last lines of a fuzz conversation for failure reports: consecutive writes in one
 * direction are merged (a byte-by-byte sender shows as one line), long ones shortened.
 */
import { showBytes } from './show-bytes.js';

const KEEP_HEAD = 400;
const KEEP_TAIL = 120;

interface Entry {
  who: 'C' | 'S' | '*';
  head: Buffer;
  tail: Buffer;
  length: number;
  text?: string;
}

export class Transcript {
  private entries: Entry[] = [];

  constructor(private readonly maxEntries = 60) {}

  private push(entry: Entry): void {
    this.entries.push(entry);
    if (this.entries.length > this.maxEntries) this.entries.shift();
  }

  /** Bytes sent by the client (C) or the server (S). */
  bytes(who: 'C' | 'S', bytes: Buffer): void {
    const last = this.entries[this.entries.length - 1];
    if (!last || last.who !== who) {
      this.push({ who, head: Buffer.from(bytes.subarray(0, KEEP_HEAD)), tail: Buffer.from(bytes.subarray(-KEEP_TAIL)), length: bytes.length });
      return;
    }
    if (last.head.length < KEEP_HEAD) last.head = Buffer.concat([last.head, bytes.subarray(0, KEEP_HEAD - last.head.length)]);
    last.tail = Buffer.concat([last.tail, bytes]).subarray(-KEEP_TAIL);
    last.length += bytes.length;
  }

  /** An event that is not data (TLS handshake, close). */
  event(text: string): void {
    this.push({ who: '*', head: Buffer.alloc(0), tail: Buffer.alloc(0), length: 0, text });
  }

  lines(): string[] {
    return this.entries.map((e) => {
      if (e.who === '*') return `* ${e.text}`;
      if (e.length <= KEEP_HEAD) return `${e.who}: ${showBytes(e.head, KEEP_HEAD)}`;
      const tailShown = e.tail.subarray(Math.max(0, e.tail.length - (e.length - e.head.length)));
      return `${e.who}: ${showBytes(e.head, KEEP_HEAD)} … ${e.length} bytes in all … ${showBytes(tailShown, KEEP_TAIL)}`;
    });
  }
}
