/**
 * The site archive: the one file format of `tern backup`, `tern export` and the snapshots
 * taken before an upgrade. Backend-independent, streamed both ways (a 10 GB site never
 * sits in memory), and checked before anything it holds is trusted:
 *
 *   "TERNSITE" u8 version          magic, 9 bytes
 *   gzip( frames )                 the site, table by table
 *   manifest JSON                  kind, schema version, per-table row counts and digests,
 *   u32 manifest length            sizes, SHA-256 of the gzip bytes
 *   "TERNEND1"                     so a truncated file is told at once
 *
 * A frame is u8 type, u32 length, payload: 'T' a table starts (JSON {name, columns}),
 * 'R' a row (values, see encodeValues), 'F' a file from the data dir (JSON {path, mode}
 * then the bytes; TLS certificates, so a restored site keeps them).
 */
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { once } from 'node:events';
import { createGunzip, createGzip, type Gzip } from 'node:zlib';
import type { Writable } from 'node:stream';
import { UserError } from '../../errors.js';

const MAGIC = Buffer.from('TERNSITE\x01', 'latin1');
const END = Buffer.from('TERNEND1', 'latin1');
/** What this Tern writes; a reader refuses a newer one. */
export const ARCHIVE_FORMAT = 1;
/** Frames larger than this are not from Tern (the largest is one staged chunk or inline body). */
const MAX_FRAME = 256 * 1024 * 1024;
const MAX_MANIFEST = 16 * 1024 * 1024;
/** Bytes of frames handed to gzip at a time. */
const WRITE_BATCH = 256 * 1024;

export type ArchiveKind = 'backup' | 'export' | 'snapshot';
export type Value = null | number | string | Buffer;

export interface TableSummary {
  rows: number;
  /** Sum of the SHA-256 of every row (canonical form, see rowDigest) modulo 2^256, hex: the same site gives the same digest whatever the backend or row order. */
  digest: string;
}

export interface Manifest {
  format: number;
  kind: ArchiveKind;
  /** Schema version of the site the archive holds. */
  schema: number;
  createdAt: string;
  /** The backend it was taken from: sqlite or postgres. */
  backend: string;
  tern: string;
  tables: Record<string, TableSummary>;
  files: number;
  /** Uncompressed frame bytes, and the gzip bytes with their SHA-256. */
  bytes: number;
  compressedBytes: number;
  sha256: string;
}

export type Frame =
  { type: 'table'; name: string; columns: string[] } | { type: 'row'; values: Value[] } | { type: 'file'; path: string; mode: number; data: Buffer };

// ---- values ----

const NULL = 0;
const NUM = 1;
const STR = 2;
const BYTES = 3;

/** A row's values as bytes: per value a tag, then a float64, or a u32 length and the UTF-8 or raw bytes. */
export function encodeValues(values: readonly Value[]): Buffer {
  let size = 0;
  const strings: Array<Buffer | null> = values.map((v) => (typeof v === 'string' ? Buffer.from(v, 'utf8') : null));
  values.forEach((v, i) => {
    if (v === null) size += 1;
    else if (typeof v === 'number') size += 9;
    else size += 5 + (strings[i] ?? (v as Buffer)).length;
  });
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  values.forEach((v, i) => {
    if (v === null) out[at++] = NULL;
    else if (typeof v === 'number') {
      out[at++] = NUM;
      out.writeDoubleBE(v, at);
      at += 8;
    } else {
      const b = strings[i] ?? (v as Buffer);
      out[at++] = typeof v === 'string' ? STR : BYTES;
      out.writeUInt32BE(b.length, at);
      b.copy(out, at + 4);
      at += 4 + b.length;
    }
  });
  return out;
}

/** Each value's bytes in an encoded row (views, not copies), in order. */
export function valueSpans(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < buf.length) {
    const tag = buf[at]!;
    const end = tag === NULL ? at + 1 : tag === NUM ? at + 9 : tag === STR || tag === BYTES ? at + 5 + buf.readUInt32BE(at + 1) : -1;
    if (end < 0) throw new Error(`unknown value tag ${tag}`);
    if (end > buf.length) throw new Error('row value runs past its frame');
    out.push(buf.subarray(at, end));
    at = end;
  }
  return out;
}

