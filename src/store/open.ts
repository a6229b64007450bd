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
import type { BeforeMigrate } from './migration.js';
import { dbTarget, redactDbUrl } from './target.js';
import { upgradeSnapshot } from './transfer/index.js';

export { redactDbUrl };

export interface OpenStoreOptions {
  dataDir: string;
  dbUrl?: string;
  /** PostgreSQL only: told about errors on idle connections. */
  onError?: PostgresStoreOptions['onError'];
  /** PostgreSQL only: deadline of every query in ms. */
  dbTimeoutMs?: number;
  /** Told what the store does at open (parsing bodies stored without a structure, after an upgrade); stderr by default. */
  log?: StoreLog;
  /** Snapshots an existing site before its schema is upgraded (store/transfer: preUpgradeSnapshot); returns the snapshot's path. */
  beforeMigrate?: BeforeMigrate;
}

/** SQLSTATE classes a person fixes in the URL or on the server: 28 authorization, 3D unknown database. */
const CONNECT_SQLSTATE = /^(28|3D)/;

function reason(err: unknown): string {
  if (err instanceof StoreUnavailableError) return err.message.replace(/^PostgreSQL unavailable: /, '');
  return err instanceof Error ? err.message : String(err);
}

async function openPostgres(url: string, opts: OpenStoreOptions): Promise<Store> {
  try {
    return await openPostgresStore(url, { onError: opts.onError, dbTimeoutMs: opts.dbTimeoutMs, log: opts.log, beforeMigrate: opts.beforeMigrate });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (err instanceof StoreUnavailableError || (typeof code === 'string' && CONNECT_SQLSTATE.test(code))) {
      throw new UserError(`cannot connect to PostgreSQL at ${redactDbUrl(url)}: ${reason(err)}`);
    }
    throw err;
  }
}

async function openSqlite(file: string, opts: OpenStoreOptions): Promise<Store> {
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir)) throw new UserError(`cannot open SQLite database ${file}: directory ${dir} does not exist`);
  try {
    return await openSqliteStore(file, { log: opts.log, beforeMigrate: opts.beforeMigrate });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('SQLITE_')) {
      throw new UserError(`cannot open SQLite database ${file}: ${reason(err)}`);
    }
    throw err;
  }
}

/** Opens the store; an existing site is snapshotted into <data>/snapshots before its schema is upgraded, unless `beforeMigrate` says otherwise. */
export async function openStore(opts: OpenStoreOptions): Promise<Store> {
  opts = { beforeMigrate: (from, to) => upgradeSnapshot(opts, from, to), ...opts };
  const target = dbTarget(opts);
  if (target.backend === 'postgres') return openPostgres(target.url, opts);
  if (!opts.dbUrl?.trim()) fs.mkdirSync(opts.dataDir, { recursive: true });
  return openSqlite(target.file, opts);
}
