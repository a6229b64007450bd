/**
 * Trace headers Tern prepends to every message it accepts: Return-Path (RFC 5321
 * 4.4) and Received (RFC 5321 4.4, RFC 5322 3.6.7), with the "with" protocol names of
 * RFC 3848 / RFC 6531 (ESMTP, ESMTPS, LMTP, UTF8SMTPS…).
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
  /** Named in "for <…>" only when there is exactly one, so one blob serves every recipient. */
  recipients: string[];
  date: Date;
}

/**
 * Control characters (C0, DEL, C1) and Unicode line separators: nothing a header line may carry. The address
 * parser (mail/address.ts) already refuses them in envelope addresses; this is the backstop.
 */
const CONTROLS = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/g;
/** An envelope address exactly as parsed (quoted local parts included: RFC 5321 4.4 wants the path as given). */
const pathText = (address: string) => address.replace(CONTROLS, '?');
/** The HELO name is any text the client chose: printable ASCII, and no brackets or backslash that could fake a comment. */
const heloText = (helo: string) => helo.replace(/[^\x21-\x7e]/g, '?').replace(/[()<>\\]/g, '?');

export function traceHeaders(t: TraceInfo): Buffer {
  const forClause = t.recipients.length === 1 ? `\r\n\tfor <${pathText(t.recipients[0]!)}>` : '';
  const received =
    `Received: from ${heloText(t.helo)} ([${t.remoteAddress}])\r\n` +
    `\tby ${t.localHostname} (Tern) with ${t.protocol} id ${t.ternId}${forClause};\r\n` +
    `\t${rfc5322Date(t.date)}\r\n`;
  return Buffer.from(`Return-Path: <${pathText(t.envelopeFrom)}>\r\n${received}`, 'utf8');
}
