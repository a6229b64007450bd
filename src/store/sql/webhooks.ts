/**
 * Webhook subscriptions and their outbox in SQL both backends run. The outbox is filled by
 * the operations that make the events, inside their transaction: deliveries (message.received,
 * one row per stored copy) and queue settles (delivered, deferred, bounced, failed). A
 * subscription's events are kept as ",a,b," so one LIKE finds the subscribers of an event.
 */
import { ConflictError, NotFoundError } from '../../errors.js';
import type { ReceivedMessage, Webhook, WebhookDelivery, WebhookEvent } from '../store.js';
import { one, placeholders, type Row, type Sql } from './sql.js';

const IDS_PER_STATEMENT = 500;

const eventList = (events: readonly string[]) => `,${events.join(',')},`;

function toWebhook(r: Row): Webhook {
  return {
    id: String(r.id),
    url: String(r.url),
    events: String(r.events).split(',').filter(Boolean) as WebhookEvent[],
    secret: String(r.secret),
    domain: (r.domain as string | null) ?? null,
    description: String(r.description),
    enabled: Boolean(Number(r.enabled)),
    createdAt: new Date(Number(r.created_at)),
  };
}

function toDelivery(r: Row): WebhookDelivery {
  return {
    id: Number(r.id),
    webhookId: String(r.webhook_id),
    event: r.event as WebhookDelivery['event'],
    payload: String(r.payload),
    state: r.state as WebhookDelivery['state'],
    attempts: Number(r.attempts),
    nextAttemptAt: new Date(Number(r.next_attempt_at)),
    lastStatus: r.last_status == null ? null : Number(r.last_status),
    lastError: (r.last_error as string | null) ?? null,
    createdAt: new Date(Number(r.created_at)),
    finishedAt: r.finished_at == null ? null : new Date(Number(r.finished_at)),
  };
}

/** Owes each enabled subscriber of `event` (site-wide, or limited to `domain`) a POST of `payload`. */
export async function oweWebhooks(sql: Sql, items: Array<{ event: WebhookEvent; domain: string | null; payload: string }>, now: number): Promise<void> {
  for (const e of items) {
    await sql.run(
      `INSERT INTO webhook_deliveries (webhook_id, event, payload, state, attempts, next_attempt_at, created_at)
       SELECT id, ?, ?, 'pending', 0, ?, ? FROM webhooks WHERE enabled = 1 AND events LIKE ? AND (domain IS NULL OR domain = ?)`,
      [e.event, e.payload, now, now, `%,${e.event},%`, e.domain],
    );
  }
}

/** Owes message.received POSTs for stored copies (by message id), each to the subscribers of its account's domain: one statement, whatever the count. */
export async function oweReceived(sql: Sql, messageIds: number[], now: number): Promise<void> {
  for (let i = 0; i < messageIds.length; i += IDS_PER_STATEMENT) {
    const part = messageIds.slice(i, i + IDS_PER_STATEMENT);
    await sql.run(
      `INSERT INTO webhook_deliveries (webhook_id, event, payload, state, attempts, next_attempt_at, created_at)
       SELECT w.id, 'message.received', '{"messageId":' || m.id || '}', 'pending', 0, ?, ?
       FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id JOIN accounts a ON a.id = b.account_id JOIN domains d ON d.id = a.domain_id
       JOIN webhooks w ON w.enabled = 1 AND w.events LIKE '%,message.received,%' AND (w.domain IS NULL OR w.domain = d.name)
       WHERE m.id IN (${placeholders(part.length)})`,
      [now, now, ...part],
    );
  }
}

