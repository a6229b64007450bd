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
  helo: string;
  remoteAddress: string;
  localHostname: string;
  /** ESMTP, ESMTPS, SMTP, LMTP, UTF8SMTP… */
  protocol: string;
  ternId: string;
  /** The recipient this copy is for (Delivered-To and the "for" clause). */
  recipient: string;
  date: Date;
}

/** Keeps client-controlled text inside its header: controls, spaces, comment and angle brackets become '?'. */
const unsafe = (s: string) => s.replace(/[^\x21-\x7e\u00a0-\u2027\u202a-\uffff]/g, '?').replace(/[()<>\\]/g, '?');
/** The HELO name is any text the client chose: ASCII only. */
const asciiOnly = (s: string) => unsafe(s).replace(/[^\x21-\x7e]/g, '?');

export function traceHeaders(t: TraceInfo): Buffer {
  const received =
    `Received: from ${asciiOnly(t.helo)} ([${t.remoteAddress}])\r\n` +
    `\tby ${t.localHostname} (Tern) with ${t.protocol} id ${t.ternId}\r\n` +
    `\tfor <${unsafe(t.recipient)}>;\r\n` +
    `\t${rfc5322Date(t.date)}\r\n`;
  return Buffer.from(`Return-Path: <${unsafe(t.envelopeFrom)}>\r\nDelivered-To: ${unsafe(t.recipient)}\r\n${received}`, 'utf8');
}
