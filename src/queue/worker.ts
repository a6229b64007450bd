/**
 * The delivery worker (the `queue` role): claims due queue entries with a lease (so
 * several workers, and later several nodes, share one queue safely; a crashed worker's
 * entries come back when its lease expires), delivers them and records each attempt.
 *
 * - Entries are grouped by destination (the domain, or the smarthost for all). Each
 *   destination gets at most `perDestination` connections ("lanes"); a lane opens one
 *   connection and carries the destination's entries over it one after another.
 * - Where mail goes: the domain's route (setting `route:<domain>`), else the smarthost,
 *   else the domain's MX hosts in preference order (queue/dns.ts), each address tried
 *   until one answers.
 * - Per recipient: 2xx delivered, 5xx failed, 4xx (and any connection or DNS trouble)
 *   deferred, retried after `retry.firstMs` doubling up to `retry.maxMs`, and failed once
 *   the entry is older than `retry.lifetimeMs`. A null MX or a domain that does not
 *   exist fails at once.
 * - Rate limits per destination (`rate:<domain>`, messages a minute) and warm-up
 *   schedules per sending domain (queue/warmup.ts) hand entries back, due when allowed.
 * - Failed recipients get one bounce per entry (queue/delivery-report.ts), injected like any
 *   message under an id derived from the entry, so a crash between the bounce's commit
 *   and the entry's removal never sends it twice.
 */
import { randomBytes } from 'node:crypto';
import { hostname as machineName } from 'node:os';
import type { Logger } from 'pino';
import { parseHostPort } from '../config/parse.js';
import type { Injector } from '../delivery/inject.js';
import { collect, wantsDelayNotice, wantsFailureNotice, type AttemptResult, type QueueEntry, type QueueRecipient, type Store } from '../store/store.js';
import { readOriginal, sendDeliveryReport, type DsnAction } from './delivery-report.js';
import { rotateDkimKeys, type DkimSigner } from './dkim.js';
import { PermanentDnsError, type MailDns } from './dns.js';
import { stsAllows, type MtaSts } from './mta-sts.js';
import { isHardBounce } from '../admin/suppressions.js';
import { metrics } from '../metrics.js';
import { parseWarmup, warmupCounterKey, warmupDay, WARMUP_PREFIX, type Warmup } from './warmup.js';
import { domainOf } from '../mail/address.js';
import { ConnectionError, OutboundConnection, type SmtpTarget } from './smtp-client.js';

export interface Smarthost {
  host: string;
  port: number;
  auth?: { user: string; pass: string };
  /** Implicit TLS (port 465). */
  secure?: boolean;
  requireTls?: boolean;
}

export interface QueueWorkerOptions {
  hostname: string;
  dns: MailDns;
  /** The port of MX hosts (25; tests point it at local sinks). */
  mxPort: number;
  smarthost: Smarthost | null;
  /** Back-off, how long an entry may stay queued, and after how long a sender hears that it is still waiting (0: never). */
  retry: { firstMs: number; maxMs: number; lifetimeMs: number; delayWarningMs: number };
  /** Entries in flight at once, and connections per destination. */
  concurrency: { total: number; perDestination: number };
  connectTimeoutMs: number;
  leaseMs: number;
  /** How often the queue is looked at when nothing wakes the worker. */
  pollMs: number;
  /** MTA-STS policies of destination domains (null: not applied). */
  mtaSts: MtaSts | null;
  /** How often pending DKIM keys are looked up in DNS, and how long a replaced key's record should stay; the signer (shared with delivery) forgets its keys after a change. */
  dkim: { signer: DkimSigner; checkMs: number; retireAfterMs: number };
}

/** Settings `route:<domain>` = HOST:PORT send a domain's mail there instead of to its MX hosts (like Postfix's transport maps). */
export const ROUTE_PREFIX = 'route:';
/** Settings `paused:<domain>` (or `paused:*`): nothing is delivered there until the setting goes. */
export const PAUSED_PREFIX = 'paused:';
/** Settings `rate:<name>` = N: at most N messages a minute to that destination domain or MX host (all its connections together). */
export const RATE_PREFIX = 'rate:';
/** Messages up to this size are read once per attempt and kept in memory while they are sent. */
const IN_MEMORY_LIMIT = 1024 * 1024;
/** How soon a running worker sees a changed route, pause or rate limit. */
export const SETTINGS_MS = 5_000;

