/**
 * Writer thread: commits batches of write operations (sql/writes.ts), one transaction per
 * batch. better-sqlite3 blocks its thread during a commit's fsync; doing that here keeps
 * the event loop serving sessions meanwhile, and everything that arrives during one
 * commit forms the next batch (group commit).
 *
 * Two connections to one database, used one at a time: `commits` with synchronous=FULL
 * for every ordinary batch, `staging` with synchronous=OFF for bulk batches (chunks of
 * large bodies). Staged chunks need no fsync of their own: they sit in the WAL before the
 * delivery that references them, and that delivery's fsync of the WAL covers them.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { serializeError, type SerializedError } from '../../errors.js';
import { faultPoint } from '../fault-injection.js';
import { hasDelivery, runOps, type OpOutcome } from '../sql/batch.js';
import { bodyOf, type WriteOp } from '../sql/writes.js';
import { isTransientSqliteError, openSqliteConnection, reviveBuffers, sqliteSql } from './connection.js';

export type WriterRequest = { id: number; kind: 'batch'; ops: WriteOp[]; bulk: boolean } | { id: number; kind: 'settings' };

export type WriterResponse =
  | { id: number; ok: true; outcomes: OpOutcome[] }
  | { id: number; ok: true; settings: Record<string, string> }
  | { id: number; ok: false; error: SerializedError };

/** WAL pages (4 KB) past which a commit checkpoints by itself. */
const BACKSTOP_CHECKPOINT_PAGES = 16_384;

const file = (workerData as { file: string }).file;
const commits = openSqliteConnection(file);
const staging = openSqliteConnection(file, { synchronous: 'OFF' });
// Checkpoints run on the checkpoint thread (checkpoint-worker.ts); SQLite's own, inside a
// commit, only past 64 MB of WAL, in case that thread falls behind. The WAL file is cut
// back to that size once it has been checkpointed.
for (const db of [commits, staging]) {
  db.pragma(`wal_autocheckpoint = ${BACKSTOP_CHECKPOINT_PAGES}`);
  db.pragma(`journal_size_limit = ${BACKSTOP_CHECKPOINT_PAGES * 4096}`);
}
const commitSql = sqliteSql(commits);
const stagingSql = sqliteSql(staging);

async function commitBatch(ops: WriteOp[], bulk: boolean): Promise<OpOutcome[]> {
  const db = bulk ? staging : commits;
  db.exec('BEGIN IMMEDIATE');
  try {
    const restart = async () => {
      db.exec('ROLLBACK');
      db.exec('BEGIN IMMEDIATE');
    };
    const outcomes = await runOps(bulk ? stagingSql : commitSql, reviveBuffers(ops), isTransientSqliteError, restart);
    const delivery = hasDelivery(ops);
    if (delivery) faultPoint('before-commit');
    db.exec('COMMIT');
    if (delivery) faultPoint('after-commit');
    return outcomes;
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
}

/**
 * The bodies' memory, moved back to the main thread with the answer. Left here it would be
 * garbage in an isolate that allocates little else, so its GC would seldom run and large
 * messages would pile up freed-but-held chunks (about 60 MB with 200 concurrent 20 MB
 * messages); the main thread collects them within milliseconds.
 */
function bodyBuffers(ops: WriteOp[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const op of ops) {
    const data = bodyOf(op);
    if (data && data.byteLength > 0 && data.buffer instanceof ArrayBuffer) out.add(data.buffer);
  }
  return [...out];
}

let queue = Promise.resolve();
parentPort!.on('message', (req: WriterRequest) => {
  // One request at a time, in arrival order.
  queue = queue.then(async () => {
    let res: WriterResponse;
    try {
      if (req.kind === 'settings') {
        const settings = {
          journal_mode: String(commits.pragma('journal_mode', { simple: true })),
          synchronous: ['OFF', 'NORMAL', 'FULL', 'EXTRA'][Number(commits.pragma('synchronous', { simple: true }))] ?? 'unknown',
        };
        res = { id: req.id, ok: true, settings };
      } else {
        res = { id: req.id, ok: true, outcomes: await commitBatch(req.ops, req.bulk) };
      }
    } catch (err) {
      res = { id: req.id, ok: false, error: serializeError(err) };
    }
    parentPort!.postMessage(res, req.kind === 'batch' ? bodyBuffers(req.ops) : []);
  });
});
