/**
 * Abuse controls for strangers (clients outside the trusted networks): brute-force bans,
 * connection and message rates, and greylisting.
 * - Bans: `banAfter` failed logins (SMTP, IMAP, POP3, HTTP keys) from one address within
 *   `banWindowMs` ban it for `banMs` on every port of every node (the ban is in the
 *   store; each node rereads the list every few seconds, and knows its own at once).
 * - Rates (per node, in memory): new connections per address per minute, MX messages per
 *   address per hour, submission messages per account per hour and per day.
 * - Greylisting (state in the store): the first message of a triplet (client /24 or /64,
 *   sender, recipient) is deferred for `greylistDelayMs`; the retry passes.
 * Trusted clients skip all of it. A limit of 0 is off.
 */
import { isIP } from 'node:net';
import { ipv6Groups, plainAddress } from '../net/ip.js';
import type { Logger } from 'pino';
import { createHash } from 'node:crypto';
import type { TrustedNetworks } from '../config/trusted-networks.js';
import type { DirectoryStore } from '../store/store.js';

export interface GuardLimits {
  banAfter: number;
  banWindowSeconds: number;
  banSeconds: number;
  connectionRate: number;
  messageRate: number;
  accountHourlyMessages: number;
  accountDailyMessages: number;
}

export interface GreylistOptions {
  delayMs: number;
  /** A first attempt not retried within this is forgotten. */
  retryMs: number;
  /** A triplet that passed passes at once while it is seen at least this often. */
  keepMs: number;
}

export const DEFAULT_GREYLIST: GreylistOptions = { delayMs: 5 * 60_000, retryMs: 24 * 3_600_000, keepMs: 35 * 24 * 3_600_000 };

const REFRESH_MS = 5_000;
const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Addresses or accounts tracked per window before the oldest are forgotten (bounded memory under a flood). */
const MAX_TRACKED = 100_000;

/** Counts events per key in a fixed window (cheap, bounded; a burst at a window's edge may get up to twice the limit). */
class WindowCounter {
  private counts = new Map<string, number>();
  private started = Date.now();
  constructor(private readonly windowMs: number) {}

  /** Adds one for `key` and returns the count in this window. */
  hit(key: string, now = Date.now()): number {
    if (now - this.started >= this.windowMs || this.counts.size >= MAX_TRACKED) {
      this.counts = new Map();
      this.started = now;
    }
    const n = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, n);
    return n;
  }

  forget(key: string): void {
    this.counts.delete(key);
  }

  /** Seconds until the window turns. */
  retryAfter(now = Date.now()): number {
    return Math.max(1, Math.ceil((this.started + this.windowMs - now) / 1000));
  }
}

/** The client's network for greylisting: its /24 (IPv4) or /64 (IPv6), so a sender's pool of outbound hosts counts as one. */
export function greylistNetwork(address: string): string {
  const a = plainAddress(address);
  if (isIP(a) === 4) return a.split('.').slice(0, 3).join('.');
  return ipv6Groups(a)?.slice(0, 4).join(':') ?? a;
}

export class Guard {
  private bans = new Map<string, number>();
  private readonly failures: WindowCounter;
  private readonly connections = new WindowCounter(MINUTE);
  private readonly messages = new WindowCounter(HOUR);
  private readonly accountHour = new WindowCounter(HOUR);
  private readonly accountDay = new WindowCounter(DAY);
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly directory: DirectoryStore,
    readonly trusted: TrustedNetworks,
    private readonly limits: GuardLimits,
    private readonly log: Logger,
  ) {
    this.failures = new WindowCounter(Math.max(1, limits.banWindowSeconds) * 1000);
  }

  /** Loads the bans and rereads them every few seconds (bans made or lifted elsewhere). */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), REFRESH_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private async refresh(): Promise<void> {
    try {
      const now = new Date();
      this.bans = new Map((await this.directory.listBans(now)).map((b) => [b.address, b.expiresAt.getTime()]));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'bans: cannot read the list; keeping the last one');
    }
  }

  isTrusted(address: string): boolean {
    return this.trusted.has(address);
  }

  banned(address: string): boolean {
    const a = plainAddress(address);
    const until = this.bans.get(a);
    return until !== undefined && until > Date.now() && !this.isTrusted(a);
  }

  /** Whether a new connection may proceed: refused while banned, or past the connection rate. */
  admitConnection(address: string): 'ok' | 'banned' | 'rate' {
    if (this.isTrusted(address)) return 'ok';
    if (this.banned(address)) return 'banned';
    if (this.limits.connectionRate > 0 && this.connections.hit(plainAddress(address)) > this.limits.connectionRate) return 'rate';
    return 'ok';
  }

  /** A failed login from `address`: past `banAfter` in the window, the address is banned everywhere. */
  loginFailed(address: string, protocol: string): void {
    const a = plainAddress(address);
    if (this.limits.banAfter <= 0 || this.isTrusted(a) || this.banned(a)) return;
    if (this.failures.hit(a) < this.limits.banAfter) return;
    this.failures.forget(a); // once the ban ends, it takes banAfter new failures again
    const until = Date.now() + this.limits.banSeconds * 1000;
    this.bans.set(a, until);
    const reason = `${this.limits.banAfter} failed logins (${protocol}) within ${this.limits.banWindowSeconds} s`;
    this.log.warn({ ip: a, until: new Date(until).toISOString(), reason }, 'banned');
    this.directory.addBan(a, reason, new Date(until)).catch((err: unknown) => this.log.warn({ ip: a, err: (err as Error).message }, 'ban not stored'));
  }

  /** MX: another message from `address`; seconds to wait when past the hourly rate, else 0. */
  messageWait(address: string): number {
    if (this.limits.messageRate <= 0 || this.isTrusted(address)) return 0;
    return this.messages.hit(plainAddress(address)) > this.limits.messageRate ? this.messages.retryAfter() : 0;
  }

  /** Submission: another message from the account; 'hour' or 'day' when past that limit. */
  accountMessage(account: string): 'ok' | 'hour' | 'day' {
    if (this.limits.accountDailyMessages > 0 && this.accountDay.hit(account) > this.limits.accountDailyMessages) return 'day';
    if (this.limits.accountHourlyMessages > 0 && this.accountHour.hit(account) > this.limits.accountHourlyMessages) return 'hour';
    return 'ok';
  }

  /** Greylisting: 0 when mail from `address` for this sender and recipient may pass now, else the seconds still to wait. */
  async greylistWait(address: string, sender: string, recipient: string, o: GreylistOptions): Promise<number> {
    const r = await this.directory.greylist(Guard.triplet(address, sender, recipient), { now: new Date(), ...o });
    return r.pass ? 0 : Math.max(1, Math.ceil(r.waitMs / 1000));
  }

  /** The greylisting key of a triplet (hashed: the table holds no addresses in clear). */
  static triplet(address: string, sender: string, recipient: string): string {
    return createHash('sha256')
      .update(`${greylistNetwork(address)}\0${sender.toLowerCase()}\0${recipient.toLowerCase()}`)
      .digest('base64url');
  }
}
