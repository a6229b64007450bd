/**
 * Webhook dispatch: POSTs the outbox (store.webhooks) to each subscriber, signed, with
 * back-off retries for a day. Each POST body is `{id, event, createdAt, data}`; the
 * `Tern-Signature: t=<unix seconds>,v1=<hex>` header is HMAC-SHA256 with the webhook's
 * secret over `<t>.<body>` (verifyWebhookSignature checks one), so a receiver can tell
 * Tern's POSTs from forgeries and refuse old ones replayed. Deliveries are leased like
 * queue entries, so several nodes can dispatch without sending one twice while they live;
 * a node that dies mid-POST leaves the lease to expire and the POST is sent again (at least
 * once: receivers dedupe by `id`).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { parseStoredStructure } from '../mail/mime/index.js';
import type { Store, WebhookDelivery } from '../store/store.js';

export interface WebhookOptions {
  /** First retry; doubles each time up to retryMaxMs. */
  retryFirstMs: number;
  retryMaxMs: number;
  /** Give up this long after the event. */
  lifetimeMs: number;
  /** One POST's deadline. */
  timeoutMs: number;
  /** POSTs in flight at once. */
  concurrency: number;
  leaseMs: number;
  /** Settled deliveries are kept (the log) this long. */
  keepLogMs: number;
}

export const DEFAULT_WEBHOOK_OPTIONS: WebhookOptions = {
  retryFirstMs: 30_000,
  retryMaxMs: 3_600_000,
  lifetimeMs: 24 * 3_600_000,
  timeoutMs: 10_000,
  concurrency: 8,
  leaseMs: 60_000,
  keepLogMs: 7 * 24 * 3_600_000,
};

const POLL_MS = 1_000;
const PURGE_MS = 3_600_000;
/** Most bytes of a receiver's answer kept in the log. */
const ERROR_TEXT_MAX = 300;

export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** True when `header` (Tern-Signature) signs `body` with `secret` and is at most `toleranceSeconds` old. */
export function verifyWebhookSignature(secret: string, header: string, body: string, toleranceSeconds = 300, now = Date.now()): boolean {
  const t = Number(/(?:^|,)t=(\d+)/.exec(header)?.[1]);
  const given = /(?:^|,)v1=([0-9a-f]{64})/.exec(header)?.[1];
  if (!given || !Number.isFinite(t) || Math.abs(now / 1000 - t) > toleranceSeconds) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(given, 'hex'));
}

/** What a message.received POST says about the stored copy: where it is and its decoded main headers. */
async function receivedSummary(store: Store, payload: string): Promise<Record<string, unknown>> {
  const { messageId } = JSON.parse(payload) as { messageId: number };
  const m = await store.webhooks.receivedMessage(messageId);
  if (!m) return { messageId, gone: true };
  const headers = new Map<string, string>();
  let attachments = 0;
  if (m.structure) {
    const s = parseStoredStructure(m.structure);
    for (const [name, value] of s.headers) if (!headers.has(name.toLowerCase())) headers.set(name.toLowerCase(), value);
    const walk = (p: typeof s.root): void => {
      if (p.disposition?.type === 'attachment') attachments++;
      p.children?.forEach(walk);
    };
    walk(s.root);
  }
  const header = (name: string) => headers.get(name) ?? null;
  return {
    id: m.ternId,
    messageId: m.messageId,
    recipient: m.address,
    mailbox: m.mailbox,
    uid: m.uid,
    size: m.size,
    receivedAt: m.internalDate.toISOString(),
    sender: m.envelopeFrom,
    from: header('from'),
    to: header('to'),
    cc: header('cc'),
    subject: header('subject'),
    date: header('date'),
    headerMessageId: header('message-id'),
    attachments,
  };
}

