/**
 * Delivery: commits new messages, many deliveries at a time. It reads the accounts and
 * mailboxes a group of deliveries touches, decides every recipient's fate in memory (gone,
 * over quota, refused with its atomic group, stored with its uid and modseq), and then
 * writes the whole group with one statement per table. A batch of N deliveries so costs
 * about six statements instead of five per delivery, which is what matters on PostgreSQL,
 * where every statement is a round trip.
 *
 * Nothing is written for a delivery that fails on its own (no recipients, a named mailbox
 * that does not exist, a bad flag) or that is refused: its result says so and the others
 * go ahead. The caller holds the locks (PostgreSQL: accounts then mailboxes at BEGIN,
 * postgres/index.ts; SQLite: one writer); rows are written in the documented lock order,
 * blobs by hash.
 */
import { ConflictError, NotFoundError, UserError } from '../../errors.js';
import type { DeliveryOutcome, NewDelivery } from '../store.js';
import { FLAG_COLUMNS, parseFlags, type FlagSet } from './flags.js';
import { enqueue, logStored, traceFieldsOf } from './queue.js';
import { oweReceived } from './webhooks.js';
import { insertSearchFields } from './search-fields.js';
import { placeholders, type Sql } from './sql.js';

export type DeliveryResult = { ok: true; outcomes: DeliveryOutcome[] } | { ok: false; error: Error };

/** Rows per multi-row statement (14 parameters per message row stays far below both backends' limits). */
const ROWS_PER_STATEMENT = 200;
/** Inline body bytes per blob statement. */
const BLOB_BYTES_PER_STATEMENT = 4 * 1024 * 1024;

interface AccountState {
  id: number;
  address: string;
  used: number;
  quota: number | null;
  charged: number;
}

interface MailboxState {
  id: number;
  accountId: number;
  name: string;
  uidnext: number;
  /** How far uidnext moved (more than `added` when a delivery gave its own uids: an import). */
  advanced: number;
  modseq: number;
  added: number;
  unseen: number;
  bytes: number;
}

interface MessageRow {
  mailboxId: number;
  uid: number;
  modseq: number;
  size: number;
  prefix: Buffer;
  flags: FlagSet;
  delivery: NewDelivery;
  outcome: Extract<DeliveryOutcome, { status: 'stored' }>;
}

const mailboxKey = (accountId: number, name: string) => `${accountId}\u0000${name}`;

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** `(CAST(? AS BIGINT), …)` rows for a VALUES list of `rows` rows of `width` integers; both backends name its columns column1, column2, … */
const integerRows = (rows: number, width: number) =>
  Array.from({ length: rows }, () => `(${Array.from({ length: width }, () => 'CAST(? AS BIGINT)').join(', ')})`).join(', ');

/** A recipient whose account an earlier recipient already reached shares that outcome (one copy per account). */
function perRecipient(d: NewDelivery, outcomes: DeliveryOutcome[]): DeliveryOutcome[] {
  const first = new Map<number, DeliveryOutcome>();
  return d.recipients.map((r, i) => {
    const o = first.get(r.accountId) ?? outcomes[i]!;
    first.set(r.accountId, o);
    return o;
  });
}

/** True when some recipient group has no account with room and at least one over quota. */
function someGroupRefused(d: NewDelivery, outcomes: DeliveryOutcome[], withRoom: Set<number>): boolean {
  const full = new Set(outcomes.flatMap((o) => (o.status === 'over-quota' ? [o.accountId] : [])));
  const groups = new Map<number, number[]>();
  d.recipients.forEach((r, i) => groups.set(r.group ?? i, [...(groups.get(r.group ?? i) ?? []), r.accountId]));
  return [...groups.values()].some((ids) => !ids.some((id) => withRoom.has(id)) && ids.some((id) => full.has(id)));
}

