/**
 * Every mutation of the store, as typed operations written once in SQL both backends run
 * (sql/sql.ts). The backends group operations into one transaction per commit and run
 * each in its own savepoint (sql/batch.ts), so a failing operation never fails its
 * neighbours.
 *
 * Lock order (PostgreSQL; SQLite has one writer): accounts → mailboxes → blobs, each by
 * key. Operations touch rows in that order, and a batch of deliveries takes all its locks
 * in that order before it writes (postgres/index.ts), so two batches cannot deadlock.
 */
import { ConflictError, NotFoundError, QuotaExceededError, UserError } from '../../errors.js';
import { domainOf } from '../../mail/address.js';
import {
  DEFAULT_MAILBOXES,
  type Account,
  type ApiKey,
  type Suppression,
  type BlobStructure,
  type DkimKey,
  type DeliveryOutcome,
  type Domain,
  type Expunged,
  type FlagUpdate,
  type Mailbox,
  type NewAccount,
  type NewDelivery,
  type SystemFlag,
} from '../store.js';
import { deliverMany } from './deliver.js';
import { FLAG_COLUMNS, flagList, parseFlags, systemFlagsOf } from './flags.js';
import { toAccount, toApiKey, toDkimKey, toMailbox } from './rows.js';
import { one, placeholders, type Row, type Sql } from './sql.js';
import { insertSearchFields } from './search-fields.js';
import { countHashes, releaseBlobs } from './blob-references.js';
import { insertSuppressions, QUEUE_OPS } from './queue.js';
import { WEBHOOK_OPS } from './webhooks.js';
import { GUARD_OPS } from './guard.js';
import { REPORT_OPS } from './reports.js';
import { IMPORT_OPS } from './import.js';

async function domainId(sql: Sql, name: string): Promise<number> {
  const r = await one(sql, 'SELECT id FROM domains WHERE name = ?', [name]);
  if (!r) throw new NotFoundError(`domain ${name} does not exist (add it with: tern domain add ${name})`);
  return Number(r.id);
}

async function accountByAddress(sql: Sql, address: string): Promise<Row> {
  const r = await one(sql, 'SELECT * FROM accounts WHERE address = ?', [address]);
  if (!r) throw new NotFoundError(`account ${address} does not exist`);
  return r;
}

async function mailboxById(sql: Sql, id: number): Promise<Row> {
  const r = await one(sql, 'SELECT * FROM mailboxes WHERE id = ?', [id]);
  if (!r) throw new NotFoundError(`mailbox ${id} does not exist`);
  return r;
}

/** Takes the account's row lock first (PostgreSQL), keeping the lock order of the header. */
async function lockAccount(sql: Sql, accountId: unknown): Promise<void> {
  if (sql.dialect === 'postgres') await sql.all('SELECT id FROM accounts WHERE id = ? FOR UPDATE', [accountId]);
}

async function nextUidValidity(sql: Sql): Promise<number> {
  const r = await one(sql, "UPDATE counters SET value = value + 1 WHERE name = 'uidvalidity' RETURNING value");
  return Number(r!.value);
}

async function insertMailbox(sql: Sql, accountId: number, name: string, specialUse: string | null): Promise<Mailbox> {
  const uidValidity = await nextUidValidity(sql);
  const rows = await sql.all(
    'INSERT INTO mailboxes (account_id, name, special_use, uidvalidity) VALUES (?, ?, ?, ?) ON CONFLICT (account_id, name) DO NOTHING RETURNING *',
    [accountId, name, specialUse, uidValidity],
  );
  if (rows.length === 0) throw new ConflictError(`mailbox ${name} already exists`);
  await sql.run('INSERT INTO subscriptions (account_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING', [accountId, name]);
  return toMailbox(rows[0]!);
}