export function decodeValues(buf: Buffer): Value[] {
  return valueSpans(buf).map((v) => {
    if (v[0] === NULL) return null;
    if (v[0] === NUM) return v.readDoubleBE(1);
    return v[0] === STR ? v.toString('utf8', 5) : Buffer.from(v.subarray(5));
  });
}

/** A value as the archive keeps it: booleans (PostgreSQL) as 0/1, bigint as a number, Uint8Array as a Buffer. */
export function normalizeValue(v: unknown): Value {
  if (v === null || v === undefined) return null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'number' || typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new TypeError(`cannot archive a value of type ${typeof v}`);
}

const MOD = 1n << 256n;

/** An encoded NULL, for a column a row lacks. */
const NULL_SPAN = Buffer.from([NULL]);

/** Per-table digest: order-independent, so two backends that return rows in different orders agree. */
export class TableDigest {
  rows = 0;
  private sum = 0n;
  private readonly order: number[];
  private readonly names: string;
  constructor(columns: string[]) {
    // Columns by name, so the same table created by different migration paths digests the same.
    this.order = columns.map((_, i) => i).sort((a, b) => (columns[a]! < columns[b]! ? -1 : 1));
    this.names = this.order.map((i) => columns[i]!).join('\0');
  }
  /** Adds a row as encoded in its frame (encodeValues): its values are hashed in column-name order. */
  add(encoded: Buffer): void {
    const spans = valueSpans(encoded);
    const h = createHash('sha256').update(this.names);
    for (const i of this.order) h.update(spans[i] ?? NULL_SPAN);
    this.sum = (this.sum + BigInt(`0x${h.digest('hex')}`)) % MOD;
    this.rows++;
  }
  summary(): TableSummary {
    return { rows: this.rows, digest: this.sum.toString(16).padStart(64, '0') };
  }
}

// ---- writing ----

function frameHead(type: string, length: number): Buffer {
  const head = Buffer.allocUnsafe(5);
  head[0] = type.charCodeAt(0);
  head.writeUInt32BE(length, 1);
  return head;
}

function jsonWithBytes(json: unknown, data: Buffer): Buffer {
  const j = Buffer.from(JSON.stringify(json));
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32BE(j.length);
  return Buffer.concat([len, j, data]);
}

/** Writes an archive to `out` (a file stream the caller opened); `finish` writes the manifest and ends it. */
export class ArchiveWriter {
  private readonly gzip: Gzip;
  private readonly hash = createHash('sha256');
  private compressed = 0;
  private raw = 0;
  private files = 0;
  private readonly tables: Record<string, TableSummary> = {};
  private current: { name: string; digest: TableDigest } | null = null;
  private readonly piped: Promise<void>;

  constructor(
    private readonly out: Writable,
    level = 1,
  ) {
    out.write(MAGIC);
    this.gzip = createGzip({ level, chunkSize: 256 * 1024 });
    this.gzip.on('data', (chunk: Buffer) => {
      this.hash.update(chunk);
      this.compressed += chunk.length;
      if (!out.write(chunk)) {
        this.gzip.pause();
        out.once('drain', () => this.gzip.resume());
      }
    });
    this.piped = new Promise((resolve, reject) => {
      this.gzip.once('end', resolve);
      this.gzip.once('error', reject);
      out.once('error', reject);
    });
    // A write error (a full disk) surfaces at the next write or at finish, not as an unhandled rejection.
    this.piped.catch(() => undefined);
  }

  /** Bytes written so far, before compression (for progress). */
  get bytes(): number {
    return this.raw;
  }

