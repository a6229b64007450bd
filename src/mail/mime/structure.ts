/**
 * What the MIME parser produces and the store keeps with each body: the part tree with
 * byte offsets (IMAP BODYSTRUCTURE and BODY[section]), the ENVELOPE, the decoded top-level
 * header fields and the decoded text (SEARCH). Plain data: it survives JSON and postMessage.
 */

/** Most bytes of one header block the parser keeps; the rest of the block is counted but not parsed. */
export const HEADER_BLOCK_CAP = 64 * 1024;
/** Most UTF-8 bytes of decoded text kept for SEARCH BODY/TEXT. */
export const TEXT_CAP = 256 * 1024;
/** Deepest nesting of multiparts and enclosed messages; a container at this depth is kept opaque. */
export const MAX_DEPTH = 50;
/** Most parts (enclosed message roots included) in one message; further delimiters are body bytes of the part they are in. */
export const MAX_PARTS = 2000;
/** Most decoded top-level header fields kept in `headers`. */
export const MAX_HEADER_FIELDS = 1000;

export interface AddressValue {
  name: string | null;
  mailbox: string | null;
  host: string | null;
  group?: never;
}

/**
 * ENVELOPE per RFC 3501 7.4.2: strings are the RAW header values (unfolded, encoded-words
 * NOT decoded), null when absent. The first occurrence of each field counts. Sender and
 * Reply-To are null when absent too: RFC 3501 has the server show From in their place,
 * which is for the code that renders an ENVELOPE to do.
 */
export interface Envelope {
  date: string | null;
  subject: string | null;
  from: EnvelopeAddress[] | null;
  sender: EnvelopeAddress[] | null;
  replyTo: EnvelopeAddress[] | null;
  to: EnvelopeAddress[] | null;
  cc: EnvelopeAddress[] | null;
  bcc: EnvelopeAddress[] | null;
  inReplyTo: string | null;
  messageId: string | null;
}

/**
 * RFC 3501 address structure: (name adl mailbox host). A group is a start marker
 * {mailbox: groupName, host: null} … an end marker {mailbox: null, host: null}. An address
 * lacking its local part or domain gets "MISSING_MAILBOX" / "MISSING_DOMAIN" (as Dovecot
 * does), so that host null always means a group marker.
 */
export interface EnvelopeAddress {
  name: string | null;
  adl: string | null;
  mailbox: string | null;
  host: string | null;
}

export interface MimePart {
  /** Byte offsets into the stored body: [headerStart, bodyStart) is the header block including the blank line; [bodyStart, bodyEnd) the body. */
  headerStart: number;
  bodyStart: number;
  bodyEnd: number;
  /** Lower-case; text/plain by default (message/rfc822 inside multipart/digest). */
  type: string;
  subtype: string;
  /**
   * Content-Type parameters, names lower-case, RFC 2231 decoded to UTF-8. A part without a
   * (valid) Content-Type that defaults to text/plain gets charset us-ascii (RFC 2045 5.2).
   */
  params: Array<[string, string]>;
  /** Content-ID, raw. */
  id: string | null;
  /** Content-Description, raw (encoded words not decoded). */
  description: string | null;
  /** Content-Transfer-Encoding as given, upper-cased; "7BIT" when absent. */
  encoding: string;
  /** Body line count: LFs in the body, plus one for a last line without one. */
  lines: number;
  md5: string | null;
  disposition: { type: string; params: Array<[string, string]> } | null;
  language: string[] | null;
  location: string | null;
  /**
   * multipart/*: the parts, in order. Always present on a multipart; empty when it has no
   * parts (no boundary, no delimiter found, or past MAX_DEPTH/MAX_PARTS), which IMAP cannot
   * show as a multipart: render such a part as a basic one.
   */
  children?: MimePart[];
  /**
   * message/rfc822 and message/global: the enclosed message. Absent when the body was not
   * parsed as a message (a base64 or quoted-printable encoding, or past MAX_DEPTH/MAX_PARTS):
   * render the part as a basic one then.
   */
  message?: { envelope: Envelope; root: MimePart };
}

export interface MessageStructure {
  version: 1;
  /** headerStart 0. */
  root: MimePart;
  envelope: Envelope;
  /** Top-level header fields, unfolded and decoded (encoded words, charset) for SEARCH FROM/TO/SUBJECT/HEADER; at most MAX_HEADER_FIELDS. */
  headers: Array<[string, string]>;
  /** Decoded text of the text/* parts (transfer encoding and charset undone, HTML tags stripped), for SEARCH BODY/TEXT; at most TEXT_CAP UTF-8 bytes. */
  text: string;
}

export function emptyEnvelope(): Envelope {
  return { date: null, subject: null, from: null, sender: null, replyTo: null, to: null, cc: null, bcc: null, inReplyTo: null, messageId: null };
}

// Helpers over a structure, also importable from here (they import only this file's types).
export { findPart } from './sections.js';
export { parseStoredStructure, serializeStructure } from './serialize.js';
