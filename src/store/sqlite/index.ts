/**
 * SQLite backend (the embedded default): better-sqlite3 in WAL mode with
 * synchronous=FULL. Nothing touches the database on the event loop: writes are batched by
 * GroupCommit and committed by the writer thread (writer-worker.ts), reads run on
 * reader threads (reader-worker.ts; each read goes to the least busy one), and the WAL is
 * checkpointed on another thread (checkpoint-worker.ts), so copying it into the database
 * never holds up a commit. Migrations run once at open, before serving, then bodies
 * stored without a MIME structure are parsed (sql/backfill-structures.ts).
 */
import { availableParallelism } from 'node:os';
import type Database from 'better-sqlite3';
import { migrationFault } from '../fault-injection.js';
import { migrationFailed, type BeforeMigrate } from '../migration.js';
import { deserializeError, StoreUnavailableError, UserError, type SerializedError } from '../../errors.js';
import { GroupCommit } from '../group-commit.js';
import { backfillStructures, type StoreLog } from '../sql/backfill-structures.js';
import { createStore, type StoreEngine } from '../sql/facade.js';
import type { OpOutcome } from '../sql/batch.js';
import { bodyOf, type WriteOp } from '../sql/writes.js';
import { isHandedOver, type Store } from '../store.js';
import { isTransientSqliteError, openSqliteConnection, reviveBuffers } from './connection.js';
import { SQLITE_MIGRATIONS } from './migrations.js';
import { WorkerClient } from '../../worker-client.js';

/**
 * Bytes committed between two requests to the checkpoint thread. Small checkpoints keep
 * each one's fsync of the database file short: at 4 MB (SQLite's own default), that fsync
 * sometimes took 300 ms on a busy disk and held the commits whose WAL fsync ran beside it.
 */
const CHECKPOINT_EVERY_BYTES = 1024 * 1024;

/** About what a batch adds to the WAL: its bodies, plus a page per operation for rows and indexes. */
function walBytes(ops: WriteOp[]): number {
  return ops.reduce((n, op) => n + 4096 + (bodyOf(op)?.length ?? 0), 0);
}

/** Staged chunks older than this with no blob referring to them are from crashed or dropped transactions. */
const ORPHAN_UPLOAD_AGE_MS = 24 * 3600 * 1000;

/** How long a process opening the store waits for another one's migrations. */
const MIGRATION_WAIT_MS = 60_000;

/** The newest schema version this Tern knows. */
export const SQLITE_SCHEMA = SQLITE_MIGRATIONS[SQLITE_MIGRATIONS.length - 1]!.version;

/** The schema version of the database on `db` (0: empty). */
export function sqliteSchemaVersion(db: Database.Database): number {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
  return (db.prepare('SELECT coalesce(max(version), 0) AS v FROM schema_migrations').get() as { v: number }).v;
}

/**
 * Applies the migrations up to `upTo` not applied yet, all in one IMMEDIATE transaction
 * (a savepoint inside the caller's), so a failure leaves the schema as it was. It
 * re-checks inside the transaction, so processes starting together agree.
 */
export function migrateSqlite(db: Database.Database, upTo = SQLITE_SCHEMA): void {
  sqliteSchemaVersion(db);
  const applied = db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?');
  db.transaction(() => {
    for (const m of SQLITE_MIGRATIONS) {
      if (m.version > upTo || applied.get(m.version)) continue;
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(m.version, Date.now());
    }
    migrationFault();
  }).immediate();
}

/** SQLITE_BUSY/LOCKED: another process holds the lock, in a case where SQLite answers at once instead of waiting (switching a new file to WAL, a read snapshot gone stale). */
const isBusy = (err: unknown) => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^SQLITE_(BUSY|LOCKED)/.test(code);
};

/**
 * Brings the database at `file` to SQLITE_SCHEMA. An existing site behind it is first
 * snapshotted by `beforeMigrate` (store/open.ts); a failed upgrade changes nothing and says
 * where that snapshot is. A process waits (up to MIGRATION_WAIT_MS) while another one
 * migrates: busy_timeout covers most waits, and a lock SQLite refuses without waiting
 * (many processes opening a new file at once) is tried again.
 */
async function migrate(file: string, beforeMigrate?: BeforeMigrate): Promise<void> {
  const deadline = Date.now() + MIGRATION_WAIT_MS;
  let snapshot: Promise<string | null> | undefined;
  for (;;) {
    let db: Database.Database | undefined;
    try {
      db = openSqliteConnection(file);
      db.pragma(`busy_timeout = ${MIGRATION_WAIT_MS}`);
      const from = sqliteSchemaVersion(db);
      if (from === SQLITE_SCHEMA) return;
      if (from > SQLITE_SCHEMA) throw new UserError(`the database ${file} has schema ${from}, newer than this Tern knows (${SQLITE_SCHEMA}): upgrade Tern`);
      snapshot ??= from > 0 && beforeMigrate ? beforeMigrate(from, SQLITE_SCHEMA) : Promise.resolve(null);
      const taken = await snapshot;
      try {
        migrateSqlite(db);
        return;
      } catch (err) {
        if (!isBusy(err) || Date.now() > deadline) throw migrationFailed(from, SQLITE_SCHEMA, taken, err);
      }
    } catch (err) {
      if (!isBusy(err) || Date.now() > deadline) throw err;
    } finally {
      db?.close();
    }
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
  }
}

