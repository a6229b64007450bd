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

/** The caller may not do this (an API key without the scope, or limited to another domain). */
export class ForbiddenError extends UserError {
  override name = 'ForbiddenError';
}

/** The store could not commit (disk full, database down). Transient: retry later. */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The change would take an account past its quota. */
export class QuotaExceededError extends UserError {
  override name = 'QuotaExceededError';
}

/** Error classes that cross thread boundaries by name (SQLite workers) and are rebuilt on the other side. */
export const ERROR_CLASSES = { UserError, NotFoundError, ConflictError, ForbiddenError, QuotaExceededError, StoreUnavailableError } as const;

/** A plain-object form of an error that survives postMessage. */
export interface SerializedError {
  name: string;
  message: string;
  code?: string;
}

export function serializeError(err: unknown): SerializedError {
  const e = err instanceof Error ? err : new Error(String(err));
  const code = (e as { code?: unknown }).code;
  return { name: e.name, message: e.message, code: typeof code === 'string' ? code : undefined };
}

export function deserializeError(s: SerializedError): Error {
  const Class = ERROR_CLASSES[s.name as keyof typeof ERROR_CLASSES];
  const err = Class ? new Class(s.message) : new Error(s.message);
  if (s.code) Object.assign(err, { code: s.code });
  return err;
}
