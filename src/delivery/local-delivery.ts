/**
 * Local delivery: commits one accepted message to the mailbox of each resolved account
 * (one shared body, a per-recipient trace prefix), queueing its remote recipients in the
 * same commit (DKIM-signed first, by the envelope sender's domain or, for a bounce, the
 * site's host name), and logs it. Used by SMTP, LMTP and,
 * later, the HTTP API and import, so every path stores and logs mail the same way.
 *
 * No 451 for a stored message: when the commit fails ambiguously (the writer thread died,
 * the store went away mid-commit), the delivery is looked up by its Tern id before the
 * failure is reported; if it was stored, it counts as stored.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { StoreUnavailableError } from '../errors.js';
import { metrics } from '../metrics.js';
import { domainOf } from '../mail/address.js';
import type { DkimSigner } from '../queue/dkim.js';
import type { ReportIntake } from './report-intake.js';
import { createMaildirTarget } from './maildir-target.js';
import { outcomesFromStored, type DeliveryOutcome, type NewDelivery, type Store } from '../store/store.js';

export type LocalMessage = NewDelivery & { startedAt: number; via: string; rcptCount: number };

export interface LocalDelivery {
  deliver(message: LocalMessage): Promise<DeliveryOutcome[]>;
  /** Messages committed in one transaction (an API batch); each with its own outcomes or error. */
  deliverAll(messages: LocalMessage[]): Promise<Array<PromiseSettledResult<DeliveryOutcome[]>>>;
}

/** Random bytes drawn 6 at a time; one getrandom call per 680 ids instead of one per id. */
let pool = Buffer.alloc(0);
let used = 0;

/** A short unique id for one accepted transaction (logs, Received header, replies): the time and 48 random bits. */
export function newTernId(): string {
  if (used + 6 > pool.length) {
    pool = randomBytes(4080);
    used = 0;
  }
  used += 6;
  return `${Date.now().toString(36)}${pool.toString('hex', used - 6, used)}`.toUpperCase();
}

/** A delivery's result, with the outcomes of the copies written to Maildirs (by recipient index). */
interface Committed {
  result: PromiseSettledResult<DeliveryOutcome[]>;
  written: Map<number, DeliveryOutcome>;
}

export function createLocalDelivery(store: Store, log: Logger, dkim: { signer: DkimSigner; hostname: string }, reports?: ReportIntake): LocalDelivery {
  const maildirs = createMaildirTarget(store);
  /** The queued copies' prefix with the DKIM signatures in front (they cover the prefix and the body). */
  async function signed(delivery: NewDelivery): Promise<NewDelivery> {
    const outbound = delivery.outbound;
    if (!outbound?.domains.length) return delivery;
    const domain = delivery.envelopeFrom ? domainOf(delivery.envelopeFrom) : dkim.hostname;
    const parts = (async function* () {
      yield outbound.prefix;
      yield* store.blobs.staged(delivery.blob);
    })();
    const signatures = await dkim.signer.sign(domain, parts, outbound.prefix.length + delivery.blob.size);
    return signatures ? { ...delivery, outbound: { ...outbound, prefix: Buffer.concat([Buffer.from(signatures), outbound.prefix]) } } : delivery;
  }

  async function storedAfterAll(delivery: NewDelivery): Promise<DeliveryOutcome[] | null> {
    try {
      const stored = await store.mailboxes.findByTernId(delivery.ternId);
      if (stored.length > 0) return outcomesFromStored(delivery, stored);
      // Only remote recipients: the commit happened if its queue entries exist.
      return delivery.outbound?.domains.length && (await store.queue.countByTernId(delivery.ternId)) > 0 ? [] : null;
    } catch {
      return null; // still unreachable: the failure stands
    }
  }

  /** The outcomes of a committed delivery (or of one whose commit failed ambiguously but happened), logged and counted. */
  async function settled(m: LocalMessage, delivery: NewDelivery, { result, written }: Committed): Promise<DeliveryOutcome[]> {
    let outcomes: DeliveryOutcome[];
    if (result.status === 'fulfilled') outcomes = result.value;
    else {
      const err: unknown = result.reason;
      const after = err instanceof StoreUnavailableError ? await storedAfterAll(delivery) : null;
      if (!after) throw err;
      log.warn({ id: m.ternId, err: err instanceof Error ? err.message : String(err) }, 'commit failed ambiguously but the message is stored');
      // The copies written to Maildirs are not in the store: their outcomes stand as written.
      outcomes = after.length ? after.map((o, k) => written.get(k) ?? o) : after;
    }
    const stored = outcomes.filter((o) => o.status === 'stored').length;
    // A refused delivery (atomic, a recipient over quota) queues nothing either.
    const refused = delivery.atomic && stored === 0 && outcomes.some((o) => o.status === 'over-quota');
    const queued = refused ? 0 : (delivery.outbound?.domains.reduce((n, d) => n + d.recipients.length, 0) ?? 0);
    if (stored + queued > 0) metrics.received.inc({ via: m.via });
    // Reports other systems send about our domains come from outside, over the MX or LMTP.
    if (stored > 0 && (m.via === 'smtp' || m.via === 'lmtp')) reports?.consider(delivery);
    log.info(
      { id: m.ternId, from: m.envelopeFrom, rcpts: m.rcptCount, stored, queued, size: m.blob.size, ms: Date.now() - m.startedAt, via: m.via },
      stored + queued > 0 ? 'message accepted' : 'message refused',
    );
    return outcomes;
  }

  /** The delivery to commit: signed, and without what only the log needs. */
  const prepared = (m: LocalMessage): Promise<NewDelivery> => {
    const delivery: NewDelivery & Partial<LocalMessage> = { ...m, received: true };
    delete delivery.startedAt;
    delete delivery.via;
    delete delivery.rcptCount;
    return signed(delivery);
  };

  /**
   * Commits a delivery: the copies of recipients in Maildir-mode domains are written to
   * their Maildirs first (delivery/maildir-target.ts), the rest go to the store; one outcome
   * per recipient, in order, as if the store had stored them all.
   */
  async function commit(deliveries: NewDelivery[]): Promise<Committed[]> {
    const taken = await Promise.allSettled(deliveries.map((d) => maildirs.take(d)));
    const toStore = taken.flatMap((t) => (t.status === 'fulfilled' && t.value.rest ? [t.value.rest] : []));
    const stored =
      toStore.length === 0
        ? []
        : toStore.length === 1
          ? await Promise.allSettled([store.mailboxes.deliver(toStore[0]!)])
          : await store.mailboxes.deliverTogether(toStore);
    let next = 0;
    return taken.map((t, i): Committed => {
      if (t.status === 'rejected') return { result: t, written: new Map() };
      const { written, rest } = t.value;
      if (written.size === 0) return { result: stored[next++]!, written };
      const fromStore = rest ? stored[next++]! : { status: 'fulfilled' as const, value: [] };
      if (fromStore.status === 'rejected') return { result: fromStore, written };
      const others = [...fromStore.value];
      return { result: { status: 'fulfilled', value: deliveries[i]!.recipients.map((_, k) => written.get(k) ?? others.shift()!) }, written };
    });
  }

  return {
    async deliver(m) {
      const delivery = await prepared(m);
      const [committed] = await commit([delivery]);
      return settled(m, delivery, committed!);
    },
    async deliverAll(ms) {
      const deliveries = await Promise.all(ms.map(prepared));
      const results = await commit(deliveries);
      return Promise.allSettled(ms.map((m, i) => settled(m, deliveries[i]!, results[i]!)));
    },
  };
}
