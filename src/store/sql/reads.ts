/**
 * Every read of the store, written once in SQL both backends run. On SQLite these run on
 * the reader thread (sqlite/reader-worker.ts); on PostgreSQL on the pool. Results are
 * plain data that survives postMessage.
 */
import { NotFoundError } from '../../errors.js';
import type { AddressLookup, AliasRow, DeliveryOutcome, Expunged, Mailbox, StoreStats, StoredMessage, Suppression } from '../store.js';
import { flagList, systemFlagsOf } from './flags.js';
import { INTEGRITY_CHECKS } from './integrity.js';
import { createMessageReads } from './message-reads.js';
import { createQueueReads } from './queue.js';
import { createWebhookReads } from './webhooks.js';
import { createGuardReads } from './guard.js';
import { createReportReads } from './reports.js';
import { toAccount, toApiKey, toDkimKey, toDomain, toMailbox } from './rows.js';
import { one, placeholders, type Row, type Sql } from './sql.js';

/** Bytes per stored chunk of a large body, and per piece when reading one back. */
export const CHUNK_SIZE = 128 * 1024;

/** ORDER BY a text column the same way on both backends (byte order). */
const collate = (sql: Sql, column: string) => (sql.dialect === 'postgres' ? `${column} COLLATE "C"` : column);

async function toMessages(sql: Sql, rows: Row[]): Promise<StoredMessage[]> {
  const keywords = new Map<number, string[]>();
  for (let i = 0; i < rows.length; i += 500) {
    const ids = rows.slice(i, i + 500).map((r) => Number(r.id));
    for (const k of await sql.all(`SELECT message_id, keyword FROM keywords WHERE message_id IN (${placeholders(ids.length)})`, ids)) {
      const id = Number(k.message_id);
      keywords.set(id, [...(keywords.get(id) ?? []), String(k.keyword)]);
    }
  }
  return rows.map((r) => ({
    id: Number(r.id),
    mailboxId: Number(r.mailbox_id),
    mailbox: String(r.mailbox),
    uid: Number(r.uid),
    modseq: Number(r.modseq),
    flags: flagList(systemFlagsOf(r), keywords.get(Number(r.id)) ?? []),
    internalDate: new Date(Number(r.internal_date)),
    size: Number(r.size),
    hash: String(r.blob_hash),
    ternId: String(r.tern_id),
    envelopeFrom: String(r.envelope_from),
  }));
}

const MESSAGE_COLUMNS =
  'm.id, m.mailbox_id, m.uid, m.modseq, m.internal_date, m.size, m.blob_hash, m.tern_id, m.envelope_from, m.seen, m.answered, m.flagged, m.deleted, m.draft, mb.name AS mailbox';

