/**
 * One mail transaction's data (sender, recipients, the message being assembled) and how
 * a message starts: Tern's id, the trace headers, and the sink the body streams into.
 */
import { newTernId } from '../delivery/local-delivery.js';
import { MessageSink } from '../mail/message-sink.js';
import { traceHeaders } from '../mail/trace-headers.js';
import type { MailParams } from './command-parser.js';

export interface Recipient {
  address: string;
  accountIds: number[];
}

export interface MessageBody {
  ternId: string;
  sink: MessageSink;
  /** Body bytes received so far (BDAT), to enforce the size limit. */
  size: number;
}

export interface Transaction {
  from: string;
  params: MailParams;
  recipients: Recipient[];
  startedAt: number;
  /** The message being assembled from BDAT chunks, once the first chunk arrived. */
  chunked?: MessageBody;
}

/** Whatever SIZE= says, the first allocation stays modest; the sink grows as data arrives. */
const MAX_PREALLOCATION = 1024 * 1024;

/** Address literal for the Received header: 1.2.3.4 or IPv6:… (the header adds brackets). */
export function addressLiteral(ip: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  if (v4) return v4[1]!;
  return ip.includes(':') ? `IPv6:${ip}` : ip;
}

/** The Received "with" keyword: RFC 3848 (ESMTP, ESMTPS, LMTP, LMTPS) and RFC 6531 (UTF8SMTP, UTF8LMTPS…). */
export function withProtocol(opts: { lmtp: boolean; esmtp: boolean; utf8: boolean; secure: boolean }): string {
  const base = opts.lmtp ? (opts.utf8 ? 'UTF8LMTP' : 'LMTP') : opts.utf8 ? 'UTF8SMTP' : opts.esmtp || opts.secure ? 'ESMTP' : 'SMTP';
  return `${base}${opts.secure ? 'S' : ''}`;
}

export function startMessage(opts: {
  tx: Transaction;
  helo: string;
  protocol: string;
  remoteAddress: string;
  hostname: string;
  maxMessageSize: number;
}): MessageBody {
  const ternId = newTernId();
  const prefix = traceHeaders({
    envelopeFrom: opts.tx.from,
    helo: opts.helo,
    remoteAddress: addressLiteral(opts.remoteAddress),
    localHostname: opts.hostname,
    protocol: opts.protocol,
    ternId,
    recipients: opts.tx.recipients.map((r) => r.address),
    date: new Date(),
  });
  const sizeHint = Math.min(opts.tx.params.size ?? 0, MAX_PREALLOCATION);
  return { ternId, sink: new MessageSink(prefix, sizeHint, opts.maxMessageSize), size: 0 };
}
