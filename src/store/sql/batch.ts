/**
 * Runs a group of write operations in the caller's open transaction. Optimistically first:
 * all of them straight through, which costs no savepoints, and a run of deliveries as one
 * group (sql/deliver.ts). If one fails on its own (a conflict, a missing row), the transaction is restarted
 * and every operation runs in its own savepoint, so the failing one is undone alone and
 * reported as its own error while the others commit. Errors that mean the store itself is
 * in trouble (`isFatal`) abort the whole batch.
 */
import { serializeError, type SerializedError } from '../../errors.js';
import { deliverMany, givenUid, uidOrder } from './deliver.js';
import { WRITE_OPS, type WriteOp } from './writes.js';
import type { Sql } from './sql.js';
import type { NewDelivery } from '../store.js';

export type OpOutcome = { ok: true; value: unknown } | { ok: false; error: SerializedError };

type AnyOp = (sql: Sql, args: unknown) => Promise<unknown>;

/** An operation failed on its own during the optimistic pass. */
class NeedsSavepoints extends Error {}

/** All operations straight through, a run of deliveries as one group; NeedsSavepoints when one fails on its own. */
async function runStraight(sql: Sql, ops: WriteOp[], isFatal: (err: unknown) => boolean): Promise<OpOutcome[]> {
  const outcomes: OpOutcome[] = [];
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    if (op.op === 'deliver') {
      // A run of deliveries commits as one group; each reports its own failure without writing anything.
      let end = i + 1;
      while (end < ops.length && ops[end]!.op === 'deliver') end++;
      const group = ops.slice(i, end).map((o) => o.args as NewDelivery);
      try {
        for (const r of await deliverMany(sql, group)) outcomes.push(r.ok ? { ok: true, value: r.outcomes } : { ok: false, error: serializeError(r.error) });
      } catch (err) {
        if (isFatal(err)) throw err;
        throw new NeedsSavepoints();
      }
      i = end - 1;
      continue;
    }
    try {
      outcomes.push({ ok: true, value: await (WRITE_OPS[op.op] as AnyOp)(sql, op.args) });
    } catch (err) {
      if (isFatal(err)) throw err;
      throw new NeedsSavepoints();
    }
  }
  return outcomes;
}

/** Each operation in its own savepoint; deliveries that give their own uids (an import) run in uid order, each still reported in its place. */
async function runEach(sql: Sql, ops: WriteOp[], isFatal: (err: unknown) => boolean): Promise<OpOutcome[]> {
  const outcomes: OpOutcome[] = new Array<OpOutcome>(ops.length);
  for (const i of uidOrder(ops, (op) => (op.op === 'deliver' ? givenUid(op.args) : undefined))) {
    const op = ops[i]!;
    await sql.run('SAVEPOINT op');
    try {
      const value = await (WRITE_OPS[op.op] as AnyOp)(sql, op.args);
      await sql.run('RELEASE SAVEPOINT op');
      outcomes[i] = { ok: true, value };
    } catch (err) {
      if (isFatal(err)) throw err;
      await sql.run('ROLLBACK TO SAVEPOINT op');
      await sql.run('RELEASE SAVEPOINT op');
      outcomes[i] = { ok: false, error: serializeError(err) };
    }
  }
  return outcomes;
}

/** Runs `ops`; `restart` must roll the transaction back and begin it again (with any locks it takes first). */
export async function runOps(sql: Sql, ops: WriteOp[], isFatal: (err: unknown) => boolean, restart: () => Promise<void>): Promise<OpOutcome[]> {
  try {
    return await runStraight(sql, ops, isFatal);
  } catch (err) {
    if (!(err instanceof NeedsSavepoints)) throw err;
    await restart();
    return runEach(sql, ops, isFatal);
  }
}

/** True when the batch holds a delivery (fault injection and ambiguity checks only care about those). */
export const hasDelivery = (ops: WriteOp[]): boolean => ops.some((o) => o.op === 'deliver');
