/**
 * Errors a person can cause or fix. The CLI turns them into one stderr line in
 * cli/main.ts; the SMTP session maps them to replies (bad address 553, vanished mailbox
 * 550). Anything else is reported as a generic temporary failure (451).
 */

/** A mistake the user can fix; `message` is written for people. */
export class UserError extends Error {
  override name = 'UserError';
}

/** The named thing does not exist (domain, account, alias…). */
export class NotFoundError extends UserError {
  override name = 'NotFoundError';
}

/** The thing already exists, or the change conflicts with existing data. */
export class ConflictError extends UserError {
  override name = 'ConflictError';
}

/** The store could not commit (disk full, database down). Transient: retry later. */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
