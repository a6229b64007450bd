/**
 * One mail transaction's data (sender, recipients, the message being assembled), how a
 * message starts (Tern's id and the sink the body streams into) and the per-recipient
 * trace prefixes it is stored with.
 */
import { newTernId } from '../delivery/local-delivery.js';
import type { ByteBudget } from '../mail/byte-budget.js';
import type { HeaderFilter } from '../mail/header-filter.js';
import { MessageSink } from '../mail/message-sink.js';
import { traceHeaders } from '../mail/trace-headers.js';
import type { BlobStore, DeliveryRecipient } from '../store/store.js';
import type { MailParams } from './command-parser.js';
import { plainAddress } from '../net/ip.js';

export interface Recipient {
  address: string;
  /** The local accounts it reaches; none for a remote one. */
  accountIds: number[];
  /** Submission: an address in another domain, queued for delivery. */
  remote?: boolean;
  /** RFC 3461 NOTIFY and ORCPT from RCPT. */
  notify?: string;
  orcpt?: string;
}

export interface MessageBody {
  ternId: string;
  sink: MessageSink;
  /** Takes a piece of the body (through the header filter, when there is one). */
  write(piece: Buffer): void;
  /** The body has ended: what the filter still holds goes to the sink. */
  end(): void;
}

export interface Transaction {
  from: string;
  params: MailParams;
  recipients: Recipient[];
  /** RCPTs refused because the mailbox is full: they count against the recipient limit too. */
  refused: number;
  startedAt: number;
  /** The message being assembled from BDAT chunks, once the first chunk arrived. */
  chunked?: MessageBody;
}

/** Address literal for the Received header: 1.2.3.4 or IPv6:… (the header adds brackets). */
export function addressLiteral(ip: string): string {
  const a = plainAddress(ip);
  return a.includes(':') ? `IPv6:${a}` : a;
}

/** The Received "with" keyword: RFC 3848 (ESMTP, ESMTPS, ESMTPSA, LMTP, LMTPS) and RFC 6531 (UTF8SMTP, UTF8LMTPS…). */
export function withProtocol(opts: { lmtp: boolean; esmtp: boolean; utf8: boolean; secure: boolean; authenticated?: boolean }): string {
  const base = opts.lmtp ? (opts.utf8 ? 'UTF8LMTP' : 'LMTP') : opts.utf8 ? 'UTF8SMTP' : opts.esmtp || opts.secure || opts.authenticated ? 'ESMTP' : 'SMTP';
  return `${base}${opts.secure ? 'S' : ''}${opts.authenticated ? 'A' : ''}`;
}

export function startMessage(blobs: BlobStore, budget: ByteBudget, filter?: HeaderFilter): MessageBody {
  const sink = new MessageSink(blobs, budget);
  if (!filter) return { ternId: newTernId(), sink, write: (piece) => sink.write(piece), end: () => undefined };
  return {
    ternId: newTernId(),
    sink,
    write: (piece) => {
      const out = filter.write(piece);
      if (out.length > 0) sink.write(out);
    },
    end: () => {
      const out = filter.end();
      if (out.length > 0) sink.write(out);
    },
  };
}

/** One entry per account the message goes to, each with trace headers naming the RCPT address that led there. */
export function deliveryRecipients(opts: {
  tx: Transaction;
  ternId: string;
  helo: string;
  protocol: string;
  /** As the Received header shows it (addressLiteral). */
  remoteAddress: string;
  hostname: string;
  date: Date;
}): DeliveryRecipient[] {
  const out: DeliveryRecipient[] = [];
  const seen = new Set<number>();
  const date = opts.date;
  for (const [group, r] of opts.tx.recipients.entries()) {
    for (const accountId of r.accountIds) {
      if (seen.has(accountId)) continue;
      seen.add(accountId);
      const prefix = traceHeaders({
        envelopeFrom: opts.tx.from,
        helo: opts.helo,
        remoteAddress: opts.remoteAddress,
        localHostname: opts.hostname,
        protocol: opts.protocol,
        ternId: opts.ternId,
        recipient: r.address,
        date,
      });
      out.push({ accountId, prefix, group });
    }
  }
  return out;
}