/** Whether moving this Buffer's memory to the writer is safe: handed over, and the whole of its own ArrayBuffer. */
const movable = (b: Buffer) => isHandedOver(b) && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.byteLength > 0;

/** The bodies in a batch whose memory can be moved to the writer instead of copied (a sink's chunks and inline bodies). */
function transferable(ops: WriteOp[]): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const op of ops) {
    const data = bodyOf(op);
    if (data && movable(data) && !out.includes(data.buffer as ArrayBuffer)) out.push(data.buffer as ArrayBuffer);
  }
  return out;
}

function toError(e: SerializedError): Error {
  if (e.code && isTransientSqliteError(e)) return new StoreUnavailableError(`store cannot commit: ${e.message}`);
  return deserializeError(e);
}

/** Reader threads: one per core is enough; reads are short and the cores are shared with the event loop and the writer. */
const READER_THREADS = Math.max(2, Math.min(4, availableParallelism()));

export interface SqliteStoreOptions {
  /** Told what the store does at open (parsing bodies stored without a structure); stderr by default. */
  log?: StoreLog;
  /** Called before the schema of an existing site is upgraded; returns the path of the snapshot it took. */
  beforeMigrate?: BeforeMigrate;
}

export async function openSqliteStore(file: string, options: SqliteStoreOptions = {}): Promise<Store> {
  await migrate(file, options.beforeMigrate);
  // Several reader threads (WAL lets them read at once), so one long read — a SEARCH page,
  // a big FETCH — does not hold up every other session's reads.
  const thread = (script: string, what: string) =>
    new WorkerClient(new URL(script, import.meta.url), { file }, (why) => new StoreUnavailableError(`SQLite ${what} stopped: ${why}`));
  const readers = Array.from({ length: READER_THREADS }, (_, i) => thread('./reader-worker.js', `reader ${i + 1}`));
  const reader = () => readers.reduce((best, r) => (r.busy < best.busy ? r : best));
  const writer = thread('./writer-worker.js', 'writer');
  const checkpointer = thread('./checkpoint-worker.js', 'checkpointer');
  let uncheckpointed = 0;
  let checkpointing = false;
  /** Asks for a checkpoint once enough has been committed; one at a time. A failed one is retried later (the writer's backstop covers a dead thread). */
  const committed = (bytes: number) => {
    uncheckpointed += bytes;
    if (checkpointing || uncheckpointed < CHECKPOINT_EVERY_BYTES) return;
    checkpointing = true;
    uncheckpointed = 0;
    void checkpointer
      .request({})
      .catch(() => undefined)
      .finally(() => (checkpointing = false));
  };
  const commits = new GroupCommit<WriteOp, OpOutcome>(
    async (ops, bulk) => {
      const bytes = walBytes(ops); // before the transfer empties the bodies
      const res = await writer.request({ kind: 'batch', ops, bulk }, transferable(ops));
      if (!res.ok) throw toError(res.error as SerializedError);
      committed(bytes);
      return res.outcomes as OpOutcome[];
    },
    // Bulk batches of 8 chunks (1 MB): larger ones took 1 MB messages from 96 to 123 msg/s
    // but held one-line messages behind them for up to 280 ms during a 20 MB flood.
    { maxBatch: 256, maxBulkBatch: 8, concurrency: 1 },
  );

  const engine: StoreEngine = {
    kind: 'sqlite',
    async read(name, ...args) {
      const res = await reader().request({ name, args });
      if (!res.ok) throw toError(res.error as SerializedError);
      return reviveBuffers(res.value) as never;
    },
    async write(op, args, options) {
      const outcome = await commits.submit({ op, args } as WriteOp, options?.bulk, options?.group);
      if (!outcome.ok) throw toError(outcome.error);
      return outcome.value as never;
    },
    async commitSettings() {
      const res = await writer.request({ kind: 'settings' });
      if (!res.ok) throw toError(res.error as SerializedError);
      return res.settings as Record<string, string>;
    },
    async close() {
      await commits.drain();
      await Promise.all([...readers.map((r) => r.close()), writer.close(), checkpointer.close()]);
    },
  };
  await engine.write('collectUploads', { before: Date.now() - ORPHAN_UPLOAD_AGE_MS }, { bulk: true });
  await backfillStructures(engine, options.log);
  return createStore(engine);
}