export function createReads(sql: Sql) {
  return {
    ...createMessageReads(sql),
    ...createQueueReads(sql),
    ...createWebhookReads(sql),
    ...createGuardReads(sql),
    ...createReportReads(sql),
    async listDomains() {
      return (await sql.all(`SELECT name, created_at FROM domains ORDER BY ${collate(sql, 'name')}`)).map(toDomain);
    },
    async dkimKeys(domain?: string) {
      const rows = domain
        ? await sql.all('SELECT * FROM dkim_keys WHERE domain = ? ORDER BY created_at, selector', [domain])
        : await sql.all(`SELECT * FROM dkim_keys ORDER BY ${collate(sql, 'domain')}, created_at, selector`);
      return rows.map(toDkimKey);
    },
    async apiKey(id: string) {
      const r = await one(sql, 'SELECT * FROM api_keys WHERE id = ?', [id]);
      return r ? toApiKey(r) : null;
    },
    async listApiKeys(domain?: string) {
      const rows = domain
        ? await sql.all('SELECT * FROM api_keys WHERE domain = ? ORDER BY created_at, id', [domain])
        : await sql.all('SELECT * FROM api_keys ORDER BY created_at, id');
      return rows.map(toApiKey);
    },
    async listSuppressions(page: { after?: string; limit: number }) {
      const rows = await sql.all('SELECT * FROM suppressions WHERE address > ? ORDER BY address LIMIT ?', [page.after ?? '', page.limit]);
      return rows.map((r) => ({
        address: String(r.address),
        source: r.source as Suppression['source'],
        reason: (r.reason as string | null) ?? '',
        createdAt: new Date(Number(r.created_at)),
      }));
    },
    async suppressed(addresses: string[]) {
      if (addresses.length === 0) return new Set<string>();
      const rows = await sql.all(`SELECT address FROM suppressions WHERE address IN (${placeholders(addresses.length)})`, addresses);
      return new Set(rows.map((r) => String(r.address)));
    },
    async isLocalDomain(name: string) {
      return (await one(sql, 'SELECT 1 AS x FROM domains WHERE name = ?', [name])) !== undefined;
    },
    async listAccounts(domain?: string) {
      const rows = domain
        ? await sql.all(`SELECT a.* FROM accounts a JOIN domains d ON d.id = a.domain_id WHERE d.name = ? ORDER BY ${collate(sql, 'a.address')}`, [domain])
        : await sql.all(`SELECT * FROM accounts ORDER BY ${collate(sql, 'address')}`);
      return rows.map(toAccount);
    },
    async getAccount(address: string) {
      const r = await one(sql, 'SELECT * FROM accounts WHERE address = ?', [address]);
      return r ? toAccount(r) : null;
    },
    async lookup(address: string): Promise<AddressLookup> {
      const domain = address.slice(address.lastIndexOf('@') + 1);
      const [local, targets, account] = await Promise.all([
        one(sql, 'SELECT 1 AS x FROM domains WHERE name = ?', [domain]),
        sql.all(`SELECT target FROM aliases WHERE address = ? ORDER BY ${collate(sql, 'target')}`, [address]),
        one(sql, 'SELECT * FROM accounts WHERE address = ?', [address]),
      ]);
      return { localDomain: local !== undefined, aliasTargets: targets.map((r) => r.target as string), account: account ? toAccount(account) : null };
    },
    async getPasswordHash(address: string) {
      const r = await one(sql, 'SELECT password_hash FROM accounts WHERE address = ?', [address]);
      return r ? String(r.password_hash) : null;
    },
    async listAliases(): Promise<AliasRow[]> {
      const rows = await sql.all(`SELECT address, target FROM aliases ORDER BY ${collate(sql, 'address')}, ${collate(sql, 'target')}`);
      return rows.map((r) => ({ address: String(r.address), target: String(r.target) }));
    },
    async aliasTargets(address: string) {
      return (await sql.all(`SELECT target FROM aliases WHERE address = ? ORDER BY ${collate(sql, 'target')}`, [address])).map((r) => String(r.target));
    },
    async listSettings(prefix: string) {
      const rows = await sql.all(`SELECT key, value FROM settings WHERE substr(key, 1, ?) = ? ORDER BY ${collate(sql, 'key')}`, [prefix.length, prefix]);
      return rows.map((r) => ({ key: String(r.key), value: String(r.value) }));
    },
    async getSetting(key: string) {
      const r = await one(sql, 'SELECT value FROM settings WHERE key = ?', [key]);
      return r ? String(r.value) : null;
    },

    async listMailboxes(accountId: number): Promise<Mailbox[]> {
      return (await sql.all('SELECT * FROM mailboxes WHERE account_id = ? ORDER BY id', [accountId])).map(toMailbox);
    },
    async getMailbox(accountId: number, name: string): Promise<Mailbox | null> {
      const r = await one(sql, 'SELECT * FROM mailboxes WHERE account_id = ? AND name = ?', [accountId, name]);
      return r ? toMailbox(r) : null;
    },
    async subscriptions(accountId: number) {
      return (await sql.all(`SELECT name FROM subscriptions WHERE account_id = ? ORDER BY ${collate(sql, 'name')}`, [accountId])).map((r) => String(r.name));
    },
    async messages(mailboxId: number) {
      return toMessages(
        sql,
        await sql.all(`SELECT ${MESSAGE_COLUMNS} FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id WHERE m.mailbox_id = ? ORDER BY m.uid`, [mailboxId]),
      );
    },
    async messagesOf(address: string, name: string) {
      const account = await one(sql, 'SELECT id FROM accounts WHERE address = ?', [address]);
      if (!account) throw new NotFoundError(`account ${address} does not exist`);
      return toMessages(
        sql,
        await sql.all(
          `SELECT ${MESSAGE_COLUMNS} FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id WHERE mb.account_id = ? AND mb.name = ? ORDER BY m.uid`,
          [account.id, name],
        ),
      );
    },
    async expungedSince(mailboxId: number, sinceModseq: number): Promise<Expunged[]> {
      const rows = await sql.all('SELECT uid, modseq FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid', [mailboxId, sinceModseq]);
      return rows.map((r) => ({ uid: Number(r.uid), modseq: Number(r.modseq) }));
    },
    async findByTernId(ternId: string): Promise<DeliveryOutcome[]> {
      const rows = await sql.all(
        'SELECT m.id, m.uid, m.modseq, m.mailbox_id, mb.account_id FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id WHERE m.tern_id = ? ORDER BY m.id',
        [ternId],
      );
      return rows.map((r) => ({
        status: 'stored',
        accountId: Number(r.account_id),
        mailboxId: Number(r.mailbox_id),
        messageId: Number(r.id),
        uid: Number(r.uid),
        modseq: Number(r.modseq),
      }));
    },
    /** Where a message's bytes are: its prefix and its blob's hash. */
    async messageParts(messageId: number): Promise<{ prefix: Buffer; hash: string } | null> {
      const r = await one(sql, 'SELECT prefix, blob_hash FROM messages WHERE id = ?', [messageId]);
      return r ? { prefix: r.prefix as Buffer, hash: String(r.blob_hash) } : null;
    },
    /** The blob's inline bytes, or how many chunks it has; null when it does not exist. */
    async blobLayout(hash: string): Promise<{ data: Buffer } | { upload: string; chunks: number } | null> {
      const r = await one(sql, 'SELECT upload FROM blobs WHERE hash = ?', [hash]);
      if (!r) return null;
      if (r.upload == null) {
        const [data] = await sql.bytes('SELECT data FROM blobs WHERE hash = ?', [hash]);
        return data ? { data } : null;
      }
      const n = await one(sql, 'SELECT count(*) AS n FROM blob_chunks WHERE upload = ?', [r.upload]);
      return { upload: r.upload as string, chunks: Number(n!.n) };
    },
    async blobChunk(upload: string, seq: number): Promise<Buffer> {
      const [data] = await sql.bytes('SELECT data FROM blob_chunks WHERE upload = ? AND seq = ?', [upload, seq]);
      if (!data) throw new NotFoundError(`chunk ${seq} of upload ${upload} is missing`);
      return data;
    },
    /** The blob's stored structure (JSON) and search text, null until parsed; null when the blob does not exist. */
    async blobStructure(hash: string): Promise<{ structure: string | null; text: string | null } | null> {
      const r = await one(sql, 'SELECT s.structure, s.search_text FROM blobs b LEFT JOIN blob_structures s ON s.hash = b.hash WHERE b.hash = ?', [hash]);
      return r ? { structure: (r.structure as string | null) ?? null, text: (r.search_text as string | null) ?? null } : null;
    },
    /** How many blobs are not parsed yet (the backfill's work; a partial index keeps this cheap). */
    async unparsedBlobCount(): Promise<number> {
      return Number((await one(sql, 'SELECT count(*) AS n FROM blobs WHERE parsed = 0'))!.n);
    },
    /** Up to `limit` hashes of blobs not parsed yet, after `after` in hash order (the backfill's pages). */
    async unparsedBlobs(after: string, limit: number): Promise<string[]> {
      const rows = await sql.all('SELECT hash FROM blobs WHERE parsed = 0 AND hash > ? ORDER BY hash LIMIT ?', [after, limit]);
      return rows.map((r) => String(r.hash));
    },

    async stats(): Promise<StoreStats> {
      const counts = (await one(
        sql,
        'SELECT (SELECT count(*) FROM messages) AS messages, (SELECT count(*) FROM blobs) AS blobs, (SELECT count(*) FROM domains) AS domains',
      ))!;
      const accounts = await sql.all(
        `SELECT a.address, a.used_bytes, coalesce(sum(mb.messages), 0) AS messages FROM accounts a LEFT JOIN mailboxes mb ON mb.account_id = a.id
         GROUP BY a.id, a.address, a.used_bytes ORDER BY ${collate(sql, 'a.address')}`,
      );
      return {
        messages: Number(counts.messages),
        blobs: Number(counts.blobs),
        domains: Number(counts.domains),
        accounts: accounts.map((r) => ({ address: String(r.address), messages: Number(r.messages), usedBytes: Number(r.used_bytes) })),
      };
    },
    async checkIntegrity(): Promise<string[]> {
      const problems: string[] = [];
      for (const check of INTEGRITY_CHECKS) for (const r of await sql.all(check.sql)) problems.push(check.describe(r));
      return problems;
    },
  };
}

export type Reads = ReturnType<typeof createReads>;
export type ReadName = keyof Reads;
