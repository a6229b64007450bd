/**
 * Runs a group of write operations in the caller's open transaction, each in its own
 * savepoint: an operation that fails (a conflict, a missing row) is undone alone and
 * reported as its own error, while the others commit. Errors that mean the store itself
 * is in trouble (`isFatal`) abort the whole batch.
 */
import { serializeError, type SerializedError } from '../../errors.js';
import { RefusedDelivery, WRITE_OPS, type WriteOp } from './writes.js';
import type { Sql } from './sql.js';

export type OpOutcome = { ok: true; value: unknown } | { ok: false; error: SerializedError };

type AnyOp = (sql: Sql, args: unknown) => Promise<unknown>;

export async function runOps(sql: Sql, ops: WriteOp[], isFatal: (err: unknown) => boolean): Promise<OpOutcome[]> {
  const outcomes: OpOutcome[] = [];
  for (const op of ops) {
    await sql.run('SAVEPOINT op');
    try {
      const value = await (WRITE_OPS[op.op] as AnyOp)(sql, op.args);
      await sql.run('RELEASE SAVEPOINT op');
      outcomes.push({ ok: true, value });
    } catch (err) {
      if (isFatal(err)) throw err;
      await sql.run('ROLLBACK TO SAVEPOINT op');
      await sql.run('RELEASE SAVEPOINT op');
      // An atomic delivery refused for quota is undone but still has outcomes to report.
      outcomes.push(err instanceof RefusedDelivery ? { ok: true, value: err.outcomes } : { ok: false, error: serializeError(err) });
    }
  }
  return outcomes;
}

/** True when the batch holds a delivery (fault injection and ambiguity checks only care about those). */
export const hasDelivery = (ops: WriteOp[]): boolean => ops.some((o) => o.op === 'deliver');