/** Removes message rows (already selected, with size/seen/blob_hash), fixing counters, tombstones and blob references. */
async function removeMessages(sql: Sql, mailbox: Row, rows: Row[], tombstoneModseq: number | null): Promise<void> {
  if (rows.length === 0) return;
  const bytes = rows.reduce((n, r) => n + Number(r.size), 0);
  const unseen = rows.filter((r) => !Number(r.seen)).length;
  await sql.run('UPDATE accounts SET used_bytes = used_bytes - ? WHERE id = ?', [bytes, mailbox.account_id]);
  await sql.run('UPDATE mailboxes SET messages = messages - ?, unseen = unseen - ?, bytes = bytes - ? WHERE id = ?', [rows.length, unseen, bytes, mailbox.id]);
  for (let i = 0; i < rows.length; i += 500) {
    const ids = rows.slice(i, i + 500).map((r) => Number(r.id));
    await sql.run(`DELETE FROM messages WHERE id IN (${placeholders(ids.length)})`, ids);
  }
  if (tombstoneModseq !== null) {
    for (const r of rows) {
      await sql.run('INSERT INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', [mailbox.id, r.uid, tombstoneModseq]);
    }
  }
  await releaseBlobs(sql, countHashes(rows));
}

async function selectByUids(sql: Sql, mailboxId: number, uids: number[], columns = '*'): Promise<Row[]> {
  const out: Row[] = [];
  const unique = [...new Set(uids)].sort((a, b) => a - b);
  for (let i = 0; i < unique.length; i += 500) {
    const part = unique.slice(i, i + 500);
    out.push(
      ...(await sql.all(`SELECT ${columns} FROM messages WHERE mailbox_id = ? AND uid IN (${placeholders(part.length)}) ORDER BY uid`, [mailboxId, ...part])),
    );
  }
  return out;
}

async function bumpModseq(sql: Sql, mailboxId: number): Promise<number> {
  const r = await one(sql, 'UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ? RETURNING highestmodseq', [mailboxId]);
  return Number(r!.highestmodseq);
}

/** Charges `bytes` to the account if its quota allows, in one statement against the maintained counter. */
async function chargeQuota(sql: Sql, accountId: unknown, bytes: number): Promise<boolean> {
  const charged = await one(
    sql,
    'UPDATE accounts SET used_bytes = used_bytes + ? WHERE id = ? AND (quota_bytes IS NULL OR used_bytes + ? <= quota_bytes) RETURNING id',
    [bytes, accountId, bytes],
  );
  return charged !== undefined;
}

/** Takes the mailbox's next uid and modseq for one new message and counts it (messages, unseen, bytes). */
async function nextSlot(sql: Sql, mailboxId: unknown, seen: boolean, size: number): Promise<{ uid: number; modseq: number }> {
  const r = (await one(
    sql,
    `UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1, messages = messages + 1,
       unseen = unseen + ?, bytes = bytes + ? WHERE id = ? RETURNING uidnext - 1 AS uid, highestmodseq`,
    [seen ? 0 : 1, size, mailboxId],
  ))!;
  return { uid: Number(r.uid), modseq: Number(r.highestmodseq) };
}

/** Commits one delivery (several at once: sql/deliver.ts, which batch.ts uses for runs of deliveries). */
async function deliver(sql: Sql, d: NewDelivery): Promise<DeliveryOutcome[]> {
  const [result] = await deliverMany(sql, [d]);
  if (!result!.ok) throw result!.error;
  return result!.outcomes;
}

async function keywordsById(sql: Sql, ids: number[]): Promise<Map<number, Set<string>>> {
  const out = new Map<number, Set<string>>();
  for (let i = 0; i < ids.length; i += 500) {
    const part = ids.slice(i, i + 500);
    for (const k of await sql.all(`SELECT message_id, keyword FROM keywords WHERE message_id IN (${placeholders(part.length)})`, part)) {
      const id = Number(k.message_id);
      if (!out.has(id)) out.set(id, new Set());
      out.get(id)!.add(String(k.keyword));
    }
  }
  return out;
}

/**
 * Sets flags set-wise: messages are grouped by their resulting system flags (one UPDATE per
 * group and 500 ids), keywords removed per keyword and added in multi-row inserts, so
 * STORE on a whole mailbox costs a few statements per 500 messages.
 */
