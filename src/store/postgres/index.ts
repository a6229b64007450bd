/**
 * PostgreSQL backend (cluster mode): node-postgres Pool, many stateless nodes on one
 * database. Write operations are grouped by GroupCommit into one transaction per batch
 * (one at a time while commits are quick, so batches grow; up to four once one is slow,
 * so one stuck connection does not hold every delivery);
 * COMMIT returns once PostgreSQL has flushed its WAL (`SET LOCAL synchronous_commit = on`
 * in every committing transaction, whatever the server's default).
 *
 * Failure rules:
 * - Every query has a deadline (`dbTimeoutMs`, shorter than a client's DATA timeout).
 *   Past it the connection is destroyed, the transaction never commits, and the caller
 *   gets StoreUnavailableError (SMTP 451).
 * - A COMMIT whose answer is lost is ambiguous: the old backend is terminated, and once
 *   it is gone the batch's deliveries are looked up by Tern id, so a stored message is
 *   answered 250, never 451.
 * - Deadlocks and serialization failures (40P01, 40001) rerun the batch.
 * - Lock order: see sql/writes.ts; a batch of deliveries locks its accounts and mailboxes
 *   up front, in key order, and runs its deliveries in blob-hash order.
 */
import pg from 'pg';
import { deserializeError, StoreUnavailableError, UserError } from '../../errors.js';
import { migrationFailed, type BeforeMigrate } from '../migration.js';
import { copyBytes } from './binary-copy.js';
import { faultPoint, migrationFault } from '../fault-injection.js';
import { GroupCommit } from '../group-commit.js';
import { hasDelivery, runOps, type OpOutcome } from '../sql/batch.js';
import { backfillStructures, type StoreLog } from '../sql/backfill-structures.js';
import { createStore, type StoreEngine } from '../sql/facade.js';
import { createReads } from '../sql/reads.js';
import { numberPlaceholders, type Row, type Sql } from '../sql/sql.js';
import type { WriteOp } from '../sql/writes.js';
import { outcomesFromStored, type NewDelivery, type Store } from '../store.js';
import { isConnectionError, isFatal, isRetryable, toStoreError } from './errors.js';
import { POSTGRES_MIGRATIONS } from './migrations.js';

export interface PostgresStoreOptions {
  /** Told about errors on idle connections (e.g. PostgreSQL restarting); they never crash the process. */
  onError?: (err: Error) => void;
  /** Deadline of every query, in ms (default 30 s). */
  dbTimeoutMs?: number;
  /** Told what the store does at open (parsing bodies stored without a structure); stderr by default. */
  log?: StoreLog;
  /** Called before the schema of an existing site is upgraded; returns the path of the snapshot it took. */
  beforeMigrate?: BeforeMigrate;
}

/** Key of the advisory lock that serialises migrations between nodes starting together ('tern'). */
export const MIGRATION_LOCK = 0x7465726e;
const RETRIES = 5;
/** A batch runs alone unless the one in flight has taken this long (a stuck connection); see group-commit.ts. */
const OVERLAP_AFTER_MS = 50;
const ORPHAN_UPLOAD_AGE_MS = 24 * 3600 * 1000;

// BIGINT columns (ids, counters, epoch ms, sizes) parse as numbers, for this pool only.
const INT8_OID = 20;
export const TYPES: pg.CustomTypesConfig = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? (v: string) => Number(v) : (pg.types.getTypeParser(oid, format) as (value: string | Buffer) => unknown),
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The shared SQL on a pool or a transaction's client; `bytes` is given where byte columns are read (outside transactions). */
function pgSql(db: pg.Pool | pg.PoolClient, bytes: Sql['bytes'] = () => Promise.reject(new Error('byte columns are read outside transactions'))): Sql {
  return {
    bytes,
    dialect: 'postgres',
    async all(text, params = []) {
      return (await db.query<Row>(numberPlaceholders(text), params)).rows;
    },
    async arrays(text, params = []) {
      return (await db.query<unknown[]>({ text: numberPlaceholders(text), values: params, rowMode: 'array' })).rows;
    },
    async run(text, params = []) {
      return (await db.query(numberPlaceholders(text), params)).rowCount ?? 0;
    },
  };
}