export class WebhookDispatcher {
  private inFlight = 0;
  private timer: NodeJS.Timeout | null = null;
  private purgeTimer: NodeJS.Timeout | null = null;
  private unwatch: (() => void) | null = null;
  private stopped = false;
  private ticking = false;
  private again = false;
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly store: Store,
    private readonly options: WebhookOptions,
    private readonly log: Logger,
    private readonly userAgent: string,
  ) {}

  start(): void {
    this.unwatch = this.store.webhooks.watch(() => this.kick());
    this.timer = setInterval(() => this.kick(), POLL_MS);
    this.purgeTimer = setInterval(() => void this.purge(), PURGE_MS);
    this.timer.unref();
    this.purgeTimer.unref();
    this.kick();
  }

  /** Stops claiming and waits for the claim and the POSTs in flight (a claim answering late still has its POSTs made and recorded). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unwatch?.();
    if (this.timer) clearInterval(this.timer);
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  private kick(): void {
    if (this.stopped) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = true;
    const tick = this.tick();
    this.running.add(tick);
    void tick.finally(() => {
      this.running.delete(tick);
      this.ticking = false;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }

  private async tick(): Promise<void> {
    const room = this.options.concurrency - this.inFlight;
    if (room <= 0) return;
    let due: Awaited<ReturnType<Store['webhooks']['claim']>>;
    try {
      due = await this.store.webhooks.claim({ limit: room, leaseMs: this.options.leaseMs });
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'webhooks: cannot claim deliveries');
      return;
    }
    for (const d of due) {
      this.inFlight++;
      const p = this.send(d).finally(() => {
        this.inFlight--;
        this.running.delete(p);
        // A slot is free: more may be waiting.
        if (due.length === room) this.kick();
      });
      this.running.add(p);
    }
  }

  private async send(d: WebhookDelivery & { url: string; secret: string }): Promise<void> {
    let status: number | null = null;
    let error: string | null = null;
    try {
      const data = d.event === 'message.received' ? await receivedSummary(this.store, d.payload) : (JSON.parse(d.payload) as unknown);
      const body = JSON.stringify({ id: d.id, event: d.event, createdAt: d.createdAt.toISOString(), data });
      const res = await fetch(d.url, {
        method: 'POST',
        redirect: 'manual',
        signal: AbortSignal.timeout(this.options.timeoutMs),
        headers: {
          'content-type': 'application/json',
          'user-agent': this.userAgent,
          'tern-event': d.event,
          'tern-delivery': String(d.id),
          'tern-signature': signWebhook(d.secret, Math.floor(Date.now() / 1000), body),
        },
        body,
      });
      status = res.status;
      if (!res.ok) error = `HTTP ${res.status} ${(await res.text().catch(() => '')).slice(0, ERROR_TEXT_MAX)}`.trim();
      else await res.body?.cancel();
    } catch (err) {
      const e = err as Error & { cause?: Error };
      error = e.name === 'TimeoutError' ? `no answer in ${this.options.timeoutMs} ms` : (e.cause?.message ?? e.message);
    }
    const delivered = error === null;
    const wait = Math.min(this.options.retryFirstMs * 2 ** d.attempts, this.options.retryMaxMs);
    const retryAt = delivered || Date.now() + wait > d.createdAt.getTime() + this.options.lifetimeMs ? null : new Date(Date.now() + wait);
    if (!delivered)
      this.log.info({ webhook: d.webhookId, delivery: d.id, event: d.event, error, retryAt }, retryAt ? 'webhook: will retry' : 'webhook: gave up');
    try {
      await this.store.webhooks.settle(d.id, { delivered, status, error, retryAt });
    } catch (err) {
      // The lease runs out and the POST is made again: at least once.
      this.log.warn({ delivery: d.id, err: (err as Error).message }, 'webhooks: cannot record an attempt');
    }
  }

  private async purge(): Promise<void> {
    try {
      await this.store.webhooks.purge(new Date(Date.now() - this.options.keepLogMs));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'webhooks: cannot purge the log');
    }
  }
}
