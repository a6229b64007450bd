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
import type { BlobStore, DeliveryRecipient, OutboundMessage, OutboundRecipient } from '../store/store.js';
import { newTernId, type LocalDelivery } from './local-delivery.js';
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
}

export interface Injector {
  inject(m: Injection): Promise<InjectResult>;
}

export function createInjector(deps: {
  resolver: RecipientResolver;
  delivery: LocalDelivery;
  blobs: BlobStore;
  budget: ByteBudget;
  hostname: string;
}): Injector {
  return {
    async inject(m) {
      const ternId = m.ternId ?? newTernId();
      const date = new Date();
      const local: DeliveryRecipient[] = [];
      const remote: OutboundRecipient[] = [];
      const refused: InjectResult['refused'] = [];
      const seen = new Set<number>();
      for (const [group, raw] of m.to.entries()) {
        const r = await deps.resolver.resolve(raw, m.data.length);
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
      if (local.length === 0 && remote.length === 0) return { ternId, stored: 0, queued: 0, refused };
      const sink = new MessageSink(deps.blobs, deps.budget);
      sink.write(m.data);
      const blob = await sink.finish();
      const prefix = Buffer.from(receivedHeader({ helo: null, remoteAddress: '', localHostname: deps.hostname, protocol: '', ternId, date }));
      const outcomes = await deps.delivery.deliver({
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
      });
      for (const o of outcomes) if (o.status !== 'stored') refused.push({ address: String(o.accountId), reason: o.status });
      return { ternId, stored: outcomes.filter((o) => o.status === 'stored').length, queued: remote.length, refused };
    },
  };
}
