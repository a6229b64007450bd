/**
 * How errors become IMAP answers, in one place: typed store errors map to NO with a
 * response code (RFC 5530), anything unknown to "NO [SERVERBUG]" (logged by the session).
 */
import { ConflictError, NotFoundError, QuotaExceededError, StoreUnavailableError, UserError } from '../errors.js';

/** A refusal a command chooses: answered "NO [code] text". */
export class ImapNo extends Error {
  constructor(
    readonly code: string | null,
    text: string,
  ) {
    super(text);
  }
}

/**
 * The text of a status response, safe to send: printable ASCII only (RFC 3501 TEXT-CHAR; a
 * client's CR, LF, NUL, escapes or 8-bit bytes echoed in a message never reach the wire) and
 * never ending like a literal announcement.
 */
export function responseText(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').replace(/\{\d+\+?\}$/, '$&.');
}

/** An answer already half written (a literal announced) cannot be completed: the session closes the connection. */
export class BrokenAnswer extends Error {}

export function answerFor(err: unknown): string {
  if (err instanceof ImapNo) return `NO ${err.code ? `[${err.code}] ` : ''}${err.message}`;
  if (err instanceof QuotaExceededError) return `NO [OVERQUOTA] ${err.message}`;
  if (err instanceof NotFoundError) return `NO [NONEXISTENT] ${err.message}`;
  if (err instanceof ConflictError) return `NO [ALREADYEXISTS] ${err.message}`;
  if (err instanceof UserError) return `NO ${err.message}`;
  if (err instanceof StoreUnavailableError) return 'NO [UNAVAILABLE] The mail store is unavailable, try again later';
  return 'NO [SERVERBUG] Internal error; the problem is logged';
}