async function setFlags(
  sql: Sql,
  a: { mailboxId: number; uids: number[]; mode: 'add' | 'remove' | 'replace'; flags: string[]; unchangedSince?: number | null },
): Promise<FlagUpdate> {
  const wanted = parseFlags(a.flags);
  const mailbox = await mailboxById(sql, a.mailboxId);
  await lockAccount(sql, mailbox.account_id); // before reading the flags it rewrites: a concurrent change is not lost
  const rows = await selectByUids(sql, a.mailboxId, a.uids, `id, uid, modseq, ${Object.values(FLAG_COLUMNS).join(', ')}`);
  const oldKeywords = await keywordsById(
    sql,
    rows.map((r) => Number(r.id)),
  );
  const modified: number[] = [];
  const changes: Array<{ id: number; uid: number; system: Set<SystemFlag>; keywords: Set<string>; seenBefore: boolean }> = [];
  for (const row of rows) {
    if (a.unchangedSince != null && Number(row.modseq) > a.unchangedSince) {
      modified.push(Number(row.uid));
      continue;
    }
    const before = systemFlagsOf(row);
    const old = oldKeywords.get(Number(row.id)) ?? new Set<string>();
    const system = a.mode === 'replace' ? new Set(wanted.system) : new Set(before);
    const keywords = a.mode === 'replace' ? new Set(wanted.keywords) : new Set(old);
    if (a.mode !== 'replace') {
      for (const f of wanted.system) {
        if (a.mode === 'add') system.add(f);
        else system.delete(f);
      }
      for (const k of wanted.keywords) {
        if (a.mode === 'add') keywords.add(k);
        else keywords.delete(k);
      }
    }
    const same = system.size === before.size && [...system].every((f) => before.has(f)) && keywords.size === old.size && [...keywords].every((k) => old.has(k));
    if (!same) changes.push({ id: Number(row.id), uid: Number(row.uid), system, keywords, seenBefore: before.has('\\Seen') });
  }
  if (changes.length === 0) return { changes: [], modified };
  const modseq = await bumpModseq(sql, Number(mailbox.id));
  const cols = Object.entries(FLAG_COLUMNS) as Array<[SystemFlag, string]>;
  const byPattern = new Map<string, number[]>();
  for (const c of changes) {
    const pattern = cols.map(([f]) => (c.system.has(f) ? 1 : 0)).join('');
    if (!byPattern.has(pattern)) byPattern.set(pattern, []);
    byPattern.get(pattern)!.push(c.id);
  }
  for (const [pattern, ids] of byPattern) {
    for (let i = 0; i < ids.length; i += 500) {
      const part = ids.slice(i, i + 500);
      await sql.run(`UPDATE messages SET modseq = ?, ${cols.map(([, col]) => `${col} = ?`).join(', ')} WHERE id IN (${placeholders(part.length)})`, [
        modseq,
        ...[...pattern].map(Number),
        ...part,
      ]);
    }
  }
  const removed = new Map<string, number[]>();
  const added: Array<[number, string]> = [];
  for (const c of changes) {
    const old = oldKeywords.get(c.id) ?? new Set<string>();
    for (const k of old) if (!c.keywords.has(k)) removed.set(k, [...(removed.get(k) ?? []), c.id]);
    for (const k of c.keywords) if (!old.has(k)) added.push([c.id, k]);
  }
  for (const [keyword, ids] of removed) {
    for (let i = 0; i < ids.length; i += 500) {
      const part = ids.slice(i, i + 500);
      await sql.run(`DELETE FROM keywords WHERE keyword = ? AND message_id IN (${placeholders(part.length)})`, [keyword, ...part]);
    }
  }
  for (let i = 0; i < added.length; i += 400) {
    const part = added.slice(i, i + 400);
    await sql.run(`INSERT INTO keywords (message_id, keyword) VALUES ${part.map(() => '(?, ?)').join(', ')}`, part.flat());
  }
  const unseenDelta = changes.reduce((n, c) => n + Number(c.seenBefore) - Number(c.system.has('\\Seen')), 0);
  if (unseenDelta !== 0) await sql.run('UPDATE mailboxes SET unseen = unseen + ? WHERE id = ?', [unseenDelta, mailbox.id]);
  return { changes: changes.map((c) => ({ uid: c.uid, modseq, flags: flagList(c.system, c.keywords) })), modified };
}

