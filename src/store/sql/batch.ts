/**
 * Runs a group of write operations in the caller's open transaction. Optimistically first:
 * all of them straight through, which costs no savepoints. If one fails on its own (a
 * conflict, a missing row, a delivery refused for quota), the transaction is restarted
 * and every operation runs in its own savepoint, so the failing one is undone alone and
 * reported as its own error while the others commit. Errors that mean the store itself is
 * in trouble (`isFatal`) abort the whole batch.
 */
import { serializeError, type SerializedError } from '../../errors.js';
import { RefusedDelivery, WRITE_OPS, type WriteOp } from './writes.js';
import type { Sql } from './sql.js';

export type OpOutcome = { ok: true; value: unknown } | { ok: false; error: SerializedError };

type AnyOp = (sql: Sql, args: unknown) => Promise<unknown>;

/** An operation failed on its own during the optimistic pass. */
class NeedsSavepoints extends Error {}

async function run(sql: Sql, ops: WriteOp[], isFatal: (err: unknown) => boolean, savepoints: boolean): Promise<OpOutcome[]> {
  const outcomes: OpOutcome[] = [];
  for (const op of ops) {
    if (savepoints) await sql.run('SAVEPOINT op');
    try {
      const value = await (WRITE_OPS[op.op] as AnyOp)(sql, op.args);
      if (savepoints) await sql.run('RELEASE SAVEPOINT op');
      outcomes.push({ ok: true, value });
    } catch (err) {
      if (isFatal(err)) throw err;
      if (!savepoints) throw new NeedsSavepoints();
      await sql.run('ROLLBACK TO SAVEPOINT op');
      await sql.run('RELEASE SAVEPOINT op');
      // An atomic delivery refused for quota is undone but still has outcomes to report.
      outcomes.push(err instanceof RefusedDelivery ? { ok: true, value: err.outcomes } : { ok: false, error: serializeError(err) });
    }
  }
  return outcomes;
}

/** Runs `ops`; `restart` must roll the transaction back and begin it again (with any locks it takes first). */
export async function runOps(sql: Sql, ops: WriteOp[], isFatal: (err: unknown) => boolean, restart: () => Promise<void>): Promise<OpOutcome[]> {
  try {
    return await run(sql, ops, isFatal, false);
  } catch (err) {
    if (!(err instanceof NeedsSavepoints)) throw err;
    await restart();
    return run(sql, ops, isFatal, true);
  }
}

/** True when the batch holds a delivery (fault injection and ambiguity checks only care about those). */
export const hasDelivery = (ops: WriteOp[]): boolean => ops.some((o) => o.op === 'deliver');