async function readState(sql: Sql, deliveries: NewDelivery[]): Promise<{ accounts: Map<number, AccountState>; mailboxes: Map<string, MailboxState> }> {
  const accounts = new Map<number, AccountState>();
  const mailboxes = new Map<string, MailboxState>();
  const accountIds = [...new Set(deliveries.flatMap((d) => d.recipients.map((r) => r.accountId)))].sort((a, b) => a - b);
  const names = [...new Set(deliveries.flatMap((d) => d.recipients.map((r) => r.mailbox ?? 'INBOX')))];
  for (const ids of chunks(accountIds, ROWS_PER_STATEMENT)) {
    for (const r of await sql.all(`SELECT id, address, used_bytes, quota_bytes FROM accounts WHERE id IN (${placeholders(ids.length)})`, ids)) {
      accounts.set(Number(r.id), {
        id: Number(r.id),
        address: String(r.address),
        used: Number(r.used_bytes),
        quota: r.quota_bytes == null ? null : Number(r.quota_bytes),
        charged: 0,
      });
    }
    for (const some of chunks(names, ROWS_PER_STATEMENT)) {
      const rows = await sql.all(
        `SELECT id, account_id, name, uidnext, highestmodseq FROM mailboxes WHERE account_id IN (${placeholders(ids.length)}) AND name IN (${placeholders(some.length)})`,
        [...ids, ...some],
      );
      for (const r of rows) {
        const state = {
          id: Number(r.id),
          accountId: Number(r.account_id),
          name: String(r.name),
          uidnext: Number(r.uidnext),
          advanced: 0,
          modseq: Number(r.highestmodseq),
          added: 0,
          unseen: 0,
          bytes: 0,
        };
        mailboxes.set(mailboxKey(state.accountId, String(r.name)), state);
      }
    }
  }
  return { accounts, mailboxes };
}

/** Decides one delivery against the state so far and, unless it is refused, takes its uids and quota from that state. */
function plan(
  d: NewDelivery,
  accounts: Map<number, AccountState>,
  mailboxes: Map<string, MailboxState>,
  rows: MessageRow[],
  queued: NewDelivery[],
): DeliveryResult {
  if (d.recipients.length === 0 && !d.outbound?.domains.length) return { ok: false, error: new UserError('a delivery needs at least one recipient') };
  const outcomes: DeliveryOutcome[] = [];
  const wanted: Array<{ index: number; account: AccountState; mailbox: MailboxState; prefix: Buffer; flags: FlagSet; size: number; uid?: number }> = [];
  const seen = new Set<number>();
  for (const [index, rcpt] of d.recipients.entries()) {
    outcomes.push({ status: 'gone', accountId: rcpt.accountId });
    if (seen.has(rcpt.accountId)) continue;
    seen.add(rcpt.accountId);
    const account = accounts.get(rcpt.accountId);
    const mailbox = account && mailboxes.get(mailboxKey(account.id, rcpt.mailbox ?? 'INBOX'));
    if (!account || !mailbox) {
      if (rcpt.mailbox) return { ok: false, error: new NotFoundError(`mailbox ${rcpt.mailbox} does not exist`) };
      continue; // the account was deleted since RCPT
    }
    let flags: FlagSet;
    try {
      flags = parseFlags(rcpt.flags ?? []);
    } catch (err) {
      return { ok: false, error: err as Error };
    }
    if (rcpt.uid !== undefined && !(Number.isInteger(rcpt.uid) && rcpt.uid >= mailbox.uidnext && rcpt.uid < 2 ** 32)) {
      return { ok: false, error: new ConflictError(`uid ${rcpt.uid} is below the mailbox's UIDNEXT ${mailbox.uidnext}`) };
    }
    const size = rcpt.prefix.length + d.blob.size;
    if (account.quota !== null && account.used + size > account.quota) {
      outcomes[index] = { status: 'over-quota', accountId: account.id };
      continue;
    }
    wanted.push({ index, account, mailbox, prefix: rcpt.prefix, flags, size, uid: rcpt.uid });
  }
  const withRoom = new Set(wanted.map((w) => w.account.id));
  if (d.atomic && someGroupRefused(d, outcomes, withRoom)) {
    const refused = outcomes.map((o): DeliveryOutcome => (o.status === 'over-quota' ? o : { status: 'gone', accountId: o.accountId }));
    return { ok: true, outcomes: perRecipient(d, refused) };
  }
  for (const w of wanted) {
    w.account.used += w.size;
    w.account.charged += w.size;
    const m = w.mailbox;
    const uid = w.uid ?? m.uidnext;
    m.advanced += uid + 1 - m.uidnext;
    m.uidnext = uid + 1;
    const outcome = { status: 'stored' as const, accountId: w.account.id, mailboxId: m.id, messageId: 0, uid, modseq: ++m.modseq };
    m.added++;
    m.bytes += w.size;
    if (!w.flags.system.has('\\Seen')) m.unseen++;
    rows.push({ mailboxId: m.id, uid: outcome.uid, modseq: outcome.modseq, size: w.size, prefix: w.prefix, flags: w.flags, delivery: d, outcome });
    outcomes[w.index] = outcome;
  }
  if (d.outbound?.domains.length) queued.push(d);
  return { ok: true, outcomes: perRecipient(d, outcomes) };
}

