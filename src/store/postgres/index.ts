/**
 * PostgreSQL backend (cluster mode): node-postgres Pool, many stateless nodes on one
 * database. Deliveries are batched by GroupCommit into one transaction per batch; COMMIT
 * returns once PostgreSQL has flushed its WAL (synchronous_commit=on, the default, which
 * we rely on). Connection-level failures become StoreUnavailableError (SMTP replies 451);
 * the pool opens fresh connections by itself when PostgreSQL comes back.
 */
import pg from 'pg';
import { ConflictError, NotFoundError, StoreUnavailableError, UserError } from '../../errors.js';
import { domainOf } from '../../mail/address.js';
import { GroupCommit } from '../group-commit.js';
import { INTEGRITY_CHECKS } from '../integrity.js';
import { toAccount, toDomain, toMailbox, toStoredMessage, type Row } from '../rows.js';
import {
  DEFAULT_MAILBOXES,
  type Account,
  type AliasRow,
  type DeliveredEntry,
  type Domain,
  type Mailbox,
  type NewAccount,
  type NewDelivery,
  type Store,
  type StoreStats,
  type StoredMessage,
} from '../store.js';
import { POSTGRES_MIGRATIONS } from './migrations.js';

type Client = pg.PoolClient;

export interface PostgresStoreOptions {
  /** Told about errors on idle connections (e.g. PostgreSQL restarting); they never crash the process. */
  onError?: (err: Error) => void;
}

/** Key of the advisory lock that serialises migrations between nodes starting together ('tern'). */
const MIGRATION_LOCK = 0x7465726e;

// BIGINT columns (ids, counters, epoch ms, sizes) parse as numbers, for this pool only.
const INT8_OID = 20;
const parseInt8 = (value: string): number => Number(value);
const TYPES = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format as 'text'),
} as pg.CustomTypesConfig;

/** Socket errors that mean the server cannot be reached or the connection broke. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/** SQLSTATEs of a connection that is gone or a server that cannot serve: 08 connection exception, 57P01-03 shutdown/startup. */
const CONNECTION_SQLSTATE = /^(08|57P0[123])/;
/** SQLSTATEs that are transient without breaking the connection: 53 insufficient resources, 58 system error, deadlock/serialization. */
const TRANSIENT_SQLSTATE = /^(53|58|40001|40P01)/;
/** node-postgres and pg-pool report lost connections and pool timeouts by message only. */
const CONNECTION_MESSAGE = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable/i;

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** True when the connection is unusable (or could not be made): the client must be destroyed. */
function isConnectionError(err: unknown): boolean {
  if (err instanceof AggregateError) return err.errors.some(isConnectionError);
  const code = errorCode(err);
  return SOCKET_CODES.has(code) || CONNECTION_SQLSTATE.test(code) || (err instanceof Error && CONNECTION_MESSAGE.test(err.message));
}

function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describeError(err.errors[0]);
  if (err instanceof Error) return err.message || errorCode(err) || err.name;
  return String(err);
}

/** Turns connection-level and transient failures into StoreUnavailableError; other errors pass through. */
function toStoreError(err: unknown): unknown {
  if (err instanceof StoreUnavailableError) return err;
  if (isConnectionError(err) || TRANSIENT_SQLSTATE.test(errorCode(err))) {
    return new StoreUnavailableError(`PostgreSQL unavailable: ${describeError(err)}`, { cause: err });
  }
  return err;
}

/** Runs `fn` inside BEGIN … COMMIT on one pool client; always rolls back and releases on failure. */
async function inTransaction<T>(pool: pg.Pool, fn: (client: Client) => Promise<T>): Promise<T> {
  let client: Client;
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
    if (!broken) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackError) {
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      }
    }
    client.release(broken); // an Error destroys the client instead of returning it to the pool
    throw toStoreError(err);
  }
}

async function migrate(pool: pg.Pool): Promise<void> {
  for (const m of POSTGRES_MIGRATIONS) {
    await inTransaction(pool, async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
      const done = await c.query('SELECT 1 FROM schema_migrations WHERE version = $1', [m.version]);
      if (done.rowCount) return;
      await c.query(m.sql);
      await c.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [m.version, Date.now()]);
    });
  }
}