  /** Frames waiting to go to gzip together: one write per frame cost a trip to the zlib thread each. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  private async put(buf: Buffer): Promise<void> {
    this.raw += buf.length;
    this.pending.push(buf);
    this.pendingBytes += buf.length;
    if (this.pendingBytes >= WRITE_BATCH) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const data = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    if (!this.gzip.write(data)) await Promise.race([once(this.gzip, 'drain'), this.piped]);
  }

  private async frame(type: string, payload: Buffer): Promise<void> {
    await this.put(frameHead(type, payload.length));
    await this.put(payload);
  }

  private endTable(): void {
    if (this.current) this.tables[this.current.name] = this.current.digest.summary();
    this.current = null;
  }

  async table(name: string, columns: string[]): Promise<void> {
    this.endTable();
    this.current = { name, digest: new TableDigest(columns) };
    await this.frame('T', Buffer.from(JSON.stringify({ name, columns })));
  }

  async row(values: Value[]): Promise<void> {
    if (!this.current) throw new Error('a row before its table');
    const encoded = encodeValues(values);
    this.current.digest.add(encoded);
    await this.frame('R', encoded);
  }

  async file(path: string, mode: number, data: Buffer): Promise<void> {
    this.files++;
    await this.frame('F', jsonWithBytes({ path, mode }, data));
  }

  async finish(meta: { kind: ArchiveKind; schema: number; backend: string; tern: string }): Promise<Manifest> {
    this.endTable();
    await this.flush();
    this.gzip.end();
    await this.piped;
    const manifest: Manifest = {
      format: ARCHIVE_FORMAT,
      ...meta,
      createdAt: new Date().toISOString(),
      tables: this.tables,
      files: this.files,
      bytes: this.raw,
      compressedBytes: this.compressed,
      sha256: this.hash.digest('hex'),
    };
    const json = Buffer.from(JSON.stringify(manifest));
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(json.length);
    this.out.write(Buffer.concat([json, len, END]));
    return manifest;
  }
}

// ---- reading ----

/** A damaged or foreign archive: one clear line for the person who gave it. */
export class ArchiveError extends UserError {}

/** The manifest of `file`, read from its end without decompressing anything; refuses what is not a whole Tern archive. */
export function readManifest(file: string): { manifest: Manifest; dataStart: number; dataEnd: number } {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw new UserError(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(MAGIC.length);
    readSync(fd, head, 0, head.length, 0);
    if (!head.subarray(0, 8).equals(MAGIC.subarray(0, 8))) throw new ArchiveError(`${file} is not a Tern archive`);
    if (head[8]! > ARCHIVE_FORMAT) throw new ArchiveError(`${file} was written by a newer Tern (archive format ${head[8]}); upgrade Tern to read it`);
    const tail = Buffer.alloc(12);
    if (size < MAGIC.length + tail.length) throw new ArchiveError(`${file} is truncated (no manifest at its end)`);
    readSync(fd, tail, 0, 12, size - 12);
    if (!tail.subarray(4).equals(END)) throw new ArchiveError(`${file} is truncated (no manifest at its end)`);
    const len = tail.readUInt32BE(0);
    if (len > MAX_MANIFEST || len > size - MAGIC.length - 12) throw new ArchiveError(`${file} is damaged (bad manifest length)`);
    const json = Buffer.alloc(len);
    readSync(fd, json, 0, len, size - 12 - len);
    let manifest: Manifest;
    try {
      manifest = JSON.parse(json.toString('utf8')) as Manifest;
    } catch {
      throw new ArchiveError(`${file} is damaged (its manifest is not readable)`);
    }
    if (typeof manifest.schema !== 'number' || typeof manifest.tables !== 'object' || typeof manifest.sha256 !== 'string')
      throw new ArchiveError(`${file} is damaged (its manifest is incomplete)`);
    const dataEnd = size - 12 - len;
    if (dataEnd - MAGIC.length !== manifest.compressedBytes)
      throw new ArchiveError(`${file} is damaged: ${dataEnd - MAGIC.length} bytes of data where the manifest says ${manifest.compressedBytes}`);
    return { manifest, dataStart: MAGIC.length, dataEnd };
  } finally {
    closeSync(fd);
  }
}

/** Bytes read from a chunked stream, a length at a time, without copying chunks more than once. */
class ChunkQueue {
  private chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.length -= n;
      return out;
    }
    const parts: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const c = this.chunks[0]!;
      if (c.length <= need) {
        parts.push(c);
        this.chunks.shift();
        need -= c.length;
      } else {
        parts.push(c.subarray(0, need));
        this.chunks[0] = c.subarray(need);
        need = 0;
      }
    }
    this.length -= n;
    return Buffer.concat(parts, n);
  }
}

