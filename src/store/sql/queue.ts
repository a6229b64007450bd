/**
 * The outbound queue in SQL both backends run: entries are written by a delivery
 * (sql/deliver.ts, in the same transaction as the local copies), leased to delivery
 * workers, settled after each attempt, and listed and acted on by filter. Every recipient
 * change is also written to queue_events, which outlives the entry (message trace).
 */
import {
  wantsFailureNotice,
  type AttemptResult,
  type BlobRef,
  type OutboundMessage,
  type QueueEntry,
  type QueueEvent,
  type QueueEventKind,
  type QueueFilter,
  type QueueRecipient,
  type QueueState,
  type Suppression,
  type TraceHit,
  type TraceQuery,
  type WebhookEvent,
} from '../store.js';
import { countHashes, releaseBlobs } from './blob-references.js';
import { one, placeholders, type Row, type Sql } from './sql.js';
import { oweWebhooks } from './webhooks.js';

/** Ids per IN list. */
const IDS_PER_STATEMENT = 500;

function whereOf(f: QueueFilter): { clause: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  const add = (clause: string, ...values: unknown[]) => {
    parts.push(clause);
    params.push(...values);
  };
  if (f.ids) add(f.ids.length > 0 ? `id IN (${placeholders(f.ids.length)})` : '1 = 0', ...f.ids);
  if (f.state) add('state = ?', f.state);
  if (f.domain) add('domain = ?', f.domain);
  if (f.sender !== undefined) add('envelope_from = ?', f.sender);
  if (f.recipient) add('id IN (SELECT queue_id FROM queue_recipients WHERE address = ?)', f.recipient);
  if (f.olderThan) add('created_at < ?', f.olderThan.getTime());
  return { clause: parts.length > 0 ? parts.join(' AND ') : '1 = 1', params };
}