/** Renames a mailbox and the mailboxes below it; renaming INBOX moves its messages to a new mailbox instead (RFC 3501 6.3.5). */
async function renameMailbox(sql: Sql, a: { accountId: number; from: string; to: string }): Promise<void> {
  await lockAccount(sql, a.accountId);
  const source = await one(sql, 'SELECT * FROM mailboxes WHERE account_id = ? AND name = ?', [a.accountId, a.from]);
  if (!source) throw new NotFoundError(`mailbox ${a.from} does not exist`);
  if (await one(sql, 'SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?', [a.accountId, a.to]))
    throw new ConflictError(`mailbox ${a.to} already exists`);
  if (a.from === 'INBOX') {
    const target = await insertMailbox(sql, a.accountId, a.to, null);
    const uids = (await sql.all('SELECT uid FROM messages WHERE mailbox_id = ?', [source.id])).map((r) => Number(r.uid));
    if (uids.length > 0) await copy(sql, { mailboxId: Number(source.id), uids, targetMailboxId: target.id, move: true });
    return;
  }
  if (a.to.startsWith(`${a.from}/`)) throw new UserError('a mailbox cannot be moved below itself');
  const prefix = `${a.from}/`;
  const family = (await sql.all('SELECT id, name FROM mailboxes WHERE account_id = ?', [a.accountId])).filter(
    (r) => r.name === a.from || String(r.name).startsWith(prefix),
  );
  for (const r of family) {
    const name = a.to + String(r.name).slice(a.from.length);
    if (r.name !== a.from && (await one(sql, 'SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?', [a.accountId, name]))) {
      throw new ConflictError(`mailbox ${name} already exists`);
    }
    await sql.run('UPDATE mailboxes SET name = ? WHERE id = ?', [name, r.id]);
    if (await sql.run('DELETE FROM subscriptions WHERE account_id = ? AND name = ?', [a.accountId, r.name])) {
      await sql.run('INSERT INTO subscriptions (account_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING', [a.accountId, name]);
    }
  }
}

async function expunge(sql: Sql, a: { mailboxId: number; uids: number[] }): Promise<Expunged[]> {
  const mailbox = await mailboxById(sql, a.mailboxId);
  await lockAccount(sql, mailbox.account_id);
  const rows = await selectByUids(sql, a.mailboxId, a.uids, 'id, uid, size, seen, blob_hash');
  if (rows.length === 0) return [];
  const modseq = await bumpModseq(sql, a.mailboxId);
  await removeMessages(sql, mailbox, rows, modseq);
  return rows.map((r) => ({ uid: Number(r.uid), modseq }));
}

async function copy(sql: Sql, a: { mailboxId: number; uids: number[]; targetMailboxId: number; move: boolean }): Promise<Array<[number, number]>> {
  const source = await mailboxById(sql, a.mailboxId);
  const target = await mailboxById(sql, a.targetMailboxId);
  if (source.account_id !== target.account_id) throw new UserError('messages can only be copied between mailboxes of one account');
  await lockAccount(sql, source.account_id);
  const rows = await selectByUids(sql, a.mailboxId, a.uids);
  if (rows.length === 0) return [];
  const bytes = rows.reduce((n, r) => n + Number(r.size), 0);
  if (!a.move) {
    if (!(await chargeQuota(sql, source.account_id, bytes))) throw new QuotaExceededError('the copy would exceed the mailbox quota');
  }
  const pairs: Array<[number, number]> = [];
  const cols = Object.values(FLAG_COLUMNS);
  for (const r of rows) {
    const slot = await nextSlot(sql, target.id, Boolean(Number(r.seen)), Number(r.size));
    const inserted = (await one(
      sql,
      `INSERT INTO messages (mailbox_id, uid, modseq, internal_date, size, blob_hash, prefix, tern_id, envelope_from, ${cols.join(', ')})
       SELECT ?, ?, ?, internal_date, size, blob_hash, prefix, tern_id, envelope_from, ${cols.join(', ')} FROM messages WHERE id = ? RETURNING id`,
      [target.id, slot.uid, slot.modseq, r.id],
    ))!;
    await sql.run('INSERT INTO keywords (message_id, keyword) SELECT ?, keyword FROM keywords WHERE message_id = ?', [inserted.id, r.id]);
    pairs.push([Number(r.uid), slot.uid]);
  }
  for (const [hash, n] of countHashes(rows)) await sql.run('UPDATE blobs SET refcount = refcount + ? WHERE hash = ?', [n, hash]);
  if (a.move) {
    const modseq = await bumpModseq(sql, a.mailboxId);
    await sql.run('UPDATE accounts SET used_bytes = used_bytes + ? WHERE id = ?', [bytes, source.account_id]); // removeMessages takes it off again
    await removeMessages(sql, source, rows, modseq);
  }
  return pairs;
}

