/**
 * Byte columns read in binary. node-postgres 8 decodes every field of a result as UTF-8
 * text, even in binary format, which corrupts binary `bytea`; so results carry `bytea` as
 * hex text, twice its size, decoded on the event loop. Bodies are the one place where that
 * matters, so they are read with `COPY (query) TO STDOUT (FORMAT binary)` instead, whose
 * data node-postgres passes on untouched (through pg-copy-streams), and parsed here.
 *
 * COPY takes no parameters: they are written into the query as literals, numbers as
 * digits and strings escaped by the client (escapeLiteral).
 */
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { StoreUnavailableError } from '../../errors.js';

/** The signature that starts PostgreSQL's binary COPY format. */
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/** Replaces each `?` with its parameter as a literal. */
export function inlineParams(client: pg.ClientBase, text: string, params: unknown[]): string {
  let i = 0;
  const sql = text.replace(/\?/g, () => {
    const v = params[i++];
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
    if (typeof v === 'string') return client.escapeLiteral(v);
    throw new TypeError(`a COPY parameter must be a number or a string, not ${typeof v}`);
  });
  if (i !== params.length) throw new TypeError(`${params.length} parameters for ${i} placeholders`);
  return sql;
}

/** The values of a one-column binary COPY (`bytea`, so each value is its raw bytes). */
export function parseBinaryCopy(data: Buffer): Buffer[] {
  if (data.length < 21 || !data.subarray(0, SIGNATURE.length).equals(SIGNATURE)) throw new Error('not PostgreSQL binary COPY data');
  let pos = SIGNATURE.length + 4; // then 32 bits of flags
  pos += 4 + data.readInt32BE(pos); // header extension
  const values: Buffer[] = [];
  for (;;) {
    const fields = data.readInt16BE(pos);
    pos += 2;
    if (fields === -1) return values; // trailer
    if (fields !== 1) throw new Error(`binary COPY row with ${fields} fields, expected 1`);
    const length = data.readInt32BE(pos);
    pos += 4;
    if (length < 0 || pos + length > data.length) throw new Error('truncated or null value in binary COPY data');
    values.push(data.subarray(pos, pos + length));
    pos += length;
  }
}

/** Runs `text` (one bytea column, `?` parameters) through binary COPY on a pooled connection, within `timeoutMs`. */
export async function copyBytes(pool: pg.Pool, text: string, params: unknown[], timeoutMs: number): Promise<Buffer[]> {
  const client = await pool.connect();
  const pieces: Buffer[] = [];
  let failure: Error | undefined;
  try {
    const stream = client.query(copyTo(`COPY (${inlineParams(client, text, params)}) TO STDOUT (FORMAT binary)`));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new StoreUnavailableError(`store read took longer than ${timeoutMs} ms`)), timeoutMs);
      stream.on('data', (piece: Buffer) => pieces.push(piece));
      stream.on('end', () => {
        clearTimeout(timer);
        resolve();
      });
      stream.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  } catch (err) {
    failure = err instanceof Error ? err : new Error(String(err));
    throw err;
  } finally {
    client.release(failure); // a failed or abandoned COPY leaves the connection unusable: destroy it
  }
  return parseBinaryCopy(pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces));
}
