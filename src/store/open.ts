/**
 * Picks and opens the Store backend for `--db URL` / `--data DIR`: PostgreSQL for
 * postgres:// and postgresql:// URLs, otherwise SQLite (a file path, `sqlite:PATH`, or
 * the default `<dataDir>/tern.db`). Failures a person can fix become UserError.
 */
import fs from 'node:fs';
import path from 'node:path';
import { StoreUnavailableError, UserError } from '../errors.js';
import { openPostgresStore, type PostgresStoreOptions } from './postgres/index.js';
import { openSqliteStore } from './sqlite/index.js';
import type { StoreLog } from './sql/backfill-structures.js';
import type { Store } from './store.js';

export interface OpenStoreOptions {
  dataDir: string;
  dbUrl?: string;
  /** PostgreSQL only: told about errors on idle connections. */
  onError?: PostgresStoreOptions['onError'];
  /** PostgreSQL only: deadline of every query in ms. */
  dbTimeoutMs?: number;
  /** Told what the store does at open (parsing bodies stored without a structure, after an upgrade); stderr by default. */
  log?: StoreLog;
}

/** SQLSTATE classes a person fixes in the URL or on the server: 28 authorization, 3D unknown database. */
const CONNECT_SQLSTATE = /^(28|3D)/;

/** The URL with any password removed, safe for messages and logs. */
export function redactDbUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    u.searchParams.delete('password');
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1@');
  }
}

function reason(err: unknown): string {
  if (err instanceof StoreUnavailableError) return err.message.replace(/^PostgreSQL unavailable: /, '');
  return err instanceof Error ? err.message : String(err);
}

async function openPostgres(url: string, opts: OpenStoreOptions): Promise<Store> {
  try {
    return await openPostgresStore(url, { onError: opts.onError, dbTimeoutMs: opts.dbTimeoutMs, log: opts.log });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (err instanceof StoreUnavailableError || (typeof code === 'string' && CONNECT_SQLSTATE.test(code))) {
      throw new UserError(`cannot connect to PostgreSQL at ${redactDbUrl(url)}: ${reason(err)}`);
    }
    throw err;
  }
}

async function openSqlite(file: string, log?: StoreLog): Promise<Store> {
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir)) throw new UserError(`cannot open SQLite database ${file}: directory ${dir} does not exist`);
  try {
    return await openSqliteStore(file, { log });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('SQLITE_')) {
      throw new UserError(`cannot open SQLite database ${file}: ${reason(err)}`);
    }
    throw err;
  }
}

export async function openStore(opts: OpenStoreOptions): Promise<Store> {
  const url = opts.dbUrl?.trim();
  if (!url) {
    fs.mkdirSync(opts.dataDir, { recursive: true });
    return openSqlite(path.join(opts.dataDir, 'tern.db'), opts.log);
  }
  if (/^postgres(ql)?:\/\//i.test(url)) return openPostgres(url, opts);
  if (/^sqlite:/i.test(url)) {
    const file = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, ''); // sqlite:///abs/path → /abs/path
    if (!file) throw new UserError('the SQLite database URL has no path (expected sqlite:PATH)');
    return openSqlite(file, opts.log);
  }
  // A scheme is two or more letters before ':' (so a Windows drive letter still reads as a path).
  const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(url);
  if (scheme) {
    throw new UserError(`unsupported database URL scheme "${scheme[1]}:" in ${redactDbUrl(url)} (use postgres://…, sqlite:PATH or a file path)`);
  }
  return openSqlite(url, opts.log);
}