async function deleteMailboxRows(sql: Sql, mailbox: Row): Promise<void> {
  const rows = await sql.all('SELECT id, uid, size, seen, blob_hash FROM messages WHERE mailbox_id = ?', [mailbox.id]);
  await removeMessages(sql, mailbox, rows, null);
  await sql.run('DELETE FROM expunged WHERE mailbox_id = ?', [mailbox.id]);
  await sql.run('DELETE FROM mailboxes WHERE id = ?', [mailbox.id]);
}

/** The operations, by name. Each takes the transaction's Sql and one argument object. */
export const WRITE_OPS = {
  async addDomain(sql: Sql, a: { name: string }): Promise<Domain> {
    const now = Date.now();
    const rows = await sql.all('INSERT INTO domains (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING RETURNING id', [a.name, now]);
    if (rows.length === 0) throw new ConflictError(`domain ${a.name} already exists`);
    return { name: a.name, createdAt: new Date(now) };
  },

  async deleteDomain(sql: Sql, a: { name: string }): Promise<void> {
    const id = await domainId(sql, a.name);
    const r = (await one(
      sql,
      'SELECT (SELECT count(*) FROM accounts WHERE domain_id = ?) AS accounts, (SELECT count(*) FROM aliases WHERE domain_id = ?) AS aliases',
      [id, id],
    ))!;
    if (Number(r.accounts) || Number(r.aliases)) {
      throw new ConflictError(`domain ${a.name} still has ${Number(r.accounts)} account(s) and ${Number(r.aliases)} alias(es); delete them first`);
    }
    await sql.run('DELETE FROM dkim_keys WHERE domain = ?', [a.name]);
    // Its API keys can do nothing once the domain is gone: revoked with it (kept, for the record); its webhooks go with it.
    await sql.run('UPDATE api_keys SET revoked_at = ? WHERE domain = ? AND revoked_at IS NULL', [Date.now(), a.name]);
    await sql.run('DELETE FROM webhook_deliveries WHERE webhook_id IN (SELECT id FROM webhooks WHERE domain = ?)', [a.name]);
    await sql.run('DELETE FROM webhooks WHERE domain = ?', [a.name]);
    await sql.run('DELETE FROM domains WHERE id = ?', [id]);
  },

  async addAccount(sql: Sql, a: NewAccount): Promise<Account> {
    const dom = await domainId(sql, domainOf(a.address));
    const now = Date.now();
    const rows = await sql.all(
      `INSERT INTO accounts (address, domain_id, password_hash, is_admin, quota_bytes, used_bytes, created_at)
       VALUES (?, ?, ?, ?, ?, 0, ?) ON CONFLICT (address) DO NOTHING RETURNING *`,
      [a.address, dom, a.passwordHash, a.isAdmin ? 1 : 0, a.quotaBytes ?? null, now],
    );
    if (rows.length === 0) throw new ConflictError(`account ${a.address} already exists`);
    const account = toAccount(rows[0]!);
    for (const mb of DEFAULT_MAILBOXES) await insertMailbox(sql, account.id, mb.name, mb.specialUse);
    return account;
  },

  async setPasswordHash(sql: Sql, a: { address: string; passwordHash: string }): Promise<void> {
    if ((await sql.run('UPDATE accounts SET password_hash = ? WHERE address = ?', [a.passwordHash, a.address])) === 0) {
      throw new NotFoundError(`account ${a.address} does not exist`);
    }
  },

  async setQuota(sql: Sql, a: { address: string; quotaBytes: number | null }): Promise<void> {
    if ((await sql.run('UPDATE accounts SET quota_bytes = ? WHERE address = ?', [a.quotaBytes, a.address])) === 0) {
      throw new NotFoundError(`account ${a.address} does not exist`);
    }
  },

  async setAdmin(sql: Sql, a: { address: string; isAdmin: boolean }): Promise<void> {
    if ((await sql.run('UPDATE accounts SET is_admin = ? WHERE address = ?', [a.isAdmin ? 1 : 0, a.address])) === 0) {
      throw new NotFoundError(`account ${a.address} does not exist`);
    }
  },

  async deleteAccount(sql: Sql, a: { address: string }): Promise<void> {
    const account = await accountByAddress(sql, a.address);
    await lockAccount(sql, account.id); // before listing its blobs: a delivery committing meanwhile is counted
    const hashes = await sql.all('SELECT m.blob_hash FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id WHERE mb.account_id = ?', [account.id]);
    await sql.run('DELETE FROM accounts WHERE id = ?', [account.id]); // mailboxes, messages, keywords, subscriptions cascade
    await releaseBlobs(sql, countHashes(hashes));
  },

  async addAlias(sql: Sql, a: { address: string; target: string }): Promise<void> {
    const dom = await domainId(sql, a.address.startsWith('@') ? a.address.slice(1) : domainOf(a.address));
    const rows = await sql.all(
      'INSERT INTO aliases (address, target, domain_id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (address, target) DO NOTHING RETURNING id',
      [a.address, a.target, dom, Date.now()],
    );
    if (rows.length === 0) throw new ConflictError(`alias ${a.address} -> ${a.target} already exists`);
  },

  async deleteAlias(sql: Sql, a: { address: string; target?: string }): Promise<void> {
    const n = a.target
      ? await sql.run('DELETE FROM aliases WHERE address = ? AND target = ?', [a.address, a.target])
      : await sql.run('DELETE FROM aliases WHERE address = ?', [a.address]);
    if (n === 0) throw new NotFoundError(`alias ${a.address}${a.target ? ` -> ${a.target}` : ''} does not exist`);
  },

  async addApiKey(sql: Sql, a: Omit<ApiKey, 'createdAt' | 'lastUsedAt' | 'revokedAt'>): Promise<ApiKey> {
    if (a.domain !== null) await domainId(sql, a.domain);
    const rows = await sql.all(
      `INSERT INTO api_keys (id, secret_hash, scopes, domain, description, rate_per_minute, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING *`,
      [a.id, a.secretHash, a.scopes.join(','), a.domain, a.description, a.ratePerMinute, Date.now()],
    );
    if (rows.length === 0) throw new ConflictError(`API key ${a.id} already exists`);
    return toApiKey(rows[0]!);
  },

  async claimIdempotency(
    sql: Sql,
    a: { keyId: string; idemKey: string; requestHash: string; expiredBefore: number; now: number },
  ): Promise<{ state: 'new' } | { state: 'pending'; requestHash: string } | { state: 'done'; requestHash: string; status: number; response: string }> {
    await sql.run('DELETE FROM idempotency WHERE key_id = ? AND idem_key = ? AND created_at < ?', [a.keyId, a.idemKey, a.expiredBefore]);
    const inserted = await sql.run(
      'INSERT INTO idempotency (key_id, idem_key, request_hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (key_id, idem_key) DO NOTHING',
      [a.keyId, a.idemKey, a.requestHash, a.now],
    );
    if (inserted > 0) return { state: 'new' };
    const r = (await one(sql, 'SELECT request_hash, status, response FROM idempotency WHERE key_id = ? AND idem_key = ?', [a.keyId, a.idemKey]))!;
    const requestHash = String(r.request_hash);
    return r.status === null ? { state: 'pending', requestHash } : { state: 'done', requestHash, status: Number(r.status), response: String(r.response) };
  },

  async finishIdempotency(sql: Sql, a: { keyId: string; idemKey: string; status: number; response: string }): Promise<void> {
    await sql.run('UPDATE idempotency SET status = ?, response = ? WHERE key_id = ? AND idem_key = ?', [a.status, a.response, a.keyId, a.idemKey]);
  },

  async dropIdempotency(sql: Sql, a: { keyId: string; idemKey: string }): Promise<void> {
    await sql.run('DELETE FROM idempotency WHERE key_id = ? AND idem_key = ? AND status IS NULL', [a.keyId, a.idemKey]);
  },

  async purgeIdempotency(sql: Sql, a: { before: number }): Promise<number> {
    return sql.run('DELETE FROM idempotency WHERE created_at < ?', [a.before]);
  },

  async addSuppressions(sql: Sql, a: { entries: Array<Pick<Suppression, 'address' | 'source' | 'reason'>>; now: number }): Promise<number> {
    return insertSuppressions(sql, a.entries, a.now);
  },

  async deleteSuppression(sql: Sql, a: { address: string }): Promise<void> {
    if ((await sql.run('DELETE FROM suppressions WHERE address = ?', [a.address])) === 0) throw new NotFoundError(`${a.address} is not suppressed`);
  },

  async touchApiKey(sql: Sql, a: { id: string; at: number }): Promise<void> {
    await sql.run('UPDATE api_keys SET last_used_at = ? WHERE id = ?', [a.at, a.id]);
  },

  async revokeApiKey(sql: Sql, a: { id: string }): Promise<void> {
    if ((await sql.run('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [Date.now(), a.id])) > 0) return;
    if (!(await one(sql, 'SELECT 1 AS x FROM api_keys WHERE id = ?', [a.id]))) throw new NotFoundError(`API key ${a.id} does not exist`);
  },

  async addDkimKey(sql: Sql, a: Omit<DkimKey, 'createdAt' | 'activatedAt' | 'retireAt'>): Promise<DkimKey> {
    await domainId(sql, a.domain);
    const now = Date.now();
    const rows = await sql.all(
      `INSERT INTO dkim_keys (domain, selector, algorithm, private_key, public_key, state, created_at, activated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (domain, selector) DO NOTHING RETURNING *`,
      [a.domain, a.selector, a.algorithm, a.privateKey, a.publicKey, a.state, now, a.state === 'active' ? now : null],
    );
    if (rows.length === 0) throw new ConflictError(`DKIM selector ${a.selector} already exists for ${a.domain}`);
    return toDkimKey(rows[0]!);
  },

  async activateDkimKey(sql: Sql, a: { domain: string; selector: string; retireAt: number }): Promise<void> {
    const key = await one(sql, 'SELECT algorithm FROM dkim_keys WHERE domain = ? AND selector = ?', [a.domain, a.selector]);
    if (!key) throw new NotFoundError(`DKIM selector ${a.selector} of ${a.domain} does not exist`);
    await sql.run("UPDATE dkim_keys SET state = 'retiring', retire_at = ? WHERE domain = ? AND algorithm = ? AND state = 'active' AND selector <> ?", [
      a.retireAt,
      a.domain,
      key.algorithm,
      a.selector,
    ]);
    await sql.run("UPDATE dkim_keys SET state = 'active', activated_at = ?, retire_at = NULL WHERE domain = ? AND selector = ?", [
      Date.now(),
      a.domain,
      a.selector,
    ]);
  },

  async deleteDkimKey(sql: Sql, a: { domain: string; selector: string }): Promise<void> {
    if ((await sql.run('DELETE FROM dkim_keys WHERE domain = ? AND selector = ?', [a.domain, a.selector])) === 0) {
      throw new NotFoundError(`DKIM selector ${a.selector} of ${a.domain} does not exist`);
    }
  },

  async setSetting(sql: Sql, a: { key: string; value: string }): Promise<void> {
    await sql.run('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [a.key, a.value]);
  },

  async deleteSetting(sql: Sql, a: { key: string }): Promise<void> {
    if ((await sql.run('DELETE FROM settings WHERE key = ?', [a.key])) === 0) throw new NotFoundError(`setting ${a.key} does not exist`);
  },

  async addToSetting(sql: Sql, a: { key: string; by: number }): Promise<number> {
    // One statement: on PostgreSQL, nodes adding at once are serialised by the row lock.
    const row = await one(
      sql,
      'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(settings.value AS BIGINT) + CAST(? AS BIGINT) AS TEXT) RETURNING value',
      [a.key, String(a.by), a.by],
    );
    return Number(row!.value);
  },

  async initSetting(sql: Sql, a: { key: string; value: string }): Promise<string> {
    await sql.run('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING', [a.key, a.value]);
    return String((await one(sql, 'SELECT value FROM settings WHERE key = ?', [a.key]))!.value);
  },

  async createMailbox(sql: Sql, a: { accountId: number; name: string; specialUse: string | null }): Promise<Mailbox> {
    if (!(await one(sql, 'SELECT 1 FROM accounts WHERE id = ?', [a.accountId]))) throw new NotFoundError(`account ${a.accountId} does not exist`);
    return insertMailbox(sql, a.accountId, a.name, a.specialUse);
  },

  async deleteMailbox(sql: Sql, a: { accountId: number; name: string }): Promise<void> {
    if (a.name.toUpperCase() === 'INBOX') throw new UserError('INBOX cannot be deleted');
    const mailbox = await one(sql, 'SELECT * FROM mailboxes WHERE account_id = ? AND name = ?', [a.accountId, a.name]);
    if (!mailbox) throw new NotFoundError(`mailbox ${a.name} does not exist`);
    await lockAccount(sql, a.accountId);
    await deleteMailboxRows(sql, mailbox);
  },

  async subscribe(sql: Sql, a: { accountId: number; name: string }): Promise<void> {
    await sql.run('INSERT INTO subscriptions (account_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING', [a.accountId, a.name]);
  },

  async unsubscribe(sql: Sql, a: { accountId: number; name: string }): Promise<void> {
    await sql.run('DELETE FROM subscriptions WHERE account_id = ? AND name = ?', [a.accountId, a.name]);
  },

  ...QUEUE_OPS,
  ...WEBHOOK_OPS,
  ...GUARD_OPS,
  ...REPORT_OPS,
  ...IMPORT_OPS,
  deliver,
  setFlags,
  renameMailbox,
  expunge,
  copy,

  async stage(sql: Sql, a: { upload: string; seq: number; data: Buffer }): Promise<void> {
    await sql.run('INSERT INTO blob_chunks (upload, seq, data, created_at) VALUES (?, ?, ?, ?)', [a.upload, a.seq, a.data, Date.now()]);
  },

  async discard(sql: Sql, a: { upload: string }): Promise<void> {
    // Only chunks no blob refers to: a committed upload belongs to its blob now.
    await sql.run('DELETE FROM blob_chunks WHERE upload = ? AND NOT EXISTS (SELECT 1 FROM blobs WHERE blobs.upload = ?)', [a.upload, a.upload]);
  },

  /**
   * Stores parsed structures (the backfill of bodies stored without one). Only blobs still
   * lacking one are written, so nodes backfilling at once agree; returns how many were.
   */
  async setStructure(sql: Sql, a: { blobs: Array<{ hash: string } & BlobStructure> }): Promise<number> {
    let n = 0;
    for (const b of [...a.blobs].sort((x, y) => (x.hash < y.hash ? -1 : x.hash > y.hash ? 1 : 0))) {
      const marked = await sql.run('UPDATE blobs SET parsed = 1 WHERE hash = ? AND parsed = 0', [b.hash]);
      if (marked > 0) {
        await sql.run('INSERT INTO blob_structures (hash, structure, search_text, search_headers) VALUES (?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING', [
          b.hash,
          b.json,
          b.text,
          b.headers,
        ]);
        await insertSearchFields(sql, [{ hash: b.hash, headers: b.headers }]);
      }
      n += marked;
    }
    return n;
  },

  /** Removes staged chunks that no blob refers to and that are older than `before` (crashes, dropped connections). */
  async collectUploads(sql: Sql, a: { before: number }): Promise<number> {
    return sql.run('DELETE FROM blob_chunks WHERE created_at < ? AND NOT EXISTS (SELECT 1 FROM blobs WHERE blobs.upload = blob_chunks.upload)', [a.before]);
  },
} as const;

export type WriteOps = typeof WRITE_OPS;
export type OpName = keyof WriteOps;
export type OpArgs<K extends OpName> = Parameters<WriteOps[K]>[1];
export type OpResult<K extends OpName> = Awaited<ReturnType<WriteOps[K]>>;
/** One operation as it travels to the writer. */
export type WriteOp = { [K in OpName]: { op: K; args: OpArgs<K> } }[OpName];

/** The body bytes an operation carries (a staged chunk, an inline delivery body), if any. */
export function bodyOf(op: WriteOp): Buffer | null {
  if (op.op === 'stage') return op.args.data;
  return op.op === 'deliver' && 'data' in op.args.blob ? op.args.blob.data : null;
}