export const WEBHOOK_OPS = {
  async addWebhook(sql: Sql, a: Omit<Webhook, 'createdAt' | 'enabled'> & { now: number }): Promise<Webhook> {
    if (a.domain !== null && !(await one(sql, 'SELECT 1 AS x FROM domains WHERE name = ?', [a.domain])))
      throw new NotFoundError(`domain ${a.domain} does not exist`);
    const rows = await sql.all(
      `INSERT INTO webhooks (id, url, events, secret, domain, description, enabled, created_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?)
       ON CONFLICT (id) DO NOTHING RETURNING *`,
      [a.id, a.url, eventList(a.events), a.secret, a.domain, a.description, a.now],
    );
    if (rows.length === 0) throw new ConflictError(`webhook ${a.id} already exists`);
    return toWebhook(rows[0]!);
  },

  async updateWebhook(sql: Sql, a: { id: string; change: Partial<Pick<Webhook, 'url' | 'events' | 'description' | 'enabled'>> }): Promise<Webhook> {
    const c = a.change;
    const changes: Array<[string, unknown]> = [];
    if (c.url !== undefined) changes.push(['url', c.url]);
    if (c.events !== undefined) changes.push(['events', eventList(c.events)]);
    if (c.description !== undefined) changes.push(['description', c.description]);
    if (c.enabled !== undefined) changes.push(['enabled', c.enabled ? 1 : 0]);
    const sets = changes.map(([column]) => `${column} = ?`);
    const params = changes.map(([, value]) => value);
    const rows = sets.length
      ? await sql.all(`UPDATE webhooks SET ${sets.join(', ')} WHERE id = ? RETURNING *`, [...params, a.id])
      : await sql.all('SELECT * FROM webhooks WHERE id = ?', [a.id]);
    if (rows.length === 0) throw new NotFoundError(`webhook ${a.id} does not exist`);
    return toWebhook(rows[0]!);
  },

  async deleteWebhook(sql: Sql, a: { id: string }): Promise<void> {
    await sql.run('DELETE FROM webhook_deliveries WHERE webhook_id = ?', [a.id]);
    if ((await sql.run('DELETE FROM webhooks WHERE id = ?', [a.id])) === 0) throw new NotFoundError(`webhook ${a.id} does not exist`);
  },

  async enqueueWebhook(sql: Sql, a: { webhookId: string; event: string; payload: string; now: number }): Promise<number> {
    if (!(await one(sql, 'SELECT 1 AS x FROM webhooks WHERE id = ?', [a.webhookId]))) throw new NotFoundError(`webhook ${a.webhookId} does not exist`);
    const r = await one(
      sql,
      `INSERT INTO webhook_deliveries (webhook_id, event, payload, state, attempts, next_attempt_at, created_at) VALUES (?, ?, ?, 'pending', 0, ?, ?) RETURNING id`,
      [a.webhookId, a.event, a.payload, a.now, a.now],
    );
    return Number(r!.id);
  },

  async claimWebhooks(sql: Sql, a: { limit: number; leaseMs: number; now: number }): Promise<Array<WebhookDelivery & { url: string; secret: string }>> {
    const skipLocked = sql.dialect === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : '';
    const rows = await sql.all(
      `UPDATE webhook_deliveries SET lease_until = ? WHERE id IN (
         SELECT d.id FROM webhook_deliveries d WHERE d.state = 'pending' AND d.next_attempt_at <= ? AND (d.lease_until IS NULL OR d.lease_until <= ?)
           AND d.webhook_id IN (SELECT id FROM webhooks WHERE enabled = 1)
         ORDER BY d.next_attempt_at, d.id LIMIT ?${skipLocked}
       ) RETURNING *`,
      [a.now + a.leaseMs, a.now, a.now, a.limit],
    );
    if (rows.length === 0) return [];
    const ids = [...new Set(rows.map((r) => String(r.webhook_id)))];
    const hooks = new Map((await sql.all(`SELECT id, url, secret FROM webhooks WHERE id IN (${placeholders(ids.length)})`, ids)).map((h) => [String(h.id), h]));
    return rows
      .sort((x, y) => Number(x.next_attempt_at) - Number(y.next_attempt_at) || Number(x.id) - Number(y.id))
      .flatMap((r) => {
        const h = hooks.get(String(r.webhook_id));
        return h ? [{ ...toDelivery(r), url: String(h.url), secret: String(h.secret) }] : [];
      });
  },

  async settleWebhook(
    sql: Sql,
    a: { id: number; delivered: boolean; status: number | null; error: string | null; retryAt: number | null; now: number },
  ): Promise<void> {
    const state = a.delivered ? 'delivered' : a.retryAt === null ? 'failed' : 'pending';
    await sql.run(
      `UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, last_status = ?, last_error = ?, next_attempt_at = ?, lease_until = NULL, finished_at = ?
       WHERE id = ? AND state = 'pending'`,
      [state, a.status, a.error, a.retryAt ?? a.now, state === 'pending' ? null : a.now, a.id],
    );
  },

  async purgeWebhooks(sql: Sql, a: { before: number }): Promise<number> {
    return sql.run("DELETE FROM webhook_deliveries WHERE state <> 'pending' AND finished_at < ?", [a.before]);
  },
} as const;

export function createWebhookReads(sql: Sql) {
  return {
    async webhook(id: string): Promise<Webhook | null> {
      const r = await one(sql, 'SELECT * FROM webhooks WHERE id = ?', [id]);
      return r ? toWebhook(r) : null;
    },
    async listWebhooks(domain?: string): Promise<Webhook[]> {
      const rows = domain
        ? await sql.all('SELECT * FROM webhooks WHERE domain = ? ORDER BY created_at, id', [domain])
        : await sql.all('SELECT * FROM webhooks ORDER BY created_at, id');
      return rows.map(toWebhook);
    },
    async webhookDeliveries(webhookId: string, page: { before?: number; limit: number }): Promise<WebhookDelivery[]> {
      const rows = await sql.all('SELECT * FROM webhook_deliveries WHERE webhook_id = ? AND id < ? ORDER BY id DESC LIMIT ?', [
        webhookId,
        page.before ?? Number.MAX_SAFE_INTEGER,
        page.limit,
      ]);
      return rows.map(toDelivery);
    },
    async receivedMessage(messageId: number): Promise<ReceivedMessage | null> {
      const r = await one(
        sql,
        `SELECT m.id, m.tern_id, m.uid, m.size, m.internal_date, m.envelope_from, b.name AS mailbox, a.address, s.structure
         FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id JOIN accounts a ON a.id = b.account_id LEFT JOIN blob_structures s ON s.hash = m.blob_hash
         WHERE m.id = ?`,
        [messageId],
      );
      if (!r) return null;
      return {
        messageId: Number(r.id),
        ternId: String(r.tern_id),
        address: String(r.address),
        mailbox: String(r.mailbox),
        uid: Number(r.uid),
        size: Number(r.size),
        internalDate: new Date(Number(r.internal_date)),
        envelopeFrom: String(r.envelope_from),
        structure: (r.structure as string | null) ?? null,
      };
    },
  };
}
