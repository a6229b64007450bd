/**
 * How PostgreSQL failures are classified: a connection that is gone or a server that
 * cannot serve (StoreUnavailableError, SMTP 451), a conflict worth retrying (deadlock,
 * serialization failure), or an ordinary error of one operation.
 */
import { StoreUnavailableError } from '../../errors.js';

/** Socket errors that mean the server cannot be reached or the connection broke. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/** SQLSTATEs of a connection that is gone or a server that cannot serve: 08 connection exception, 57P01-03 shutdown/startup. */
const CONNECTION_SQLSTATE = /^(08|57P0[123])/;
/** SQLSTATEs that are transient without breaking the connection: 53 insufficient resources, 58 system error, 57014 statement timeout. */
const TRANSIENT_SQLSTATE = /^(53|58|57014)/;
/** Deadlock and serialization failure: the transaction can simply be run again. */
const RETRY_SQLSTATE = /^(40001|40P01)$/;
/** node-postgres and pg-pool report lost connections and timeouts by message only. */
const CONNECTION_MESSAGE =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable|Query read timeout/i;

export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** True when the connection is unusable (or could not be made): the client must be destroyed. */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof AggregateError) return err.errors.some(isConnectionError);
  const code = errorCode(err);
  return SOCKET_CODES.has(code) || CONNECTION_SQLSTATE.test(code) || (err instanceof Error && CONNECTION_MESSAGE.test(err.message));
}

export const isRetryable = (err: unknown): boolean => RETRY_SQLSTATE.test(errorCode(err));

/** Errors that fail a whole batch rather than one operation in it. */
export const isFatal = (err: unknown): boolean => isConnectionError(err) || isRetryable(err) || TRANSIENT_SQLSTATE.test(errorCode(err));

function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describeError(err.errors[0]);
  if (err instanceof Error) return err.message || errorCode(err) || err.name;
  return String(err);
}

/** Turns connection-level and transient failures into StoreUnavailableError; other errors pass through. */
export function toStoreError(err: unknown): unknown {
  if (err instanceof StoreUnavailableError) return err;
  if (isFatal(err)) return new StoreUnavailableError(`PostgreSQL unavailable: ${describeError(err)}`, { cause: err });
  return err;
}
