/**
 * Worker thread that commits deliveries. better-sqlite3 blocks its thread during a
 * commit's fsync; doing that here keeps the event loop serving sessions meanwhile, and
 * everything that arrives during one commit forms the next batch (group commit).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { NewDelivery } from '../store.js';
import { openSqliteConnection } from './connection.js';
import { createDeliveryWriter } from './delivery-writer.js';

export interface WriterRequest {
  id: number;
  batch: Array<Omit<NewDelivery, 'blob'> & { blob: Uint8Array }>;
}

export type WriterResponse =
  | { id: number; ok: true; results: ReturnType<ReturnType<typeof createDeliveryWriter>> }
  | { id: number; ok: false; message: string; code?: string };

const db = openSqliteConnection((workerData as { file: string }).file);
const write = createDeliveryWriter(db);

parentPort!.on('message', (req: WriterRequest) => {
  let res: WriterResponse;
  try {
    // better-sqlite3 binds Buffers as BLOBs; wrap the transferred bytes without copying.
    const batch = req.batch.map((d) => ({ ...d, blob: Buffer.from(d.blob.buffer, d.blob.byteOffset, d.blob.byteLength) }));
    res = { id: req.id, ok: true, results: write(batch) };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    res = { id: req.id, ok: false, message: (err as Error).message, code: typeof code === 'string' ? code : undefined };
  }
  parentPort!.postMessage(res);
});