function parseFrame(file: string, type: number, payload: Buffer): Frame {
  try {
    if (type === 0x54 /* T */) {
      const t = JSON.parse(payload.toString('utf8')) as { name: string; columns: string[] };
      return { type: 'table', name: t.name, columns: t.columns };
    }
    if (type === 0x52 /* R */) return { type: 'row', values: decodeValues(payload) };
    if (type === 0x46 /* F */) {
      const n = payload.readUInt32BE(0);
      const f = JSON.parse(payload.subarray(4, 4 + n).toString('utf8')) as { path: string; mode: number };
      return { type: 'file', path: f.path, mode: f.mode, data: Buffer.from(payload.subarray(4 + n)) };
    }
  } catch (err) {
    throw new ArchiveError(`${file} is damaged: ${(err as Error).message}`);
  }
  throw new ArchiveError(`${file} is damaged: unknown frame type ${type}`);
}

/**
 * The frames of `file`, streamed. The caller acts on them as they come but must treat
 * nothing as done until the iteration ends: only then are the checksum and every table's
 * row count and digest known to match the manifest (ArchiveError otherwise).
 */
export async function* readFrames(file: string, onBytes?: (compressed: number) => void): AsyncGenerator<Frame> {
  const { manifest, dataStart, dataEnd } = readManifest(file);
  const hash = createHash('sha256');
  const gunzip = createGunzip({ chunkSize: 256 * 1024 });
  const input = createReadStream(file, { start: dataStart, end: dataEnd - 1, highWaterMark: 1024 * 1024 });
  let compressed = 0;
  input.on('data', (c) => {
    hash.update(c as Buffer);
    compressed += c.length;
    onBytes?.(compressed);
  });
  input.on('error', (err) => gunzip.destroy(err));
  input.pipe(gunzip);
  const queue = new ChunkQueue();
  const seen = new Map<string, TableDigest>();
  let current: TableDigest | null = null;
  let pending: { type: number; len: number } | null = null;
  try {
    for await (const chunk of gunzip) {
      queue.push(chunk as Buffer);
      for (;;) {
        if (!pending) {
          if (queue.length < 5) break;
          const head = queue.take(5);
          pending = { type: head[0]!, len: head.readUInt32BE(1) };
          if (pending.len > MAX_FRAME) throw new ArchiveError(`${file} is damaged (a frame of ${pending.len} bytes)`);
        }
        if (queue.length < pending.len) break;
        const payload = queue.take(pending.len);
        const f = parseFrame(file, pending.type, payload);
        pending = null;
        if (f.type === 'table') {
          if (seen.has(f.name)) throw new ArchiveError(`${file} is damaged (table ${f.name} twice)`);
          current = new TableDigest(f.columns);
          seen.set(f.name, current);
        } else if (f.type === 'row') {
          if (!current) throw new ArchiveError(`${file} is damaged (a row before any table)`);
          current.add(payload);
        }
        yield f;
      }
    }
  } catch (err) {
    if (err instanceof ArchiveError) throw err;
    throw new ArchiveError(`${file} is damaged: ${(err as Error).message}`);
  } finally {
    input.destroy();
    gunzip.destroy();
  }
  if (pending || queue.length > 0) throw new ArchiveError(`${file} is damaged (it ends inside a frame)`);
  if (hash.digest('hex') !== manifest.sha256) throw new ArchiveError(`${file} is damaged (checksum mismatch)`);
  for (const [name, want] of Object.entries(manifest.tables)) {
    const got = seen.get(name)?.summary() ?? { rows: 0, digest: '0'.repeat(64) };
    if (got.rows !== want.rows || got.digest !== want.digest)
      throw new ArchiveError(`${file} is damaged (table ${name}: ${got.rows} rows read, the manifest says ${want.rows}, or their digest differs)`);
  }
  for (const name of seen.keys()) if (!(name in manifest.tables)) throw new ArchiveError(`${file} is damaged (table ${name} is not in its manifest)`);
}
