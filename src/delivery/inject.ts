/**
 * Messages Tern makes or takes without an SMTP client (bounces, `tern send`, later the
 * HTTP API): the recipients are resolved by the one resolver, local ones get their copy
 * and remote ones are queued, in one commit through local delivery, exactly as a message
 * accepted over SMTP.
 */
import { domainOf } from '../mail/address.js';
import type { ByteBudget } from '../mail/byte-budget.js';
import { MessageSink } from '../mail/message-sink.js';
import { receivedHeader, traceHeaders } from '../mail/trace-headers.js';
import type { BlobStore, DeliveryOutcome, DeliveryRecipient, OutboundMessage, OutboundRecipient } from '../store/store.js';
import { newTernId, type LocalDelivery, type LocalMessage } from './local-delivery.js';
import type { RecipientResolver } from './recipient-resolver.js';

/** Groups remote recipients into one queue entry per destination domain. */
export function outboundDomains(recipients: OutboundRecipient[]): OutboundMessage['domains'] {
  const byDomain = new Map<string, OutboundRecipient[]>();
  for (const r of recipients) {
    const domain = domainOf(r.address);
    byDomain.set(domain, [...(byDomain.get(domain) ?? []), r]);
  }
  return [...byDomain].map(([domain, list]) => ({ domain, recipients: list }));
}

export interface Injection {
  /** A fixed id makes the injection idempotent for its caller (a bounce is looked up by it first); new by default. */
  ternId?: string;
  from: string;
  to: string[];
  data: Buffer;
  /** The message is a DSN: if it fails in turn, nothing bounces. */
  isBounce?: boolean;
}

export interface InjectResult {
  ternId: string;
  stored: number;
  queued: number;
  /** Recipients refused: unknown local user, over quota. */
  refused: Array<{ address: string; reason: string }>;
  /** What became of each recipient, in the order given. */
  recipients: Array<{ address: string; status: 'delivered' | 'queued' | 'refused'; reason?: string }>;
}

export interface Injector {
  inject(m: Injection): Promise<InjectResult>;
  /** Several messages committed in one transaction (an API batch); each with its own result or error. */
  injectAll(ms: Injection[]): Promise<Array<PromiseSettledResult<InjectResult>>>;
}

export function createInjector(deps: {
  resolver: RecipientResolver;
  delivery: LocalDelivery;
  blobs: BlobStore;
  budget: ByteBudget;
  hostname: string;
}): Injector {
  /** Resolves the recipients and stages the body: the delivery to commit (none when no recipient is left) and how to report it. */
  async function prepare(m: Injection): Promise<{ message: LocalMessage | null; result: (outcomes: DeliveryOutcome[]) => InjectResult }> {
    const ternId = m.ternId ?? newTernId();
    const date = new Date();
    const local: DeliveryRecipient[] = [];
    const remote: OutboundRecipient[] = [];
    const refused: InjectResult['refused'] = [];
    const seen = new Set<number>();
    /** Per recipient: its address and the accounts it reaches (none: remote or refused). */
    const resolved: Array<{ address: string; accountIds: number[]; refused?: string }> = [];
    for (const [group, raw] of m.to.entries()) {
      const r = await deps.resolver.resolve(raw, m.data.length);
      resolved.push({
        address: r.address,
        accountIds: r.kind === 'local' ? r.accountIds : [],
        refused: r.kind === 'local' || r.kind === 'not-local' ? undefined : r.kind,
      });
      if (r.kind === 'not-local') remote.push({ address: r.address });
      else if (r.kind !== 'local') refused.push({ address: r.address, reason: r.kind });
      else {
        for (const accountId of r.accountIds.filter((id) => !seen.has(id))) {
          seen.add(accountId);
          const trace = { helo: null, remoteAddress: '', localHostname: deps.hostname, protocol: '', ternId, date };
          local.push({ accountId, group, prefix: traceHeaders({ ...trace, envelopeFrom: m.from, recipient: r.address }) });
        }
      }
    }
    const result = (outcomes: DeliveryOutcome[]): InjectResult => {
      for (const o of outcomes) if (o.status !== 'stored') refused.push({ address: String(o.accountId), reason: o.status });
      const stored = new Set(outcomes.flatMap((o) => (o.status === 'stored' ? [o.accountId] : [])));
      const why = new Map<number, string>(outcomes.map((o) => [o.accountId, o.status]));
      const recipients = resolved.map((r): InjectResult['recipients'][number] => {
        if (r.refused) return { address: r.address, status: 'refused', reason: r.refused };
        if (r.accountIds.length === 0) return { address: r.address, status: 'queued' };
        if (r.accountIds.some((id) => stored.has(id))) return { address: r.address, status: 'delivered' };
        return { address: r.address, status: 'refused', reason: why.get(r.accountIds[0]!) ?? 'refused' };
      });
      return { ternId, stored: stored.size, queued: remote.length, refused, recipients };
    };
    if (local.length === 0 && remote.length === 0) return { message: null, result };
    const sink = new MessageSink(deps.blobs, deps.budget);
    sink.write(m.data);
    const blob = await sink.finish();
    const prefix = Buffer.from(receivedHeader({ helo: null, remoteAddress: '', localHostname: deps.hostname, protocol: '', ternId, date }));
    const message: LocalMessage = {
      ternId,
      blob,
      envelopeFrom: m.from,
      recipients: local,
      internalDate: date,
      atomic: false,
      outbound: remote.length > 0 ? { prefix, domains: outboundDomains(remote), isBounce: m.isBounce } : undefined,
      rcptCount: m.to.length,
      startedAt: date.getTime(),
      via: 'local',
    };
    return { message, result };
  }

  return {
    async inject(m) {
      const { message, result } = await prepare(m);
      return result(message ? await deps.delivery.deliver(message) : []);
    },
    async injectAll(ms) {
      const prepared = await Promise.allSettled(ms.map(prepare));
      const ready = prepared.flatMap((p) => (p.status === 'fulfilled' && p.value.message ? [p.value.message] : []));
      const delivered = new Map<LocalMessage, PromiseSettledResult<DeliveryOutcome[]>>();
      (await deps.delivery.deliverAll(ready)).forEach((r, i) => delivered.set(ready[i]!, r));
      return prepared.map((p): PromiseSettledResult<InjectResult> => {
        if (p.status === 'rejected') return p;
        const outcome = p.value.message ? delivered.get(p.value.message)! : { status: 'fulfilled' as const, value: [] };
        return outcome.status === 'rejected' ? outcome : { status: 'fulfilled', value: p.value.result(outcome.value) };
      });
    },
  };
}
