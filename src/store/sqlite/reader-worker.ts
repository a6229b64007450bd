/**
 * Reader thread: runs the shared reads (sql/reads.ts) on its own connection, so a read
 * (a quota check, a mailbox listing, a blob chunk) never blocks the event loop. WAL lets
 * it read while the writer commits.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { serializeError, type SerializedError } from '../../errors.js';
import { createReads, type ReadName } from '../sql/reads.js';
import { openSqliteConnection, sqliteSql } from './connection.js';

export interface ReadRequest {
  id: number;
  name: ReadName;
  args: unknown[];
}

export type ReadResponse = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: SerializedError };

const db = openSqliteConnection((workerData as { file: string }).file);
const reads = createReads(sqliteSql(db));

/** SQLite's own checks, added to the shared logical ones. */
function engineChecks(): string[] {
  const problems = (db.pragma('integrity_check', { simple: false }) as Array<{ integrity_check: string }>)
    .map((r) => r.integrity_check)
    .filter((s) => s !== 'ok');
  for (const r of db.pragma('foreign_key_check') as Array<{ table: string; rowid: number }>)
    problems.push(`foreign key violation in ${r.table} row ${r.rowid}`);
  return problems;
}

parentPort!.on('message', (req: ReadRequest) => {
  const run = (reads[req.name] as (...args: unknown[]) => Promise<unknown>)(...req.args);
  run
    .then((value) => (req.name === 'checkIntegrity' ? [...engineChecks(), ...(value as string[])] : value))
    .then(
      (value) => parentPort!.postMessage({ id: req.id, ok: true, value } satisfies ReadResponse),
      (err: unknown) => parentPort!.postMessage({ id: req.id, ok: false, error: serializeError(err) } satisfies ReadResponse),
    );
});