/** One statement per delivery: bump every recipient's INBOX and insert the message rows. */
const DELIVER_SQL = `
WITH bumped AS (
  UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
  WHERE account_id = ANY($1::bigint[]) AND name = 'INBOX'
  RETURNING id, account_id, uidnext - 1 AS uid, highestmodseq
), inserted AS (
  INSERT INTO messages (mailbox_id, uid, modseq, internal_date, size, blob_hash, tern_id, envelope_from)
  SELECT id, uid, highestmodseq, $2::bigint, $3::bigint, $4::text, $5::text, $6::text FROM bumped
)
SELECT account_id, id, uid, highestmodseq FROM bumped`;

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  private readonly commits: GroupCommit<NewDelivery, DeliveredEntry[]>;
  private closed = false;

  private constructor(private readonly pool: pg.Pool) {
    this.commits = new GroupCommit((batch) => this.writeDeliveries(batch), { maxBatch: 256, concurrency: 1 });
  }

  /** Connects, applies pending migrations (serialised between nodes) and returns the store. */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const pool = new pg.Pool({
      connectionString: url,
      max: 10,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      application_name: 'tern',
      types: TYPES,
    });
    const report = (err: Error) => options.onError?.(err);
    // An idle client dying (PostgreSQL stopped) is reported here; the pool drops it and reconnects later.
    pool.on('error', report);
    // A checked-out client that loses its connection emits 'error' too; its query fails and we handle that.
    pool.on('connect', (client) => client.on('error', report));
    try {
      await migrate(pool);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
    return new PostgresStore(pool);
  }

  private async rows(sql: string, params: unknown[] = [], client?: Client): Promise<Row[]> {
    try {
      return (await (client ?? this.pool).query<Row>(sql, params)).rows;
    } catch (err) {
      throw toStoreError(err);
    }
  }

  private async one(sql: string, params: unknown[] = [], client?: Client): Promise<Row | undefined> {
    return (await this.rows(sql, params, client))[0];
  }

  private transaction<T>(fn: (client: Client) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, fn);
  }

  private async domainId(name: string, client?: Client, lock = false): Promise<number> {
    const r = await this.one(`SELECT id FROM domains WHERE name = $1${lock ? ' FOR UPDATE' : ''}`, [name], client);
    if (!r) throw new NotFoundError(`domain ${name} does not exist (add it with: tern domain add ${name})`);
    return Number(r.id);
  }

  async addDomain(name: string): Promise<Domain> {
    const now = Date.now();
    const r = await this.one('INSERT INTO domains (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING id', [name, now]);
    if (!r) throw new ConflictError(`domain ${name} already exists`);
    return { name, createdAt: new Date(now) };
  }

  async listDomains(): Promise<Domain[]> {
    const rows = await this.rows('SELECT name, created_at FROM domains ORDER BY name COLLATE "C"');
    return rows.map(toDomain);
  }

  async isLocalDomain(name: string): Promise<boolean> {
    return (await this.one('SELECT 1 FROM domains WHERE name = $1', [name])) !== undefined;
  }

  async deleteDomain(name: string): Promise<void> {
    await this.transaction(async (c) => {
      // FOR UPDATE conflicts with the key-share lock a concurrent account/alias insert takes on the domain.
      const id = await this.domainId(name, c, true);
      const r = (await this.one(
        'SELECT (SELECT count(*) FROM accounts WHERE domain_id = $1) AS accounts, (SELECT count(*) FROM aliases WHERE domain_id = $1) AS aliases',
        [id],
        c,
      ))!;
      const accounts = Number(r.accounts);
      const aliases = Number(r.aliases);
      if (accounts || aliases) {
        throw new ConflictError(`domain ${name} still has ${accounts} account(s) and ${aliases} alias(es); delete them first`);
      }
      await this.rows('DELETE FROM domains WHERE id = $1', [id], c);
    });
  }

  async addAccount(account: NewAccount): Promise<Account> {
    const domain = domainOf(account.address);
    const now = Date.now();
    return this.transaction(async (c): Promise<Account> => {
      const domainId = await this.domainId(domain, c);
      const r = await this.one(
        `INSERT INTO accounts (address, domain_id, password_hash, is_admin, quota_bytes, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (address) DO NOTHING RETURNING id`,
        [account.address, domainId, account.passwordHash, Boolean(account.isAdmin), account.quotaBytes ?? null, now],
        c,
      );
      if (!r) throw new ConflictError(`account ${account.address} already exists`);
      const id = Number(r.id);
      await this.rows(
        `INSERT INTO mailboxes (account_id, name, special_use, uidvalidity)
         SELECT $1, t.name, t.special_use, $4 FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS t(name, special_use, i) ORDER BY t.i`,
        [id, DEFAULT_MAILBOXES.map((m) => m.name), DEFAULT_MAILBOXES.map((m) => m.specialUse), Math.floor(now / 1000)],
        c,
      );
      return { id, address: account.address, isAdmin: Boolean(account.isAdmin), quotaBytes: account.quotaBytes ?? null, createdAt: new Date(now) };
    });
  }

  async listAccounts(domain?: string): Promise<Account[]> {
    const rows = domain
      ? await this.rows('SELECT a.* FROM accounts a JOIN domains d ON d.id = a.domain_id WHERE d.name = $1 ORDER BY a.address COLLATE "C"', [domain])
      : await this.rows('SELECT * FROM accounts ORDER BY address COLLATE "C"');
    return rows.map(toAccount);
  }

  async getAccount(address: string): Promise<Account | null> {
    const r = await this.one('SELECT * FROM accounts WHERE address = $1', [address]);
    return r ? toAccount(r) : null;
  }

  async getPasswordHash(address: string): Promise<string | null> {
    const r = await this.one('SELECT password_hash FROM accounts WHERE address = $1', [address]);
    return r ? String(r.password_hash) : null;
  }

  async setPasswordHash(address: string, passwordHash: string): Promise<void> {
    const r = await this.one('UPDATE accounts SET password_hash = $1 WHERE address = $2 RETURNING id', [passwordHash, address]);
    if (!r) throw new NotFoundError(`account ${address} does not exist`);
  }

  async deleteAccount(address: string): Promise<void> {
    await this.transaction(async (c) => {
      const hashes = await this.rows(
        `SELECT DISTINCT m.blob_hash FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
         JOIN accounts a ON a.id = mb.account_id WHERE a.address = $1`,
        [address],
        c,
      );
      const gone = await this.one('DELETE FROM accounts WHERE address = $1 RETURNING id', [address], c);
      if (!gone) throw new NotFoundError(`account ${address} does not exist`);
      if (hashes.length === 0) return;
      // Only this account's blobs can have become unreferenced. SKIP LOCKED leaves alone a blob
      // that a concurrent delivery is referencing right now (its FK check holds a key-share lock).
      await this.rows(
        `DELETE FROM blobs WHERE hash IN (
           SELECT b.hash FROM blobs b WHERE b.hash = ANY($1::text[])
           AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_hash = b.hash)
           FOR UPDATE SKIP LOCKED)`,
        [hashes.map((h) => String(h.blob_hash))],
        c,
      );
    });
  }

  async usedBytes(accountId: number): Promise<number> {
    const r = await this.one(
      'SELECT coalesce(sum(m.size), 0)::bigint AS used FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id WHERE mb.account_id = $1',
      [accountId],
    );
    return Number(r?.used ?? 0);
  }

  async listMailboxes(address: string): Promise<Mailbox[]> {
    const account = await this.getAccount(address);
    if (!account) throw new NotFoundError(`account ${address} does not exist`);
    const rows = await this.rows(
      `SELECT mb.*, (SELECT count(*) FROM messages m WHERE m.mailbox_id = mb.id) AS messages
       FROM mailboxes mb WHERE mb.account_id = $1 ORDER BY mb.id`,
      [account.id],
    );
    return rows.map(toMailbox);
  }

  async addAlias(address: string, target: string): Promise<void> {
    const domainId = await this.domainId(address.startsWith('@') ? address.slice(1) : domainOf(address));
    const r = await this.one(
      'INSERT INTO aliases (address, target, domain_id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (address, target) DO NOTHING RETURNING id',
      [address, target, domainId, Date.now()],
    );
    if (!r) throw new ConflictError(`alias ${address} -> ${target} already exists`);
  }

  async listAliases(): Promise<AliasRow[]> {
    const rows = await this.rows('SELECT address, target FROM aliases ORDER BY address COLLATE "C", target COLLATE "C"');
    return rows.map((r) => ({ address: String(r.address), target: String(r.target) }));
  }

  async aliasTargets(address: string): Promise<string[]> {
    const rows = await this.rows('SELECT target FROM aliases WHERE address = $1 ORDER BY target COLLATE "C"', [address]);
    return rows.map((r) => String(r.target));
  }

  async deleteAlias(address: string, target?: string): Promise<void> {
    const rows = target
      ? await this.rows('DELETE FROM aliases WHERE address = $1 AND target = $2 RETURNING id', [address, target])
      : await this.rows('DELETE FROM aliases WHERE address = $1 RETURNING id', [address]);
    if (rows.length === 0) throw new NotFoundError(`alias ${address}${target ? ` -> ${target}` : ''} does not exist`);
  }

  async getSetting(key: string): Promise<string | null> {
    const r = await this.one('SELECT value FROM settings WHERE key = $1', [key]);
    return r ? String(r.value) : null;
  }

  async setSetting(key: string, value: string): Promise<void> {
    await this.rows('INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]);
  }

  deliver(delivery: NewDelivery): Promise<DeliveredEntry[]> {
    if (delivery.accountIds.length === 0) return Promise.reject(new UserError('a delivery needs at least one recipient'));
    return this.commits.submit(delivery);
  }

  private writeDeliveries(batch: NewDelivery[]): Promise<DeliveredEntry[][]> {
    return this.transaction(async (c) => {
      // A 250 must mean durable, whatever the server's default for this setting is.
      await c.query('SET LOCAL synchronous_commit = on');
      // Lock every INBOX of the batch in account order first, so that batches committed by
      // several nodes at once cannot deadlock on each other's mailbox rows.
      const accountIds = [...new Set(batch.flatMap((d) => d.accountIds))].sort((a, b) => a - b);
      await this.rows("SELECT id FROM mailboxes WHERE account_id = ANY($1::bigint[]) AND name = 'INBOX' ORDER BY account_id FOR UPDATE", [accountIds], c);
      const results: DeliveredEntry[][] = [];
      for (const d of batch) {
        await this.rows('INSERT INTO blobs (hash, size, data, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (hash) DO NOTHING', [
          d.hash,
          d.blob.length,
          d.blob,
          d.internalDate.getTime(),
        ], c);
        const rows = await this.rows(DELIVER_SQL, [d.accountIds, d.internalDate.getTime(), d.blob.length, d.hash, d.ternId, d.envelopeFrom], c);
        // An account deleted since RCPT has no INBOX row: it is skipped, the others still get the message.
        if (rows.length === 0) throw new NotFoundError('no recipient account exists any more');
        const byAccount = new Map(rows.map((r) => [Number(r.account_id), r]));
        results.push(
          d.accountIds.flatMap((accountId): DeliveredEntry[] => {
            const mb = byAccount.get(accountId);
            return mb ? [{ accountId, mailboxId: Number(mb.id), uid: Number(mb.uid), modseq: Number(mb.highestmodseq) }] : [];
          }),
        );
      }
      return results;
    });
  }

  async listMessages(address: string, mailbox = 'INBOX'): Promise<StoredMessage[]> {
    const rows = await this.rows(
      `SELECT m.*, mb.name AS mailbox FROM messages m
       JOIN mailboxes mb ON mb.id = m.mailbox_id JOIN accounts a ON a.id = mb.account_id
       WHERE a.address = $1 AND mb.name = $2 ORDER BY m.uid`,
      [address, mailbox],
    );
    return rows.map(toStoredMessage);
  }

  async readBlob(hash: string): Promise<Buffer | null> {
    const r = await this.one('SELECT data FROM blobs WHERE hash = $1', [hash]);
    return r ? (r.data as Buffer) : null;
  }

  async stats(): Promise<StoreStats> {
    const counts = (await this.one(
      'SELECT (SELECT count(*) FROM messages) AS messages, (SELECT count(*) FROM blobs) AS blobs, (SELECT count(*) FROM domains) AS domains',
    ))!;
    const accounts = await this.rows(
      `SELECT a.address, count(m.id) AS messages FROM accounts a
       LEFT JOIN mailboxes mb ON mb.account_id = a.id LEFT JOIN messages m ON m.mailbox_id = mb.id
       GROUP BY a.id ORDER BY a.address COLLATE "C"`,
    );
    return {
      messages: Number(counts.messages),
      blobs: Number(counts.blobs),
      domains: Number(counts.domains),
      accounts: accounts.map((r) => ({ address: String(r.address), messages: Number(r.messages) })),
    };
  }

  async checkIntegrity(): Promise<string[]> {
    const problems: string[] = [];
    for (const check of INTEGRITY_CHECKS) {
      for (const r of await this.rows(check.sql)) problems.push(check.describe(r));
    }
    return problems;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.commits.drain();
    await this.pool.end();
  }
}