async function insertEvents(sql: Sql, events: Array<Omit<QueueEvent, 'at'>>, now: number): Promise<void> {
  for (let i = 0; i < events.length; i += 200) {
    const part = events.slice(i, i + 200);
    await sql.run(
      `INSERT INTO queue_events (tern_id, queue_id, recipient, at, event, reply, sender, message_id, subject) VALUES ${part.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      part.flatMap((e) => [e.ternId, e.queueId, e.recipient, now, e.event, e.reply, e.sender ?? null, e.messageId ?? null, e.subject ?? null]),
    );
  }
}

/** Adds addresses to the suppression list (one already there keeps its entry); returns how many were added. */
export async function insertSuppressions(sql: Sql, entries: Array<Pick<Suppression, 'address' | 'source' | 'reason'>>, now: number): Promise<number> {
  let added = 0;
  for (const e of entries) {
    added += await sql.run('INSERT INTO suppressions (address, source, reason, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (address) DO NOTHING', [
      e.address,
      e.source,
      e.reason,
      now,
    ]);
  }
  return added;
}

/** What a trace search finds a message by, from its parsed header (none when it was stored unparsed). */
export interface TraceFields {
  messageId: string | null;
  subject: string | null;
}

/** A Message-ID as the trace keeps and looks it up: without its angle brackets. */
export const bareMessageId = (id: string) => id.trim().replace(/^<(.*)>$/, '$1');

export function traceFieldsOf(blob: BlobRef): TraceFields {
  const id = blob.structure?.messageId;
  return { messageId: id ? bareMessageId(id).slice(0, 998) : null, subject: blob.structure?.subject?.slice(0, 998) ?? null };
}

/** Logs a `stored` event per local copy of mail that arrived (queue id 0; the mailbox as its reply). */
export async function logStored(
  sql: Sql,
  copies: Array<{ ternId: string; recipient: string; mailbox: string; sender: string; trace: TraceFields }>,
  now: number,
): Promise<void> {
  await insertEvents(
    sql,
    copies.map((c) => ({ ternId: c.ternId, queueId: 0, recipient: c.recipient, event: 'stored', reply: c.mailbox, sender: c.sender, ...c.trace })),
    now,
  );
}

/** Queues `message` (one entry per domain) for the body `hash` of `size` bytes; the caller adds the blob references. */
export async function enqueue(
  sql: Sql,
  d: { ternId: string; hash: string; size: number; envelopeFrom: string; outbound: OutboundMessage; trace: TraceFields },
  now: number,
): Promise<void> {
  const o = d.outbound;
  const events: Array<Omit<QueueEvent, 'at'>> = [];
  for (const { domain, recipients } of o.domains) {
    const r = await one(
      sql,
      `INSERT INTO queue (tern_id, blob_hash, prefix, envelope_from, domain, size, state, is_bounce, dsn_ret, dsn_envid, next_attempt_at, created_at)
       VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?) RETURNING id`,
      [d.ternId, d.hash, o.prefix, d.envelopeFrom, domain, o.prefix.length + d.size, o.isBounce ? 1 : 0, o.dsn?.ret ?? null, o.dsn?.envid ?? null, now, now],
    );
    const queueId = Number(r!.id);
    const unique = [...new Map(recipients.map((x) => [x.address, x])).values()];
    for (let i = 0; i < unique.length; i += 200) {
      const part = unique.slice(i, i + 200);
      await sql.run(
        `INSERT INTO queue_recipients (queue_id, address, status, notify, orcpt) VALUES ${part.map(() => "(?, ?, 'pending', ?, ?)").join(', ')}`,
        part.flatMap((x) => [queueId, x.address, x.notify ?? null, x.orcpt ?? null]),
      );
    }
    for (const x of unique) events.push({ ternId: d.ternId, queueId, recipient: x.address, event: 'queued', reply: null, sender: d.envelopeFrom, ...d.trace });
  }
  await insertEvents(sql, events, now);
}

/** Removes entries (already selected with id, tern_id, blob_hash), logging `event` for their pending recipients. */
async function removeEntries(sql: Sql, rows: Row[], event: QueueEventKind, now: number): Promise<void> {
  for (let i = 0; i < rows.length; i += IDS_PER_STATEMENT) {
    const part = rows.slice(i, i + IDS_PER_STATEMENT);
    const ids = part.map((r) => Number(r.id));
    const ternIds = new Map(part.map((r) => [Number(r.id), String(r.tern_id)]));
    const pending = await sql.all(`SELECT queue_id, address FROM queue_recipients WHERE status = 'pending' AND queue_id IN (${placeholders(ids.length)})`, ids);
    await insertEvents(
      sql,
      pending.map((p) => ({ ternId: ternIds.get(Number(p.queue_id))!, queueId: Number(p.queue_id), recipient: String(p.address), event, reply: null })),
      now,
    );
    await sql.run(`DELETE FROM queue WHERE id IN (${placeholders(ids.length)})`, ids);
  }
  await releaseBlobs(sql, countHashes(rows));
}

async function entriesOf(sql: Sql, rows: Row[], onlyPending = false): Promise<QueueEntry[]> {
  const recipients = new Map<number, QueueRecipient[]>();
  for (let i = 0; i < rows.length; i += IDS_PER_STATEMENT) {
    const ids = rows.slice(i, i + IDS_PER_STATEMENT).map((r) => Number(r.id));
    const found = await sql.all(
      `SELECT queue_id, address, status, reply, notify, orcpt FROM queue_recipients WHERE queue_id IN (${placeholders(ids.length)})${onlyPending ? " AND status = 'pending'" : ''} ORDER BY queue_id, address`,
      ids,
    );
    for (const r of found) {
      const list = recipients.get(Number(r.queue_id)) ?? [];
      list.push({
        address: String(r.address),
        status: r.status as QueueRecipient['status'],
        reply: (r.reply as string | null) ?? null,
        notify: (r.notify as string | null) ?? null,
        orcpt: (r.orcpt as string | null) ?? null,
      });
      recipients.set(Number(r.queue_id), list);
    }
  }
  return rows.map((r) => ({
    id: Number(r.id),
    ternId: String(r.tern_id),
    envelopeFrom: String(r.envelope_from),
    domain: String(r.domain),
    size: Number(r.size),
    hash: String(r.blob_hash),
    state: r.state as QueueState,
    isBounce: Boolean(Number(r.is_bounce)),
    dsn: { ret: (r.dsn_ret as string | null) ?? null, envid: (r.dsn_envid as string | null) ?? null },
    attempts: Number(r.attempts),
    nextAttemptAt: new Date(Number(r.next_attempt_at)),
    createdAt: new Date(Number(r.created_at)),
    recipients: recipients.get(Number(r.id)) ?? [],
  }));
}

/** Changes the state of matching entries in `from` to `to` (due now when queued); returns how many. */
async function moveState(sql: Sql, filter: QueueFilter, from: QueueState[], to: QueueState, event: QueueEventKind | null, now: number): Promise<number> {
  const w = whereOf(filter);
  const update = `UPDATE queue SET state = ?, next_attempt_at = CASE WHEN ? = 'queued' THEN ? ELSE next_attempt_at END
     WHERE state IN (${placeholders(from.length)}) AND ${w.clause}`;
  const params = [to, to, now, ...from, ...w.params];
  // Without events to log, a count will do: a retry of 100,000 entries returns no rows.
  if (!event) return sql.run(update, params);
  const rows = await sql.all(`${update} RETURNING id, tern_id`, params);
  const ternIds = new Map(rows.map((r) => [Number(r.id), String(r.tern_id)]));
  const ids = [...ternIds.keys()];
  for (let i = 0; i < ids.length; i += IDS_PER_STATEMENT) {
    const part = ids.slice(i, i + IDS_PER_STATEMENT);
    const pending = await sql.all(
      `SELECT queue_id, address FROM queue_recipients WHERE status = 'pending' AND queue_id IN (${placeholders(part.length)})`,
      part,
    );
    await insertEvents(
      sql,
      pending.map((p) => ({ ternId: ternIds.get(Number(p.queue_id))!, queueId: Number(p.queue_id), recipient: String(p.address), event, reply: null })),
      now,
    );
  }
  return rows.length;
}

/**
 * The webhook event of a recipient's outcome, for subscribers of the sender's domain: a
 * failure the remote host gave (5xx) is a bounce; one Tern gave up on (retries spent, no
 * host) is a failure.
 */
function outcomeEvent(e: Omit<QueueEvent, 'at'>, entry: Row): { event: WebhookEvent; domain: string | null; payload: string } {
  const event: WebhookEvent =
    e.event === 'delivered'
      ? 'message.delivered'
      : e.event === 'deferred'
        ? 'message.deferred'
        : /^5/.test(e.reply ?? '')
          ? 'message.bounced'
          : 'message.failed';
  const sender = String(entry.envelope_from);
  const payload = {
    id: e.ternId,
    queueId: e.queueId,
    sender,
    recipient: e.recipient,
    destination: String(entry.domain),
    reply: e.reply,
    attempt: Number(entry.attempts) + 1,
  };
  return { event, domain: sender.includes('@') ? sender.slice(sender.lastIndexOf('@') + 1) : null, payload: JSON.stringify(payload) };
}

/** Whether a failed recipient of the entry asked for (or by default gets) a failure notice. */
async function bounceOwed(sql: Sql, id: number): Promise<boolean> {
  const failed = await sql.all("SELECT notify FROM queue_recipients WHERE queue_id = ? AND status = 'failed'", [id]);
  return failed.some((r) => wantsFailureNotice((r.notify as string | null) ?? null));
}

export const QUEUE_OPS = {
  async claimQueue(sql: Sql, a: { owner: string; limit: number; leaseMs: number; now: number; skipDomains?: string[] }): Promise<QueueEntry[]> {
    const skipLocked = sql.dialect === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : '';
    const skip = a.skipDomains ?? [];
    const rows = await sql.all(
      `UPDATE queue SET lease_owner = ?, lease_until = ? WHERE id IN (
         SELECT id FROM queue WHERE state = 'queued' AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
         ${skip.length > 0 ? `AND domain NOT IN (${placeholders(skip.length)})` : ''}
         ORDER BY next_attempt_at, id LIMIT ?${skipLocked}
       ) RETURNING *`,
      [a.owner, a.now + a.leaseMs, a.now, a.now, ...skip, a.limit],
    );
    rows.sort((x, y) => Number(x.next_attempt_at) - Number(y.next_attempt_at) || Number(x.id) - Number(y.id));
    return entriesOf(sql, rows, true);
  },

  async settleQueue(
    sql: Sql,
    a: { id: number; results: AttemptResult[]; retryAt: number | null; suppress?: Array<Pick<Suppression, 'address' | 'source' | 'reason'>>; now: number },
  ): Promise<QueueState | 'done'> {
    await insertSuppressions(sql, a.suppress ?? [], a.now);
    const entry = await one(sql, 'SELECT id, tern_id, blob_hash, envelope_from, domain, is_bounce, state, attempts FROM queue WHERE id = ?', [a.id]);
    if (!entry) return 'done'; // deleted by an operator while it was being delivered
    const events: Array<Omit<QueueEvent, 'at'>> = [];
    for (const r of a.results) {
      const status = r.status === 'deferred' ? (a.retryAt === null ? 'failed' : 'pending') : r.status;
      const changed = await sql.run("UPDATE queue_recipients SET status = ?, reply = ? WHERE queue_id = ? AND address = ? AND status = 'pending'", [
        status,
        r.reply,
        a.id,
        r.address,
      ]);
      if (changed > 0)
        events.push({ ternId: String(entry.tern_id), queueId: a.id, recipient: r.address, event: status === 'pending' ? 'deferred' : status, reply: r.reply });
    }
    await insertEvents(sql, events, a.now);
    await oweWebhooks(
      sql,
      events.map((e) => outcomeEvent(e, entry)),
      a.now,
    );
    const left = await one(sql, "SELECT count(*) AS n FROM queue_recipients WHERE queue_id = ? AND status = 'pending'", [a.id]);
    if (Number(left!.n) > 0) {
      await sql.run('UPDATE queue SET attempts = attempts + 1, next_attempt_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ?', [
        a.retryAt ?? a.now,
        a.id,
      ]);
      return entry.state as QueueState;
    }
    const owed = !Number(entry.is_bounce) && String(entry.envelope_from) !== '' && (await bounceOwed(sql, a.id));
    if (owed) {
      await sql.run("UPDATE queue SET state = 'bounce', attempts = attempts + 1, lease_owner = NULL, lease_until = NULL WHERE id = ?", [a.id]);
      return 'bounce';
    }
    await removeEntries(sql, [entry], 'deleted', a.now);
    return 'done';
  },

  async postponeQueue(sql: Sql, a: { id: number; until: number }): Promise<void> {
    await sql.run("UPDATE queue SET next_attempt_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ? AND state = 'queued'", [a.until, a.id]);
  },

  async bouncedQueue(sql: Sql, a: { id: number; now: number }): Promise<void> {
    const entry = await one(sql, "SELECT id, tern_id, blob_hash FROM queue WHERE id = ? AND state = 'bounce'", [a.id]);
    if (!entry) return;
    const failed = await sql.all("SELECT address, notify FROM queue_recipients WHERE queue_id = ? AND status = 'failed'", [a.id]);
    await insertEvents(
      sql,
      failed
        .filter((r) => wantsFailureNotice((r.notify as string | null) ?? null))
        .map((r) => ({ ternId: String(entry.tern_id), queueId: a.id, recipient: String(r.address), event: 'bounced' as const, reply: null })),
      a.now,
    );
    await removeEntries(sql, [entry], 'deleted', a.now);
  },

  async retryQueue(sql: Sql, a: { filter: QueueFilter; now: number }): Promise<number> {
    return moveState(sql, a.filter, ['queued', 'held'], 'queued', null, a.now);
  },

  async holdQueue(sql: Sql, a: { filter: QueueFilter; now: number }): Promise<number> {
    return moveState(sql, a.filter, ['queued'], 'held', 'held', a.now);
  },

  async releaseQueue(sql: Sql, a: { filter: QueueFilter; now: number }): Promise<number> {
    return moveState(sql, a.filter, ['held'], 'queued', 'released', a.now);
  },

  async deleteQueue(sql: Sql, a: { filter: QueueFilter; now: number }): Promise<number> {
    const w = whereOf(a.filter);
    const rows = await sql.all(`SELECT id, tern_id, blob_hash FROM queue WHERE ${w.clause} ORDER BY id`, w.params);
    await removeEntries(sql, rows, 'deleted', a.now);
    return rows.length;
  },
} as const;

export function createQueueReads(sql: Sql) {
  return {
    async countQueue(filter: QueueFilter): Promise<number> {
      const { clause, params } = whereOf(filter);
      return Number((await one(sql, `SELECT count(*) AS n FROM queue WHERE ${clause}`, params))!.n);
    },
    async listQueue(filter: QueueFilter, page: { after?: number; limit: number }): Promise<QueueEntry[]> {
      const w = whereOf(filter);
      const rows = await sql.all(`SELECT * FROM queue WHERE ${w.clause} AND id > ? ORDER BY id LIMIT ?`, [...w.params, page.after ?? 0, page.limit]);
      return entriesOf(sql, rows);
    },
    async getQueueEntry(id: number): Promise<QueueEntry | null> {
      const row = await one(sql, 'SELECT * FROM queue WHERE id = ?', [id]);
      return row ? (await entriesOf(sql, [row]))[0]! : null;
    },
    async queueParts(id: number): Promise<{ prefix: Buffer; hash: string } | null> {
      const row = await one(sql, 'SELECT prefix, blob_hash FROM queue WHERE id = ?', [id]);
      return row ? { prefix: row.prefix as Buffer, hash: String(row.blob_hash) } : null;
    },
    async queueEvents(q: { ternId?: string; recipient?: string; limit?: number }): Promise<QueueEvent[]> {
      const [column, value] = q.ternId !== undefined ? ['tern_id', q.ternId] : ['recipient', q.recipient ?? ''];
      const rows = await sql.all(`SELECT * FROM queue_events WHERE ${column} = ? ORDER BY id LIMIT ?`, [value, q.limit ?? 1000]);
      return rows.map((r) => ({
        ternId: String(r.tern_id),
        queueId: Number(r.queue_id),
        recipient: String(r.recipient),
        at: new Date(Number(r.at)),
        event: r.event as QueueEventKind,
        reply: (r.reply as string | null) ?? null,
        ...(r.sender !== null && r.sender !== undefined ? { sender: r.sender as string } : {}),
        ...(r.message_id != null ? { messageId: r.message_id as string } : {}),
        ...(r.subject != null ? { subject: r.subject as string } : {}),
      }));
    },
    async traceSearch(q: TraceQuery): Promise<TraceHit[]> {
      const where = ["event IN ('queued', 'stored')"];
      const params: unknown[] = [];
      const add = (clause: string, value: unknown) => {
        where.push(clause);
        params.push(value);
      };
      if (q.messageId) add('message_id = ?', bareMessageId(q.messageId));
      if (q.sender !== undefined) add('sender = ?', q.sender);
      if (q.recipient) add('recipient = ?', q.recipient);
      if (q.since) add('at >= ?', q.since.getTime());
      if (q.until) add('at < ?', q.until.getTime());
      const found = await sql.all(
        `SELECT tern_id, max(id) AS last FROM queue_events WHERE ${where.join(' AND ')} GROUP BY tern_id ORDER BY last DESC LIMIT ?`,
        [...params, q.limit],
      );
      const ids = found.map((r) => String(r.tern_id));
      if (ids.length === 0) return [];
      const rows = await sql.all(
        `SELECT * FROM queue_events WHERE tern_id IN (${placeholders(ids.length)}) AND event IN ('queued', 'stored') ORDER BY id`,
        ids,
      );
      const hits = new Map<string, TraceHit>(
        ids.map((id) => [id, { ternId: id, at: new Date(0), sender: null, messageId: null, subject: null, outbound: [], local: [] }]),
      );
      for (const r of rows) {
        const hit = hits.get(String(r.tern_id))!;
        if (hit.outbound.length + hit.local.length === 0) {
          hit.at = new Date(Number(r.at));
          hit.sender = (r.sender as string | null) ?? null;
        }
        hit.messageId ??= (r.message_id as string | null) ?? null;
        hit.subject ??= (r.subject as string | null) ?? null;
        (r.event === 'stored' ? hit.local : hit.outbound).push(String(r.recipient));
      }
      return [...hits.values()];
    },
    async countQueueByTernId(ternId: string): Promise<number> {
      return Number((await one(sql, 'SELECT count(*) AS n FROM queue WHERE tern_id = ?', [ternId]))!.n);
    },
  };
}
