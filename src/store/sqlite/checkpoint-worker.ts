/**
 * Checkpoint thread: copies committed WAL frames into the database file (PRAGMA
 * wal_checkpoint(PASSIVE), which never blocks the writer or readers), asked by the main
 * thread after every MB or so committed. Left to the writer, SQLite's automatic checkpoint
 * runs inside a commit and holds every delivery behind it; here it overlaps them. The
 * writer keeps a far larger automatic checkpoint as a backstop (writer-worker.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { serializeError } from '../../errors.js';
import { openSqliteConnection } from './connection.js';

const db = openSqliteConnection((workerData as { file: string }).file);

parentPort!.on('message', (req: { id: number }) => {
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
    parentPort!.postMessage({ id: req.id, ok: true, ...r });
  } catch (err) {
    parentPort!.postMessage({ id: req.id, ok: false, error: serializeError(err) });
  }
});
