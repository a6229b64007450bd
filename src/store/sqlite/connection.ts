/**
 * SQLite connections with Tern's settings (WAL, synchronous=FULL so a commit returns only
 * after the WAL is fsynced, foreign keys on) and the Sql executor the shared reads and
 * writes run on (statements prepared once and cached).
 */
import Database from 'better-sqlite3';
import { headerHas, isSearchField, searchValues } from '../../mail/mime/index.js';
import type { Row, Sql } from '../sql/sql.js';

/** Error codes that mean "the disk or file is in trouble, try later", not a bad request. */
export const TRANSIENT_SQLITE_CODES = /^SQLITE_(FULL|IOERR|BUSY|LOCKED|CANTOPEN|READONLY|PROTOCOL|NOMEM|CORRUPT|NOTADB)/;

export function isTransientSqliteError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && TRANSIENT_SQLITE_CODES.test(code);
}

export function openSqliteConnection(file: string, options: { synchronous?: 'FULL' | 'OFF'; readonly?: boolean } = {}): Database.Database {
  const db = new Database(file, { readonly: options.readonly ?? false });
  try {
    // First: switching a new database to WAL takes a lock that other processes opening it at the same moment must wait for.
    db.pragma('busy_timeout = 5000');
    if (!options.readonly) db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
    db.pragma('foreign_keys = ON');
  } catch (err) {
    db.close();
    throw err;
  }
  // SEARCH HEADER in SQL (sql/message-reads.ts), with the session's own definition.
  db.function('tern_header_has', { deterministic: true }, (lines, field, needle) => (headerHas(String(lines ?? ''), String(field), String(needle)) ? 1 : 0));
  // Fills blob_search in migration 4 (sql/search-fields.ts).
  db.function('tern_header_values', { deterministic: true }, (lines, field) => {
    const name = String(field);
    return isSearchField(name) ? searchValues(String(lines ?? ''))[name] : null;
  });
  return db;
}

/**
 * Worker threads receive Buffers as Uint8Arrays; better-sqlite3 binds only Buffers as
 * BLOBs, and callers expect Buffers. Turns them back in place (the value is a fresh clone
 * from a message), so a page of records costs no copies.
 */
export function reviveBuffers<T>(value: T): T {
  if (value instanceof Uint8Array) return (Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)) as T;
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = reviveBuffers(value[i] as unknown);
    return value;
  }
  const o = value as Record<string, unknown>;
  for (const k in o) {
    const v = o[k];
    if (v !== null && typeof v === 'object') o[k] = reviveBuffers(v);
  }
  return value;
}

export function sqliteSql(db: Database.Database): Sql {
  const cache = new Map<string, Database.Statement>();
  const arrayCache = new Map<string, Database.Statement>();
  const statement = (text: string, arrays = false) => {
    const c = arrays ? arrayCache : cache;
    let s = c.get(text);
    if (!s) {
      s = db.prepare(text);
      if (arrays) s.raw(true);
      c.set(text, s);
    }
    return s;
  };
  return {
    dialect: 'sqlite',
    async all(text, params = []) {
      const s = statement(text);
      if (s.reader) return s.all(...params) as Row[];
      s.run(...params);
      return [];
    },
    async arrays(text, params = []) {
      return statement(text, true).all(...params) as unknown[][];
    },
    async run(text, params = []) {
      const s = statement(text);
      return s.reader ? s.all(...params).length : s.run(...params).changes;
    },
    async bytes(text, params = []) {
      return (statement(text).all(...params) as Row[]).map((r) => Object.values(r)[0] as Buffer);
    },
  };
}