/** Runs `fn` inside BEGIN … COMMIT on one pool client; rolls back (or destroys a broken client) on failure. */
async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw toStoreError(err);
  }
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    client.release();
    return result;
  } catch (err) {
    let broken: Error | undefined = isConnectionError(err) ? (err as Error) : undefined;
    if (!broken) await client.query('ROLLBACK').catch((e: unknown) => (broken = e instanceof Error ? e : new Error(String(e))));
    client.release(broken); // an Error destroys the client instead of returning it to the pool
    throw err;
  }
}

/** The newest schema version this Tern knows. */
export const POSTGRES_SCHEMA = POSTGRES_MIGRATIONS[POSTGRES_MIGRATIONS.length - 1]!.version;

/** The schema version of the database (0: empty). */
export async function postgresSchemaVersion(db: pg.ClientBase | pg.Pool): Promise<number> {
  const t = await db.query("SELECT to_regclass('schema_migrations') IS NOT NULL AS present");
  if (!(t.rows[0] as { present: boolean }).present) return 0;
  return Number((await db.query<{ v: number }>('SELECT coalesce(max(version), 0) AS v FROM schema_migrations')).rows[0]!.v);
}

/** Applies the migrations up to `upTo` not applied yet, on a client inside the caller's transaction (which holds MIGRATION_LOCK). */
export async function migratePostgres(c: pg.ClientBase, upTo = POSTGRES_SCHEMA): Promise<void> {
  await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
  const done = new Set((await c.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => Number(r.version)));
  for (const m of POSTGRES_MIGRATIONS) {
    if (m.version > upTo || done.has(m.version)) continue;
    await c.query(m.sql);
    await c.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [m.version, Date.now()]);
  }
  migrationFault();
}

/**
 * Brings the database to POSTGRES_SCHEMA: every pending migration in one transaction under
 * an advisory lock, so nodes starting together agree and a failure changes nothing. An
 * existing site is first snapshotted by `beforeMigrate` (store/open.ts).
 */
async function migrate(pool: pg.Pool, beforeMigrate?: BeforeMigrate): Promise<void> {
  const from = await postgresSchemaVersion(pool).catch((err: unknown) => {
    throw toStoreError(err);
  });
  if (from === POSTGRES_SCHEMA) return;
  if (from > POSTGRES_SCHEMA) throw new UserError(`the database has schema ${from}, newer than this Tern knows (${POSTGRES_SCHEMA}): upgrade Tern`);
  const snapshot = from > 0 && beforeMigrate ? await beforeMigrate(from, POSTGRES_SCHEMA) : null;
  await inTransaction(pool, async (c) => {
    await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await migratePostgres(c);
  }).catch((err: unknown) => {
    if (from > 0) throw migrationFailed(from, POSTGRES_SCHEMA, snapshot, err);
    throw toStoreError(err);
  });
}

/** Takes a delivery batch's row locks in the documented order: accounts, then mailboxes, by key. */
async function lockForDeliveries(client: pg.PoolClient, deliveries: NewDelivery[]): Promise<void> {
  const accountIds = [...new Set(deliveries.flatMap((d) => d.recipients.map((r) => r.accountId)))].sort((a, b) => a - b);
  if (accountIds.length === 0) return;
  await client.query('SELECT id FROM accounts WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE', [accountIds]);
  await client.query('SELECT id FROM mailboxes WHERE account_id = ANY($1::bigint[]) ORDER BY id FOR UPDATE', [accountIds]);
}

/** Sets what makes this transaction's COMMIT durable (or, for staging, what it may skip). */
async function beginCommit(client: pg.PoolClient, bulk: boolean): Promise<void> {
  await client.query(`SET LOCAL synchronous_commit = ${bulk ? 'off' : 'on'}`);
}

