/**
 * Delivery status notifications (RFC 3464 multipart/report, RFC 3461 for what the sender
 * asked): bounces for failed recipients, delay notices for recipients still being retried
 * after a while, and success notices (delivered, or relayed to a host without DSN) for
 * recipients that asked with NOTIFY=SUCCESS. A human-readable part,
 * the machine-readable message/delivery-status, and the original message's headers (or,
 * with RET=FULL, the whole message when it is small enough). Sent from the null sender,
 * so a notice never bounces (RFC 5321 4.5.5).
 */
import { randomBytes } from 'node:crypto';
import { rfc5322Date } from '../mail/trace-headers.js';
import type { InjectResult, Injector } from '../delivery/inject.js';
import type { QueueEntry, QueueRecipient } from '../store/store.js';

/** Largest original returned whole with RET=FULL; larger ones get their headers only. */
export const MAX_RETURNED_BODY = 256 * 1024;

/** The RFC 3463 status in a reply ("550 5.1.1 …" → 5.1.1), else one made from its class. */
export function statusOf(reply: string | null): string {
  const enhanced = /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/.exec(reply ?? '');
  if (enhanced) return enhanced[1]!;
  return reply?.startsWith('4') ? '4.4.7' : '5.0.0';
}

/** Text safe inside a header field or a report line: one line, printable ASCII. */
const oneLine = (s: string) => s.replace(/[\r\n]+/g, ' ').replace(/[^\x20-\x7e]/g, '?');

export type DsnAction = 'failed' | 'delayed' | 'delivered' | 'relayed';

/** What a notice needs of the message it reports on (a queue entry, or a message just stored). */
export type ReportedMessage = Pick<QueueEntry, 'ternId' | 'envelopeFrom' | 'dsn' | 'createdAt'>;

const SUBJECTS: Record<DsnAction, string> = {
  failed: 'Undelivered Mail Returned to Sender',
  delayed: 'Delayed Mail (still being retried)',
  delivered: 'Successful Mail Delivery Report',
  relayed: 'Successful Mail Delivery Report',
};

const SUMMARIES: Record<DsnAction, string> = {
  failed: "Your message could not be delivered to one or more recipients. It's attached below.",
  delayed:
    'Your message has not been delivered yet to the recipients below. It stays queued and will be tried again; you need do nothing. This is the only delay notice you will get for it.',
  delivered: 'Your message was delivered to the recipients below, as you asked to be told.',
  relayed: 'Your message was handed to the next mail server for the recipients below, which does not report deliveries; this is the last notice you will get.',
};

const DESCRIPTIONS: Record<DsnAction, string> = {
  failed: 'Undelivered message',
  delayed: 'Delayed message',
  delivered: 'Delivered message',
  relayed: 'Delivered message',
};

export function deliveryReport(o: {
  hostname: string;
  entry: ReportedMessage;
  action?: DsnAction;
  recipients: Array<Pick<QueueRecipient, 'address' | 'reply' | 'orcpt'>>;
  /** The original message: its header block, or all of it (RET=FULL, small enough). */
  original: { bytes: Buffer; whole: boolean };
  messageId: string;
  now: Date;
  /** Delay notices: when the message will be given up on. */
  willRetryUntil?: Date;
}): Buffer {
  const boundary = `tern-report-${randomBytes(9).toString('hex')}`;
  const action = o.action ?? 'failed';
  const to = o.entry.envelopeFrom;
  const human = [
    `This is the mail system at ${o.hostname}.`,
    '',
    SUMMARIES[action],
    '',
    ...o.recipients.map((r) => `<${oneLine(r.address)}>: ${oneLine(r.reply ?? action)}`),
    '',
  ];
  const perMessage = [
    `Reporting-MTA: dns; ${o.hostname}`,
    ...(o.entry.dsn.envid ? [`Original-Envelope-Id: ${oneLine(o.entry.dsn.envid)}`] : []),
    `X-Tern-Id: ${o.entry.ternId}`,
    `Arrival-Date: ${rfc5322Date(o.entry.createdAt)}`,
  ];
  const perRecipient = o.recipients.map((r) =>
    [
      '',
      `Final-Recipient: rfc822; ${oneLine(r.address)}`,
      ...(r.orcpt ? [`Original-Recipient: ${oneLine(r.orcpt)}`] : []),
      `Action: ${action}`,
      `Status: ${action === 'failed' || action === 'delayed' ? statusOf(r.reply) : '2.0.0'}`,
      ...(r.reply && /^\d{3}/.test(r.reply) ? [`Diagnostic-Code: smtp; ${oneLine(r.reply)}`] : []),
      `Last-Attempt-Date: ${rfc5322Date(o.now)}`,
      ...(o.willRetryUntil ? [`Will-Retry-Until: ${rfc5322Date(o.willRetryUntil)}`] : []),
    ].join('\r\n'),
  );
  const head = [
    `From: Mail Delivery System <MAILER-DAEMON@${o.hostname}>`,
    `To: <${oneLine(to)}>`,
    `Subject: ${SUBJECTS[action]}`,
    `Date: ${rfc5322Date(o.now)}`,
    `Message-ID: <${o.messageId}>`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    'This is a MIME-encapsulated delivery status notification.',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Description: Notification',
    '',
    ...human,
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    'Content-Description: Delivery report',
    '',
    perMessage.join('\r\n') + perRecipient.join('\r\n'),
    '',
    `--${boundary}`,
    o.original.whole ? 'Content-Type: message/rfc822' : 'Content-Type: text/rfc822-headers',
    `Content-Description: ${DESCRIPTIONS[action]}${o.original.whole ? '' : ' headers'}`,
    '',
    '',
  ].join('\r\n');
  const tail = `${o.original.bytes.length > 0 && !o.original.bytes.subarray(-2).equals(Buffer.from('\r\n')) ? '\r\n' : ''}\r\n--${boundary}--\r\n`;
  return Buffer.concat([Buffer.from(head, 'utf8'), o.original.bytes, Buffer.from(tail)]);
}

/** Reads the original from its chunks: the header block (up to and including the blank line), or everything when `whole`. */
export async function readOriginal(chunks: AsyncIterable<Buffer>, whole: boolean, limit = MAX_RETURNED_BODY): Promise<{ bytes: Buffer; whole: boolean }> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const c of chunks) {
    parts.push(c);
    size += c.length;
    const so = Buffer.concat(parts);
    if (!whole || size > limit) {
      const end = so.indexOf('\r\n\r\n');
      if (end >= 0) return { bytes: so.subarray(0, end + 2), whole: false };
      if (size > limit) return { bytes: so.subarray(0, so.lastIndexOf('\r\n') + 2), whole: false };
    }
  }
  const all = Buffer.concat(parts);
  if (whole) return { bytes: all, whole: true };
  const end = all.indexOf('\r\n\r\n');
  return { bytes: end >= 0 ? all.subarray(0, end + 2) : all, whole: false };
}

/** Builds a report and injects it for the message's sender, from the null sender, as a message that never bounces. */
export function sendDeliveryReport(
  injector: Injector,
  o: {
    hostname: string;
    ternId: string;
    entry: ReportedMessage;
    action: DsnAction;
    recipients: Array<Pick<QueueRecipient, 'address' | 'reply' | 'orcpt'>>;
    original: { bytes: Buffer; whole: boolean };
    willRetryUntil?: Date;
  },
): Promise<InjectResult> {
  const data = deliveryReport({ ...o, messageId: `${o.ternId}@${o.hostname}`, now: new Date() });
  return injector.inject({ ternId: o.ternId, from: '', to: [o.entry.envelopeFrom], data, isBounce: true });
}
