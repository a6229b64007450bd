/**
 * Trace headers Tern prepends to every message it accepts, per recipient: Return-Path
 * (RFC 5321 4.4), Delivered-To, and Received (RFC 5321 4.4, RFC 5322 3.6.7) naming that
 * recipient in its "for" clause, with the "with" protocol names of RFC 3848 / RFC 6531
 * (ESMTP, ESMTPS, LMTP, UTF8SMTPS…). They are stored as a small per-recipient prefix
 * before the one shared body.
 */

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number) => String(n).padStart(2, '0');

/** RFC 5322 3.3 date-time in UTC, e.g. "Mon, 23 Nov 2026 00:48:31 +0000". */
export function rfc5322Date(d: Date): string {
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

export interface TraceInfo {
  envelopeFrom: string;
  /** The client's HELO name; null for mail Tern made itself. */
  helo: string | null;
  remoteAddress: string;
  localHostname: string;
  /** ESMTP, ESMTPS, SMTP, LMTP, UTF8SMTP… */
  protocol: string;
  ternId: string;
  /** The recipient this copy is for (Delivered-To and the "for" clause). */
  recipient: string;
  date: Date;
}

/**
 * Addresses reach here validated by mail/address.ts (no CR, LF or other controls), and a
 * quoted local part must round-trip exactly: only control characters, which could break
 * out of the header, are replaced (defence in depth).
 */
const addressText = (s: string) => s.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029]/g, '?');
/** The HELO name is any text the client chose: printable ASCII without comment or angle brackets. */
const asciiOnly = (s: string) => s.replace(/[^\x21-\x7e]/g, '?').replace(/[()<>\\]/g, '?');

/**
 * The Received line of one hop. Without a HELO (mail Tern made itself: bounces, `tern
 * send`) it has no "from" clause; without a recipient (a copy leaving for several) no "for".
 */
export function receivedHeader(t: Omit<TraceInfo, 'envelopeFrom' | 'recipient'> & { recipient?: string }): string {
  const from = t.helo === null ? '' : `from ${asciiOnly(t.helo)} ([${t.remoteAddress}])\r\n\t`;
  const by = `by ${t.localHostname} (Tern)${t.helo === null ? '' : ` with ${t.protocol}`} id ${t.ternId}`;
  const rcpt = t.recipient === undefined ? '' : `\r\n\tfor <${addressText(t.recipient)}>`;
  return `Received: ${from}${by}${rcpt};\r\n\t${rfc5322Date(t.date)}\r\n`;
}

export function traceHeaders(t: TraceInfo): Buffer {
  return Buffer.from(`Return-Path: <${addressText(t.envelopeFrom)}>\r\nDelivered-To: ${addressText(t.recipient)}\r\n${receivedHeader(t)}`, 'utf8');
}