export async function openPostgresStore(url: string, options: PostgresStoreOptions = {}): Promise<Store> {
  const dbTimeoutMs = options.dbTimeoutMs ?? 30_000;
  const config: pg.PoolConfig = {
    connectionString: url,
    max: 10,
    connectionTimeoutMillis: Math.min(5000, dbTimeoutMs),
    query_timeout: dbTimeoutMs,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: 'tern',
    types: TYPES,
  };
  const pool = new pg.Pool(config);
  const report = (err: Error) => options.onError?.(err);
  pool.on('error', report); // an idle client died (PostgreSQL stopped); the pool reconnects later
  pool.on('connect', (client) => client.on('error', report));
  try {
    await migrate(pool, options.beforeMigrate);
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  const reads = createReads(pgSql(pool, (text, params = []) => copyBytes(pool, text, params, dbTimeoutMs)));

  /** After a lost COMMIT answer: waits until the old backend is gone, then reads what the batch stored. */
  async function settleAmbiguous(ops: WriteOp[], pid: number): Promise<OpOutcome[] | null> {
    const deadline = Date.now() + 10 * dbTimeoutMs;
    while (Date.now() < deadline) {
      try {
        await pool.query('SELECT pg_terminate_backend($1)', [pid]);
        if ((await pool.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rowCount === 0) {
          const outcomes: OpOutcome[] = [];
          for (const op of ops) {
            if (op.op !== 'deliver') return null; // only deliveries can be identified afterwards
            const stored = await reads.findByTernId(op.args.ternId);
            if (stored.length === 0) return null; // the batch did not commit (it is all or nothing)
            outcomes.push({ ok: true, value: outcomesFromStored(op.args, stored) });
          }
          return outcomes;
        }
      } catch {
        // PostgreSQL still unreachable: keep trying until the deadline
      }
      await sleep(500);
    }
    return null;
  }

  async function commitOnce(ops: WriteOp[], bulk: boolean): Promise<OpOutcome[]> {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      throw toStoreError(err);
    }
    let commitSent = false;
    try {
      const deliveries = ops.flatMap((o) => (o.op === 'deliver' ? [o.args] : []));
      const begin = async () => {
        await client.query('BEGIN');
        await beginCommit(client, bulk);
        await lockForDeliveries(client, deliveries);
      };
      await begin();
      const restart = async () => {
        await client.query('ROLLBACK');
        await begin();
      };
      const outcomes = await runOps(pgSql(client), ops, isFatal, restart);
      if (deliveries.length > 0) faultPoint('before-commit');
      commitSent = true;
      await client.query('COMMIT');
      client.release();
      if (deliveries.length > 0) faultPoint('after-commit');
      return outcomes;
    } catch (err) {
      const broken = isConnectionError(err);
      if (!broken) await client.query('ROLLBACK').catch(() => undefined);
      client.release(broken ? (err as Error) : undefined);
      if (commitSent && broken && hasDelivery(ops)) {
        const settled = await settleAmbiguous(ops, (client as unknown as { processID: number }).processID);
        if (settled) return settled;
      }
      throw err;
    }
  }

  const commits = new GroupCommit<WriteOp, OpOutcome>(
    async (ops, bulk) => {
      // Deliveries in blob-hash order, so concurrent batches upsert shared blobs in one order.
      const order = ops.map((op, i) => ({ op, i })).sort((a, b) => hashOf(a.op).localeCompare(hashOf(b.op)));
      for (let attempt = 1; ; attempt++) {
        try {
          const sorted = await commitOnce(
            order.map((o) => o.op),
            bulk,
          );
          const outcomes = new Array<OpOutcome>(ops.length);
          order.forEach((o, k) => (outcomes[o.i] = sorted[k]!));
          return outcomes;
        } catch (err) {
          if (isRetryable(err) && attempt < RETRIES) continue;
          throw toStoreError(err);
        }
      }
    },
    { maxBatch: 256, maxBulkBatch: 16, concurrency: 4, overlapAfterMs: OVERLAP_AFTER_MS },
  );

  const engine: StoreEngine = {
    kind: 'postgres',
    async read(name, ...args) {
      try {
        return (await (reads[name] as (...a: unknown[]) => Promise<unknown>)(...args)) as never;
      } catch (err) {
        throw toStoreError(err);
      }
    },
    async write(op, args, opts) {
      const outcome = await commits.submit({ op, args } as WriteOp, opts?.bulk, opts?.group);
      if (!outcome.ok) throw deserializeError(outcome.error);
      return outcome.value as never;
    },
    async commitSettings() {
      return inTransaction(pool, async (c) => {
        await beginCommit(c, false);
        const r = await c.query<Row>('SHOW synchronous_commit');
        return { synchronous_commit: String(r.rows[0]!.synchronous_commit) };
      }).catch((err: unknown) => {
        throw toStoreError(err);
      });
    },
    async close() {
      await commits.drain();
      await pool.end();
    },
  };
  await engine.write('collectUploads', { before: Date.now() - ORPHAN_UPLOAD_AGE_MS }, { bulk: true }).catch((err: unknown) => {
    if (!(err instanceof StoreUnavailableError)) throw err;
  });
  await backfillStructures(engine, options.log);
  return createStore(engine);
}

const hashOf = (op: WriteOp): string => (op.op === 'deliver' ? op.args.blob.hash : '');
