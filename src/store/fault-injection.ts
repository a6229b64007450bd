/**
 * Deterministic crash points for durability tests (test/smtp/fault-injection.test.ts).
 * `TERN_TEST_FAULT=<point>[:<n>]` makes the process SIGKILL itself the n-th time (default
 * the first) a delivery batch reaches `point`:
 * - `before-commit`: the transaction is complete but COMMIT was not sent;
 * - `after-commit`: COMMIT returned; no client has been answered yet.
 * Unset (always, outside tests), a fault point costs one comparison.
 * `TERN_TEST_FAULT=migration` makes every schema upgrade fail just before it commits.
 */
export type FaultPoint = 'before-commit' | 'after-commit';

const spec = /^(before-commit|after-commit)(?::(\d+))?$/.exec(process.env.TERN_TEST_FAULT ?? '');
const armed = spec ? { point: spec[1] as FaultPoint, remaining: Number(spec[2] ?? 1) } : null;

export function faultPoint(point: FaultPoint): void {
  if (!armed || armed.point !== point) return;
  if (--armed.remaining > 0) return;
  process.kill(process.pid, 'SIGKILL');
}

/** Throws inside a schema upgrade's transaction when TERN_TEST_FAULT=migration (test/store/upgrade.test.ts). */
export function migrationFault(): void {
  if (process.env.TERN_TEST_FAULT === 'migration') throw new Error('injected failure (TERN_TEST_FAULT=migration)');
}
