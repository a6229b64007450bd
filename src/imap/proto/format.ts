/**
 * Writing IMAP data: strings as quoted strings or literals, nstrings, lists. Pure.
 */

/** A string as IMAP data: quoted when it is short plain text, a literal otherwise. */
export function imapString(value: string): string {
  if (value.length < 1024 && /^[\x20-\x7e]*$/.test(value)) return `"${value.replace(/[\\"]/g, '\\$&')}"`;
  return `{${Buffer.byteLength(value)}}\r\n${value}`;
}

/** A string or NIL. */
export function nstring(value: string | null | undefined): string {
  return value === null || value === undefined ? 'NIL' : imapString(value);
}

/** An astring for mailbox names in LIST/STATUS answers: quoted unless it is a plain atom. */
export function astring(value: string): string {
  return /^[^\x00-\x20\x7f-\uffff(){%*"\\\]]+$/.test(value) ? value : imapString(value);
}