/** Adds the group's references (message rows, queue entries) to each body: a new blob row, or more references to an existing one. Staged chunks of a body already stored are deleted. */
async function referenceBlobs(sql: Sql, rows: Array<{ delivery: NewDelivery }>, now: number): Promise<void> {
  const byHash = new Map<string, { delivery: NewDelivery; references: number; uploads: Set<string> }>();
  for (const r of rows) {
    const b = r.delivery.blob;
    const entry = byHash.get(b.hash) ?? { delivery: r.delivery, references: 0, uploads: new Set<string>() };
    entry.references++;
    if ('upload' in b) entry.uploads.add(b.upload);
    byHash.set(b.hash, entry);
  }
  const entries = [...byHash.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const kept = new Map<string, string | null>();
  for (let i = 0; i < entries.length;) {
    const part: typeof entries = [];
    let bytes = 0;
    while (i < entries.length && part.length < ROWS_PER_STATEMENT && (part.length === 0 || bytes < BLOB_BYTES_PER_STATEMENT)) {
      const e = entries[i++]!;
      part.push(e);
      const b = e[1].delivery.blob;
      bytes += ('data' in b ? b.data.length : 0) + (b.structure ? b.structure.json.length + b.structure.text.length + b.structure.headers.length : 0);
    }
    const params = part.flatMap(([hash, e]) => {
      const b = e.delivery.blob;
      // A chunked blob keeps an empty `data`; its bytes are the upload's chunks.
      return [hash, b.size, 'data' in b ? b.data : Buffer.alloc(0), 'upload' in b ? b.upload : null, e.references, now, b.structure ? 1 : 0];
    });
    // A body already stored keeps its row; only a structure it lacks (stored before structures were) is filled in.
    const returned = await sql.all(
      `INSERT INTO blobs (hash, size, data, upload, refcount, created_at, parsed) VALUES ${part.map(() => '(?, ?, ?, ?, ?, ?, ?)').join(', ')}
       ON CONFLICT (hash) DO UPDATE SET refcount = blobs.refcount + excluded.refcount, parsed = CASE WHEN excluded.parsed > blobs.parsed THEN excluded.parsed ELSE blobs.parsed END
       RETURNING hash, upload`,
      params,
    );
    for (const r of returned) kept.set(String(r.hash), (r.upload as string | null) ?? null);
    const parsed = part.filter(([, e]) => e.delivery.blob.structure);
    if (parsed.length > 0) {
      await sql.run(
        `INSERT INTO blob_structures (hash, structure, search_text, search_headers) VALUES ${parsed.map(() => '(?, ?, ?, ?)').join(', ')} ON CONFLICT (hash) DO NOTHING`,
        parsed.flatMap(([hash, e]) => {
          const s = e.delivery.blob.structure!;
          return [hash, s.json, s.text, s.headers];
        }),
      );
      await insertSearchFields(
        sql,
        parsed.map(([hash, e]) => ({ hash, headers: e.delivery.blob.structure!.headers })),
      );
    }
  }
  for (const [hash, e] of entries) {
    for (const upload of e.uploads) if (kept.get(hash) !== upload) await sql.run('DELETE FROM blob_chunks WHERE upload = ?', [upload]);
  }
}

async function insertMessages(sql: Sql, rows: MessageRow[]): Promise<void> {
  const cols = Object.entries(FLAG_COLUMNS);
  const row = `(${placeholders(9 + cols.length)})`;
  const byPlace = new Map(rows.map((r) => [`${r.mailboxId}:${r.uid}`, r]));
  for (const part of chunks(rows, ROWS_PER_STATEMENT)) {
    const params = part.flatMap((r) => [
      r.mailboxId,
      r.uid,
      r.modseq,
      r.delivery.internalDate.getTime(),
      r.size,
      r.delivery.blob.hash,
      r.prefix,
      r.delivery.ternId,
      r.delivery.envelopeFrom,
      ...cols.map(([f]) => (r.flags.system.has(f as never) ? 1 : 0)),
    ]);
    const inserted = await sql.all(
      `INSERT INTO messages (mailbox_id, uid, modseq, internal_date, size, blob_hash, prefix, tern_id, envelope_from, ${cols.map(([, c]) => c).join(', ')})
       VALUES ${part.map(() => row).join(', ')} RETURNING id, mailbox_id, uid`,
      params,
    );
    for (const r of inserted) byPlace.get(`${Number(r.mailbox_id)}:${Number(r.uid)}`)!.outcome.messageId = Number(r.id);
  }
  const keywords = rows.flatMap((r) => [...r.flags.keywords].map((k) => [r.outcome.messageId, k]));
  for (const part of chunks(keywords, ROWS_PER_STATEMENT)) {
    await sql.run(`INSERT INTO keywords (message_id, keyword) VALUES ${part.map(() => '(?, ?)').join(', ')}`, part.flat());
  }
}

/** The uid a delivery gives its message (an import), if any. */
export const givenUid = (d: NewDelivery): number | undefined => d.recipients.find((r) => r.uid !== undefined)?.uid;

/**
 * An order to run items in: as given, except that those giving their own uids (an import)
 * take their places in ascending uid order, since a backend may have reordered them
 * (PostgreSQL runs a batch in blob-hash order) and a given uid must be at least UIDNEXT.
 */
export function uidOrder<T>(items: T[], uidOf: (item: T) => number | undefined): number[] {
  const order = items.map((_, i) => i);
  const places = order.filter((i) => uidOf(items[i]!) !== undefined);
  if (places.length < 2) return order;
  const byUid = [...places].sort((a, b) => uidOf(items[a]!)! - uidOf(items[b]!)!);
  places.forEach((place, k) => (order[place] = byUid[k]!));
  return order;
}

/** Commits `deliveries` in the caller's transaction; one result per delivery, in order. */
export async function deliverMany(sql: Sql, deliveries: NewDelivery[]): Promise<DeliveryResult[]> {
  const { accounts, mailboxes } = await readState(sql, deliveries);
  const rows: MessageRow[] = [];
  const queued: NewDelivery[] = [];
  const results: DeliveryResult[] = [];
  for (const i of uidOrder(deliveries, givenUid)) results[i] = plan(deliveries[i]!, accounts, mailboxes, rows, queued);
  if (rows.length === 0 && queued.length === 0) return results;

  const charged = [...accounts.values()].filter((a) => a.charged > 0).sort((a, b) => a.id - b.id);
  for (const part of chunks(charged, ROWS_PER_STATEMENT)) {
    await sql.run(
      `UPDATE accounts SET used_bytes = used_bytes + v.column2 FROM (VALUES ${integerRows(part.length, 2)}) AS v WHERE accounts.id = v.column1`,
      part.flatMap((a) => [a.id, a.charged]),
    );
  }
  // Every new message takes one uid and one modseq: both counters move by the number added (uidnext further past uids an import gave).
  const touched = [...mailboxes.values()].filter((m) => m.added > 0).sort((a, b) => a.id - b.id);
  for (const part of chunks(touched, ROWS_PER_STATEMENT)) {
    await sql.run(
      `UPDATE mailboxes SET uidnext = uidnext + v.column5, highestmodseq = highestmodseq + v.column2, messages = messages + v.column2,
         unseen = unseen + v.column3, bytes = bytes + v.column4
       FROM (VALUES ${integerRows(part.length, 5)}) AS v WHERE mailboxes.id = v.column1`,
      part.flatMap((m) => [m.id, m.added, m.unseen, m.bytes, m.advanced]),
    );
  }
  const now = Date.now();
  const queueReferences = queued.flatMap((d) => d.outbound!.domains.map(() => ({ delivery: d })));
  await referenceBlobs(sql, [...rows, ...queueReferences], now);
  await insertMessages(sql, rows);
  const received = rows.filter((r) => r.delivery.received);
  if (received.length > 0) {
    await oweReceived(
      sql,
      received.map((r) => r.outcome.messageId),
      now,
    );
    const byId = new Map([...mailboxes.values()].map((m) => [m.id, m]));
    const copies = received.map((r) => {
      const mailbox = byId.get(r.mailboxId)!;
      return {
        ternId: r.delivery.ternId,
        recipient: accounts.get(mailbox.accountId)!.address,
        mailbox: mailbox.name,
        sender: r.delivery.envelopeFrom,
        trace: traceFieldsOf(r.delivery.blob),
      };
    });
    await logStored(sql, copies, now);
  }
  for (const d of queued)
    await enqueue(
      sql,
      { ternId: d.ternId, hash: d.blob.hash, size: d.blob.size, envelopeFrom: d.envelopeFrom, outbound: d.outbound!, trace: traceFieldsOf(d.blob) },
      now,
    );
  return results;
}
