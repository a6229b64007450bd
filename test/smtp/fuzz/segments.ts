/**
 * The pieces a fuzz conversation is made of: a segment is what the client sends for one
 * protocol unit (a command line, a message with its terminator, a BDAT line with its
 * chunk), with the reply a valid conversation expects for it.
 */
import type { Mode } from './framing.js';

/** Acceptable reply codes: 250 means exactly 250, a single digit 5 means any 5xx. */
export interface Expect {
  codes: number[];
  /** Text that must not appear in the reply (e.g. STARTTLS advertised again after TLS). */
  excludes?: string;
}

export interface Segment {
  bytes: Buffer;
  /** What this segment is, for reports. */
  label: string;
  /** The reply (every reply, for LMTP's per-recipient answers) a valid conversation expects. */
  expect?: Expect;
  /** A real client waits for the replies here before sending more (after DATA, STARTTLS). */
  syncAfter?: boolean;
  /** The client stops reading replies for this many ms while it sends this segment. */
  stallReading?: number;
}

export interface Limits {
  maxLineLength: number;
  maxMessageSize: number;
  maxRecipients: number;
}

export interface ConversationContext {
  mode: Mode;
  limits: Limits;
  /** The server's own host name (postmaster@ it is an alias). */
  hostname: string;
  /** Local domain with the accounts alice@ and bob@. */
  domain: string;
}

export const line = (text: string, label: string, expect?: number[], syncAfter = false): Segment => ({
  bytes: Buffer.from(`${text}\r\n`, 'utf8'),
  label,
  ...(expect ? { expect: { codes: expect } } : {}),
  ...(syncAfter ? { syncAfter } : {}),
});

export function expectMatches(expect: Expect, code: number, text: string): boolean {
  const codeOk = expect.codes.some((c) => (c < 10 ? Math.floor(code / 100) === c : c === code));
  return codeOk && !(expect.excludes && text.includes(expect.excludes));
}

export function showExpect(expect: Expect): string {
  const codes = expect.codes.map((c) => (c < 10 ? `${c}xx` : String(c))).join('|');
  return expect.excludes ? `${codes} without ${JSON.stringify(expect.excludes)}` : codes;
}
