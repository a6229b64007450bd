/**
 * SQLite backend (the embedded default): better-sqlite3, WAL, synchronous=FULL, so a
 * commit returns only after the WAL is fsynced. Deliveries are committed by a writer
 * worker thread (writer-worker.ts) in GroupCommit batches, so one fsync covers every
 * message that arrived meanwhile and the event loop never waits on the disk for mail.
 * Reads and administrative writes use this thread's own connection.
 */
import Database from 'better-sqlite3';
import { ConflictError, NotFoundError, UserError } from '../../errors.js';
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
import { openSqliteConnection } from './connection.js';
import { SQLITE_MIGRATIONS } from './migrations.js';
import { WriterClient } from './writer-client.js';

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly commits: GroupCommit<NewDelivery, DeliveredEntry[]>;
  private readonly writer: WriterClient;

  constructor(file: string) {
    this.db = openSqliteConnection(file);
    this.migrate();
    this.writer = new WriterClient(file);
    this.commits = new GroupCommit((batch) => this.writer.write(batch), { maxBatch: 256, concurrency: 1 });
  }

  private readonly statements = new Map<string, Database.Statement>();

  /** A prepared statement, cached: preparing costs more than running most of these. A cached
   *  statement keeps its pluck() mode, so each SQL text is always used the same way. */
  private sql(source: string): Database.Statement {
    let stmt = this.statements.get(source);
    if (!stmt) {
      stmt = this.db.prepare(source);
      this.statements.set(source, stmt);
    }
    return stmt;
  }

  private migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
    const applied = new Set(this.sql('SELECT version FROM schema_migrations').pluck().all() as number[]);
    for (const m of SQLITE_MIGRATIONS) {
      if (applied.has(m.version)) continue;
      this.db.transaction(() => {
        this.db.exec(m.sql);
        this.sql('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(m.version, Date.now());
      }).immediate();
    }
  }

  private domainId(name: string): number {
    const id = this.sql('SELECT id FROM domains WHERE name = ?').pluck().get(name);
    if (id === undefined) throw new NotFoundError(`domain ${name} does not exist (add it with: tern domain add ${name})`);
    return Number(id);
  }

  async addDomain(name: string): Promise<Domain> {
    const now = Date.now();
    const r = this.sql('INSERT INTO domains (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING').run(name, now);
    if (r.changes === 0) throw new ConflictError(`domain ${name} already exists`);
    return { name, createdAt: new Date(now) };
  }

  async listDomains(): Promise<Domain[]> {
    return (this.sql('SELECT name, created_at FROM domains ORDER BY name').all() as Row[]).map(toDomain);
  }

  async isLocalDomain(name: string): Promise<boolean> {
    return this.sql('SELECT 1 FROM domains WHERE name = ?').get(name) !== undefined;
  }

  async deleteDomain(name: string): Promise<void> {
    const id = this.domainId(name);
    const accounts = Number(this.sql('SELECT count(*) FROM accounts WHERE domain_id = ?').pluck().get(id));
    const aliases = Number(this.sql('SELECT count(*) FROM aliases WHERE domain_id = ?').pluck().get(id));
    if (accounts || aliases) {
      throw new ConflictError(`domain ${name} still has ${accounts} account(s) and ${aliases} alias(es); delete them first`);
    }
    this.sql('DELETE FROM domains WHERE id = ?').run(id);
  }

  async addAccount(account: NewAccount): Promise<Account> {
    const domainId = this.domainId(domainOf(account.address));
    const now = Date.now();
    return this.db.transaction((): Account => {
      const r = this.db
        .prepare('INSERT INTO accounts (address, domain_id, password_hash, is_admin, quota_bytes, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (address) DO NOTHING')
        .run(account.address, domainId, account.passwordHash, account.isAdmin ? 1 : 0, account.quotaBytes ?? null, now);
      if (r.changes === 0) throw new ConflictError(`account ${account.address} already exists`);
      const id = Number(r.lastInsertRowid);
      const insert = this.sql('INSERT INTO mailboxes (account_id, name, special_use, uidvalidity) VALUES (?, ?, ?, ?)');
      const uidValidity = Math.floor(now / 1000);
      for (const mb of DEFAULT_MAILBOXES) insert.run(id, mb.name, mb.specialUse, uidValidity);
      return { id, address: account.address, isAdmin: Boolean(account.isAdmin), quotaBytes: account.quotaBytes ?? null, createdAt: new Date(now) };
    }).immediate();
  }

  async listAccounts(domain?: string): Promise<Account[]> {
    const rows = domain
      ? this.sql('SELECT a.* FROM accounts a JOIN domains d ON d.id = a.domain_id WHERE d.name = ? ORDER BY a.address').all(domain)
      : this.sql('SELECT * FROM accounts ORDER BY address').all();
    return (rows as Row[]).map(toAccount);
  }

  async getAccount(address: string): Promise<Account | null> {
    const r = this.sql('SELECT * FROM accounts WHERE address = ?').get(address) as Row | undefined;
    return r ? toAccount(r) : null;
  }

  async getPasswordHash(address: string): Promise<string | null> {
    const h = this.sql('SELECT password_hash FROM accounts WHERE address = ?').pluck().get(address);
    return h === undefined ? null : String(h);
  }

  async setPasswordHash(address: string, passwordHash: string): Promise<void> {
    const r = this.sql('UPDATE accounts SET password_hash = ? WHERE address = ?').run(passwordHash, address);
    if (r.changes === 0) throw new NotFoundError(`account ${address} does not exist`);
  }

  async deleteAccount(address: string): Promise<void> {
    this.db.transaction(() => {
      // Only this account's blobs can become unreferenced: check those, not the whole table.
      const hashes = this.sql(
        `SELECT DISTINCT m.blob_hash FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
         JOIN accounts a ON a.id = mb.account_id WHERE a.address = ?`,
      ).pluck().all(address) as string[];
      const r = this.sql('DELETE FROM accounts WHERE address = ?').run(address);
      if (r.changes === 0) throw new NotFoundError(`account ${address} does not exist`);
      const drop = this.sql('DELETE FROM blobs WHERE hash = ? AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_hash = blobs.hash)');
      for (const hash of hashes) drop.run(hash);
    }).immediate();
  }

  async usedBytes(accountId: number): Promise<number> {
    return Number(
      this.sql('SELECT coalesce(sum(m.size), 0) FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id WHERE mb.account_id = ?').pluck().get(accountId),
    );
  }

  async listMailboxes(address: string): Promise<Mailbox[]> {
    const account = await this.getAccount(address);
    if (!account) throw new NotFoundError(`account ${address} does not exist`);
    const rows = this.db
      .prepare(
        `SELECT mb.*, (SELECT count(*) FROM messages m WHERE m.mailbox_id = mb.id) AS messages
         FROM mailboxes mb WHERE mb.account_id = ? ORDER BY mb.id`,
      )
      .all(account.id) as Row[];
    return rows.map(toMailbox);
  }

  async addAlias(address: string, target: string): Promise<void> {
    const domainId = this.domainId(address.startsWith('@') ? address.slice(1) : domainOf(address));
    const r = this.db
      .prepare('INSERT INTO aliases (address, target, domain_id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (address, target) DO NOTHING')
      .run(address, target, domainId, Date.now());
    if (r.changes === 0) throw new ConflictError(`alias ${address} -> ${target} already exists`);
  }

  async listAliases(): Promise<AliasRow[]> {
    return this.sql('SELECT address, target FROM aliases ORDER BY address, target').all() as AliasRow[];
  }

  async aliasTargets(address: string): Promise<string[]> {
    return this.sql('SELECT target FROM aliases WHERE address = ? ORDER BY target').pluck().all(address) as string[];
  }

  async deleteAlias(address: string, target?: string): Promise<void> {
    const r = target
      ? this.sql('DELETE FROM aliases WHERE address = ? AND target = ?').run(address, target)
      : this.sql('DELETE FROM aliases WHERE address = ?').run(address);
    if (r.changes === 0) throw new NotFoundError(`alias ${address}${target ? ` -> ${target}` : ''} does not exist`);
  }

  async getSetting(key: string): Promise<string | null> {
    const v = this.sql('SELECT value FROM settings WHERE key = ?').pluck().get(key);
    return v === undefined ? null : String(v);
  }

  async setSetting(key: string, value: string): Promise<void> {
    this.sql('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  deliver(delivery: NewDelivery): Promise<DeliveredEntry[]> {
    if (delivery.accountIds.length === 0) return Promise.reject(new UserError('a delivery needs at least one recipient'));
    return this.commits.submit(delivery);
  }

  async listMessages(address: string, mailbox = 'INBOX'): Promise<StoredMessage[]> {
    const rows = this.db
      .prepare(
        `SELECT m.*, mb.name AS mailbox FROM messages m
         JOIN mailboxes mb ON mb.id = m.mailbox_id JOIN accounts a ON a.id = mb.account_id
         WHERE a.address = ? AND mb.name = ? ORDER BY m.uid`,
      )
      .all(address, mailbox) as Row[];
    return rows.map(toStoredMessage);
  }

  async readBlob(hash: string): Promise<Buffer | null> {
    const data = this.sql('SELECT data FROM blobs WHERE hash = ?').pluck().get(hash);
    return data === undefined ? null : (data as Buffer);
  }

  async stats(): Promise<StoreStats> {
    const count = (sql: string) => Number(this.sql(sql).pluck().get());
    const accounts = this.db
      .prepare(
        `SELECT a.address, count(m.id) AS messages FROM accounts a
         LEFT JOIN mailboxes mb ON mb.account_id = a.id LEFT JOIN messages m ON m.mailbox_id = mb.id
         GROUP BY a.id ORDER BY a.address`,
      )
      .all() as Row[];
    return {
      messages: count('SELECT count(*) FROM messages'),
      blobs: count('SELECT count(*) FROM blobs'),
      domains: count('SELECT count(*) FROM domains'),
      accounts: accounts.map((r) => ({ address: String(r.address), messages: Number(r.messages) })),
    };
  }

  async checkIntegrity(): Promise<string[]> {
    const problems = (this.sql('PRAGMA integrity_check').pluck().all() as string[]).filter((s) => s !== 'ok');
    const fk = this.sql('PRAGMA foreign_key_check').all() as Row[];
    for (const r of fk) problems.push(`foreign key violation in ${String(r.table)} row ${String(r.rowid)}`);
    for (const check of INTEGRITY_CHECKS) {
      for (const r of this.sql(check.sql).all() as Row[]) problems.push(check.describe(r));
    }
    return problems;
  }

  async close(): Promise<void> {
    await this.commits.drain();
    await this.writer.close();
    this.db.close();
  }
}