/** A route's HOST:PORT (port 465 means implicit TLS); null when malformed. */
export function parseRoute(value: string): Smarthost | null {
  try {
    const { host, port } = parseHostPort('route', value);
    return port > 0 ? { host, port, secure: port === 465 } : null;
  } catch {
    return null;
  }
}

export const DEFAULT_QUEUE_OPTIONS = {
  mxPort: 25,
  mtaStsPort: 443,
  retry: { firstMs: 5 * 60_000, maxMs: 4 * 3600_000, lifetimeMs: 5 * 24 * 3600_000, delayWarningMs: 4 * 3600_000 },
  // Per destination as Postfix's default_destination_concurrency_limit.
  concurrency: { total: 100, perDestination: 20 },
  connectTimeoutMs: 30_000,
  leaseMs: 10 * 60_000,
  pollMs: 1000,
  dkimCheckMs: 5 * 60_000,
} as const;

/** When an entry that has had `attempts` attempts is tried next; null once it has been queued too long. */
export function nextAttempt(
  entry: Pick<QueueEntry, 'attempts' | 'createdAt'>,
  retry: Omit<QueueWorkerOptions['retry'], 'delayWarningMs'>,
  now: number,
): Date | null {
  const delay = Math.min(retry.firstMs * 2 ** entry.attempts, retry.maxMs);
  const at = now + delay;
  return at > entry.createdAt.getTime() + retry.lifetimeMs ? null : new Date(at);
}

interface Destination {
  key: string;
  pending: QueueEntry[];
  lanes: number;
}

