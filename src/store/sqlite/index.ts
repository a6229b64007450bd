/**
 * SQLite backend (the embedded default): better-sqlite3 in WAL mode with
 * synchronous=FULL. Nothing touches the database on the event loop: writes are batched by
 * GroupCommit and committed by the writer thread (writer-worker.ts), reads run on the
 * reader thread (reader-worker.ts). Migrations run once at open, before serving.
 */
import { deserializeError, StoreUnavailableError, type SerializedError } from '../../errors.js';
import { GroupCommit } from '../group-commit.js';
import { createStore, type StoreEngine } from '../sql/facade.js';
import type { OpOutcome } from '../sql/batch.js';
import type { WriteOp } from '../sql/writes.js';
import { isHandedOver, type Store } from '../store.js';
import { isTransientSqliteError, openSqliteConnection, reviveBuffers } from './connection.js';
import { SQLITE_MIGRATIONS } from './migrations.js';
import { WorkerClient } from './worker-client.js';

/** Staged chunks older than this with no blob referring to them are from crashed or dropped transactions. */
const ORPHAN_UPLOAD_AGE_MS = 24 * 3600 * 1000;

/** Applies pending migrations; each re-checks inside its IMMEDIATE transaction, so processes starting together agree. */
function migrate(file: string): void {
  const db = openSqliteConnection(file);
  try {
    db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
    const applied = db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?');
    for (const m of SQLITE_MIGRATIONS) {
      db.transaction(() => {
        if (applied.get(m.version)) return;
        db.exec(m.sql);
        db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(m.version, Date.now());
      }).immediate();
    }
  } finally {
    db.close();
  }
}

/** Whether moving this Buffer's memory to the writer is safe: handed over, and the whole of its own ArrayBuffer. */
const movable = (b: Buffer) => isHandedOver(b) && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.byteLength > 0;

/** The bodies in a batch whose memory can be moved to the writer instead of copied (a sink's chunks and inline bodies). */
function transferable(ops: WriteOp[]): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const op of ops) {
    const data = op.op === 'stage' ? op.args.data : op.op === 'deliver' && 'data' in op.args.blob ? op.args.blob.data : null;
    if (data && movable(data) && !out.includes(data.buffer as ArrayBuffer)) out.push(data.buffer as ArrayBuffer);
  }
  return out;
}

function toError(e: SerializedError): Error {
  if (e.code && isTransientSqliteError(e)) return new StoreUnavailableError(`store cannot commit: ${e.message}`);
  return deserializeError(e);
}

export async function openSqliteStore(file: string): Promise<Store> {
  migrate(file);
  const reader = new WorkerClient(new URL('./reader-worker.js', import.meta.url), file, 'reader');
  const writer = new WorkerClient(new URL('./writer-worker.js', import.meta.url), file, 'writer');
  const commits = new GroupCommit<WriteOp, OpOutcome>(
    async (ops, bulk) => {
      const res = await writer.request({ kind: 'batch', ops, bulk }, transferable(ops));
      if (!res.ok) throw toError(res.error as SerializedError);
      return res.outcomes as OpOutcome[];
    },
    { maxBatch: 256, maxBulkBatch: 4, concurrency: 1 },
  );

  const engine: StoreEngine = {
    kind: 'sqlite',
    async read(name, ...args) {
      const res = await reader.request({ name, args });
      if (!res.ok) throw toError(res.error as SerializedError);
      return reviveBuffers(res.value) as never;
    },
    async write(op, args, options) {
      const outcome = await commits.submit({ op, args } as WriteOp, options?.bulk);
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
      await Promise.all([reader.close(), writer.close()]);
    },
  };
  await engine.write('collectUploads', { before: Date.now() - ORPHAN_UPLOAD_AGE_MS }, { bulk: true });
  return createStore(engine);
}