export class QueueWorker {
  private readonly owner = `${machineName()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private readonly destinations = new Map<string, Destination>();
  /** Entries claimed and not yet settled (a lease may expire while one waits: it is not taken twice). */
  private readonly inFlight = new Set<number>();
  private running = false;
  private wakeUp: (() => void) | null = null;
  private woken = false;
  private loop: Promise<void> | null = null;
  private unwatch: (() => void) | null = null;
  private readonly lanes = new Set<Promise<void>>();
  private nextDkimCheck = 0;
  /** Per-domain routes (settings `route:<domain>`), paused destinations (`paused:<domain>`, `paused:*` for all) and rate limits (`rate:<domain>`, messages a minute), read again every SETTINGS_MS. */
  private routes = new Map<string, Smarthost>();
  private paused = new Set<string>();
  private rates = new Map<string, number>();
  /** Sending domains warming up (settings `warmup:<domain>`), and those whose day is used up, until when. */
  private warmups = new Map<string, Warmup>();
  private readonly warmupFull = new Map<string, number>();
  /** Per rate-limited domain, when its recent messages were sent (the last minute's). */
  private readonly sent = new Map<string, number[]>();
  private nextSettingsRead = 0;

  constructor(
    private readonly store: Store,
    private readonly injector: Injector,
    private readonly options: QueueWorkerOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.unwatch = this.store.queue.watch(() => this.wake());
    this.loop = this.run();
  }

  /** Stops claiming; waits for the attempts under way (their entries are settled, or their leases expire later). */
  async stop(): Promise<void> {
    this.running = false;
    this.unwatch?.();
    this.wake();
    await this.loop;
    for (const d of this.destinations.values()) d.pending.length = 0;
    await Promise.all([...this.lanes]);
  }

  /** Looks at the queue now (something was queued or made due). */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  private async run(): Promise<void> {
    await this.sendOwedBounces();
    while (this.running) {
      this.woken = false;
      if (Date.now() >= this.nextDkimCheck) await this.checkDkimKeys();
      if (Date.now() >= this.nextSettingsRead) await this.readSettings();
      const room = this.options.concurrency.total - this.inFlight.size;
      let claimed = 0;
      if (room > 0) {
        try {
          const skipDomains = [...this.paused, ...[...this.rates.keys()].filter((d) => this.rateWait(d, Date.now()) > 0)];
          const entries = this.paused.has('*') ? [] : await this.store.queue.claim(this.owner, { limit: room, leaseMs: this.options.leaseMs, skipDomains });
          for (const e of entries) {
            if (this.inFlight.has(e.id)) continue;
            this.enqueue(e);
            claimed++;
          }
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, 'queue: claiming due entries failed');
        }
      }
      // A full batch may mean more is due: look again at once; else wait for a wake-up or the poll.
      if (claimed > 0 && claimed === room) continue;
      if (!this.woken && this.running) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.options.pollMs);
          this.wakeUp = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wakeUp = null;
      }
    }
  }

  private async readSettings(): Promise<void> {
    this.nextSettingsRead = Date.now() + SETTINGS_MS;
    try {
      const dir = this.store.directory;
      const [routes, paused, rates, warmups] = await Promise.all([
        dir.listSettings(ROUTE_PREFIX),
        dir.listSettings(PAUSED_PREFIX),
        dir.listSettings(RATE_PREFIX),
        dir.listSettings(WARMUP_PREFIX),
      ]);
      this.routes = new Map();
      for (const { key, value } of routes) {
        const route = parseRoute(value);
        if (route) this.routes.set(key.slice(ROUTE_PREFIX.length), route);
        else this.log.warn({ key, value }, 'queue: ignoring a route that is not HOST:PORT');
      }
      this.paused = new Set(paused.map((p) => p.key.slice(PAUSED_PREFIX.length)));
      this.rates = new Map(rates.map((r) => [r.key.slice(RATE_PREFIX.length), Number(r.value)] as const).filter(([, n]) => Number.isInteger(n) && n > 0));
      this.warmups = new Map();
      this.warmupFull.clear(); // a changed schedule counts at once
      for (const { key, value } of warmups) {
        try {
          this.warmups.set(key.slice(WARMUP_PREFIX.length), parseWarmup(value));
        } catch (err) {
          this.log.warn({ key, value, err: (err as Error).message }, 'queue: ignoring a malformed warm-up schedule');
        }
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'queue: reading routes, pauses, rate limits and warm-ups failed');
    }
  }

  private async checkDkimKeys(): Promise<void> {
    const dkim = this.options.dkim;
    this.nextDkimCheck = Date.now() + dkim.checkMs;
    try {
      const changes = await rotateDkimKeys(this.store.directory, (name) => this.options.dns.txt(name), dkim.retireAfterMs);
      for (const c of changes) this.log.info(c);
      if (changes.length > 0) dkim.signer.forget();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'queue: DKIM key rotation check failed');
    }
  }

  /** The message as it leaves (signed when it was queued): read into memory once when small, else streamed for each transaction. */
  private async prepare(entry: QueueEntry): Promise<() => AsyncIterable<Buffer>> {
    const store = this.store;
    if (entry.size > IN_MEMORY_LIMIT) return () => store.queue.read(entry.id);
    const message = await collect(store.queue.read(entry.id));
    return async function* () {
      yield message;
    };
  }

  /** Where an entry goes instead of its MX hosts: its domain's route, else the smarthost, else null. */
  private relayOf(entry: QueueEntry): Smarthost | null {
    return this.routes.get(entry.domain) ?? this.options.smarthost;
  }

  /** Entries with one destination share lanes and connections: a relay, or a domain's MX hosts. */
  private destinationOf(entry: QueueEntry): string {
    const relay = this.relayOf(entry);
    return relay ? `relay:${relay.host}:${relay.port}` : entry.domain;
  }

  private enqueue(entry: QueueEntry): void {
    this.inFlight.add(entry.id);
    const key = this.destinationOf(entry);
    let d = this.destinations.get(key);
    if (!d) this.destinations.set(key, (d = { key, pending: [], lanes: 0 }));
    d.pending.push(entry);
    if (d.lanes < this.options.concurrency.perDestination && d.pending.length > 0) {
      d.lanes++;
      const lane = this.runLane(d).finally(() => {
        d.lanes--;
        this.lanes.delete(lane);
        if (d.lanes === 0 && d.pending.length === 0) this.destinations.delete(key);
      });
      this.lanes.add(lane);
    }
  }

  /** One connection's worth of work: the destination's entries, one after another, over one connection while it lasts. */
  private async runLane(d: Destination): Promise<void> {
    let conn: OutboundConnection | null = null;
    try {
      for (let entry = d.pending.shift(); entry; entry = d.pending.shift()) {
        try {
          if (!conn?.usable) {
            conn?.close();
            conn = null;
            conn = await this.connect(entry).catch(async (err: unknown) => {
              // The destination is down (or has no mail hosts): what waits for it gets the same answer now, not a timeout each.
              const waiting = d.pending.splice(0);
              for (const other of waiting) await this.settleAll(other, err).finally(() => this.settled(other.id));
              throw err;
            });
          }
          const until = await this.admit(entry, conn.target.host);
          if (until) {
            // Over a rate or the sender's warm-up day: handed back, due when allowed, not counted as an attempt.
            await this.store.queue.postpone(entry.id, until);
            continue;
          }
          await this.attempt(entry, conn);
        } catch (err) {
          await this.settleAll(entry, err);
        } finally {
          this.settled(entry.id);
        }
      }
    } finally {
      conn?.close();
    }
  }

  /**
   * Null when the entry may go now over a connection to `host`: under the rate limits of its
   * domain and of the MX host (both noted at once, so lanes never overtake each other) and
   * its sender's warm-up day (counted in the store). Else when it may go.
   */
  private async admit(entry: QueueEntry, host: string): Promise<Date | null> {
    const now = Date.now();
    const wait = Math.max(this.rateWait(entry.domain, now), this.rateWait(host, now));
    if (wait > 0) return new Date(now + wait);
    const names = [...new Set([entry.domain, host])].filter((n) => this.rates.has(n));
    for (const n of names) this.sent.get(n)!.push(now);
    const warmup = await this.warmupWait(entry);
    if (warmup) for (const n of names) this.sent.get(n)!.splice(this.sent.get(n)!.lastIndexOf(now), 1);
    return warmup;
  }

  /** How long before another message may go to `name` (a domain or MX host) under its rate limit (0: now); keeps the last minute's sends. */
  private rateWait(name: string, now: number): number {
    const limit = this.rates.get(name);
    if (!limit) return 0;
    const times = (this.sent.get(name) ?? []).filter((t) => t > now - 60_000);
    this.sent.set(name, times);
    return times.length < limit ? 0 : times[0]! + 60_000 - now;
  }

  /** Null when the entry's sending domain may send it now (counted in the store), else when its warm-up allows the next message. */
  private async warmupWait(entry: QueueEntry): Promise<Date | null> {
    const sender = entry.envelopeFrom ? domainOf(entry.envelopeFrom) : null;
    const warmup = sender ? this.warmups.get(sender) : undefined;
    if (!sender || !warmup) return null;
    const now = Date.now();
    const full = this.warmupFull.get(sender);
    if (full && full > now) return new Date(full);
    const { key, limit, endsAt } = warmupDay(warmup, now);
    if (limit === null) return null;
    const counter = warmupCounterKey(sender, key);
    if ((await this.store.directory.addToSetting(counter, 1)) <= limit) return null;
    await this.store.directory.addToSetting(counter, -1);
    this.warmupFull.set(sender, endsAt.getTime());
    this.log.info({ domain: sender, limit, until: endsAt.toISOString() }, "queue: the sending domain's warm-up limit for today is reached");
    return endsAt;
  }

  /** An entry is done with; once half the room is free, the loop claims more at once instead of at the next poll. */
  private settled(id: number): void {
    this.inFlight.delete(id);
    if (this.inFlight.size <= this.options.concurrency.total / 2) this.wake();
  }

  /**
   * The targets of an entry in order: the smarthost, or each address of each MX host. Under
   * an MTA-STS policy in enforce mode, only the MX hosts it lists, each with TLS and a valid
   * certificate required; in testing mode, what enforce would skip is only logged.
   */
  private async targets(entry: QueueEntry): Promise<SmtpTarget[]> {
    const s = this.relayOf(entry);
    if (s) return [{ host: s.host, address: s.host, port: s.port, secure: s.secure, requireTls: s.requireTls, auth: s.auth }];
    const out: SmtpTarget[] = [];
    const hosts = await this.options.dns.mailHosts(entry.domain);
    const sts = await this.options.mtaSts?.policy(entry.domain);
    for (const mx of hosts) {
      if (sts && !stsAllows(sts, mx.host)) {
        this.log.warn({ id: entry.ternId, domain: entry.domain, host: mx.host, mode: sts.mode }, 'MTA-STS: MX host not listed in the policy');
        if (sts.mode === 'enforce') continue;
      }
      try {
        for (const address of await this.options.dns.addresses(mx.host))
          out.push({ host: mx.host, address, port: this.options.mxPort, requireTls: sts?.mode === 'enforce' || undefined });
      } catch (err) {
        this.log.debug({ host: mx.host, err: (err as Error).message }, 'queue: MX host has no address now');
      }
    }
    if (out.length === 0 && sts?.mode === 'enforce') throw new ConnectionError(`MTA-STS: the policy of ${entry.domain} lists none of its MX hosts`, 451);
    if (out.length === 0) throw new ConnectionError(`no address found for the mail hosts of ${entry.domain}`, 451);
    return out;
  }

  private async connect(entry: QueueEntry): Promise<OutboundConnection> {
    let last: Error | null = null;
    for (const target of await this.targets(entry)) {
      try {
        const conn = await OutboundConnection.open(target, { hostname: this.options.hostname, timeoutMs: this.options.connectTimeoutMs });
        if (!conn.verified && !this.relayOf(entry) && (await this.options.mtaSts?.policy(entry.domain))?.mode === 'testing') {
          const tls = conn.secure ? 'TLS without a valid certificate' : 'no TLS';
          this.log.warn({ domain: entry.domain, host: target.host, tls }, 'MTA-STS (testing): delivering where an enforce policy would not');
        }
        return conn;
      } catch (err) {
        last = err as Error;
        this.log.info({ id: entry.ternId, host: target.host, address: target.address, err: last.message }, 'queue: connection failed');
      }
    }
    throw last ?? new ConnectionError(`no mail host of ${entry.domain} could be reached`, 451);
  }

  private async attempt(entry: QueueEntry, conn: OutboundConnection): Promise<void> {
    const pending = entry.recipients.filter((r) => r.status === 'pending');
    // One transaction per distinct DSN request: NOTIFY and ORCPT are per recipient.
    const groups = new Map<string, typeof pending>();
    for (const r of pending) {
      const key = `${r.notify ?? ''}\u0000${r.orcpt ?? ''}`;
      groups.set(key, [...(groups.get(key) ?? []), r]);
    }
    const results: AttemptResult[] = [];
    const relayed: QueueRecipient[] = [];
    const endTimer = metrics.deliveryDuration.startTimer();
    const message = await this.prepare(entry);
    for (const group of groups.values()) {
      const first = group[0]!;
      const dsn = { ret: entry.dsn.ret, envid: entry.dsn.envid, notify: first.notify, orcpt: first.orcpt };
      const sent = await conn.send(
        { from: entry.envelopeFrom, to: group.map((r) => r.address), size: entry.size, dsn: Object.values(dsn).some((v) => v) ? dsn : undefined },
        message(),
      );
      for (const r of group) {
        const reply = sent.replies.get(r.address) ?? { code: 451, reply: '451 4.4.0 no reply for this recipient' };
        const status = reply.code < 400 ? 'delivered' : reply.code >= 500 ? 'failed' : 'deferred';
        results.push({ address: r.address, status, reply: reply.reply });
        // RFC 3461 5.2.2: a host without DSN ends the chain; a sender who asked hears it was relayed.
        if (status === 'delivered' && !sent.dsn && /(^|,)SUCCESS(,|$)/.test(r.notify ?? '')) relayed.push({ ...r, reply: reply.reply });
      }
    }
    endTimer();
    const original = relayed.length > 0 && entry.envelopeFrom ? await readOriginal(message(), entry.dsn.ret === 'FULL') : null;
    await this.settle(entry, results, conn.target);
    if (original) await this.notify(entry, `${entry.ternId}S${entry.id}A${entry.attempts}`, 'relayed', relayed, original);
  }

  /** The whole entry got one answer: a DNS or connection failure before any transaction. */
  private async settleAll(entry: QueueEntry, err: unknown): Promise<void> {
    const permanent = err instanceof PermanentDnsError;
    const reply = permanent
      ? `${/null MX/.test(err.message) ? '556 5.1.10' : '550 5.1.2'} ${err.message}`
      : `451 4.4.1 ${err instanceof Error ? err.message : String(err)}`;
    const status = permanent ? 'failed' : 'deferred';
    const pending = entry.recipients.filter((r) => r.status === 'pending');
    await this.settle(
      entry,
      pending.map((r) => ({ address: r.address, status, reply })),
      null,
    );
  }

  private async settle(entry: QueueEntry, results: AttemptResult[], target: SmtpTarget | null): Promise<void> {
    const retryAt = nextAttempt(entry, this.options.retry, Date.now());
    for (const r of results) {
      metrics.deliveries.inc({ result: r.status === 'deferred' && !retryAt ? 'failed' : r.status });
      const fields = { id: entry.ternId, to: r.address, relay: target ? `${target.host}[${target.address}]:${target.port}` : null, reply: r.reply };
      this.log.info(
        fields,
        r.status === 'delivered' ? 'delivered' : r.status === 'failed' ? 'delivery failed' : retryAt ? 'deferred' : 'delivery failed (expired)',
      );
    }
    let state: Awaited<ReturnType<Store['queue']['settle']>>;
    try {
      // Hard bounces join the suppression list with the failure, so an API send that waited for it sees both.
      const suppress = results
        .filter((r) => r.status === 'failed' && isHardBounce(r.reply))
        .map((r) => ({ address: r.address, source: 'bounce' as const, reason: r.reply }));
      state = await this.store.queue.settle(entry.id, results, retryAt, suppress);
      if (state === 'bounce') await this.sendBounce(entry.id);
    } catch (err) {
      // The lease runs out and the entry is tried again: at least once, never lost.
      this.log.error({ id: entry.ternId, err: (err as Error).message }, 'queue: recording an attempt failed');
      return;
    }
    if (retryAt && state === 'queued') await this.warnDelayed(entry, results);
  }

  /**
   * RFC 3461 DELAY: once an entry has waited `retry.delayWarningMs`, its sender hears once
   * (under an id derived from the entry) which recipients are still being retried.
   */
  private async warnDelayed(entry: QueueEntry, results: AttemptResult[]): Promise<void> {
    const after = this.options.retry.delayWarningMs;
    if (after <= 0 || !entry.envelopeFrom || entry.isBounce || Date.now() - entry.createdAt.getTime() < after) return;
    const replies = new Map(results.filter((r) => r.status === 'deferred').map((r) => [r.address, r.reply]));
    const recipients = entry.recipients
      .filter((r) => replies.has(r.address) && wantsDelayNotice(r.notify))
      .map((r) => ({ ...r, reply: replies.get(r.address)! }));
    const until = new Date(entry.createdAt.getTime() + this.options.retry.lifetimeMs);
    try {
      await this.notify(entry, `${entry.ternId}D${entry.id}`, 'delayed', recipients, undefined, until);
    } catch (err) {
      this.log.warn({ id: entry.ternId, err: (err as Error).message }, 'queue: sending a delay notice failed');
    }
  }

  /** Bounces owed by entries whose last attempt settled before a crash or a failed bounce. */
  private async sendOwedBounces(): Promise<void> {
    try {
      for (let after = 0; ;) {
        const page = await this.store.queue.list({ state: 'bounce' }, { after, limit: 100 });
        for (const e of page) await this.sendBounce(e.id);
        if (page.length < 100) break;
        after = page.at(-1)!.id;
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'queue: sending owed bounces failed');
    }
  }

  private async sendBounce(id: number): Promise<void> {
    const entry = await this.store.queue.get(id);
    if (!entry || entry.state !== 'bounce') return;
    const failed = entry.recipients.filter((r) => r.status === 'failed' && wantsFailureNotice(r.notify));
    await this.notify(entry, `${entry.ternId}B${entry.id}`, 'failed', failed);
    await this.store.queue.bounced(id);
  }

  /** Sends a delivery report to the entry's sender, once: under `ternId`, unless a message with that id was stored or queued already. */
  private async notify(
    entry: QueueEntry,
    ternId: string,
    action: DsnAction,
    recipients: QueueRecipient[],
    known?: { bytes: Buffer; whole: boolean },
    willRetryUntil?: Date,
  ): Promise<void> {
    if (recipients.length === 0) return;
    const already = (await this.store.mailboxes.findByTernId(ternId)).length > 0 || (await this.store.queue.events({ ternId, limit: 1 })).length > 0;
    if (already) return;
    const original = known ?? (await readOriginal(this.store.queue.read(entry.id), entry.dsn.ret === 'FULL'));
    const result = await sendDeliveryReport(this.injector, { hostname: this.options.hostname, ternId, entry, action, recipients, original, willRetryUntil });
    const fields = { id: entry.ternId, notice: ternId, to: entry.envelopeFrom, action };
    if (result.stored + result.queued === 0) this.log.warn({ ...fields, refused: result.refused }, 'delivery report could not be delivered');
    else {
      metrics.notices.inc({ action });
      this.log.info(fields, 'delivery report sent');
    }
  }
}
