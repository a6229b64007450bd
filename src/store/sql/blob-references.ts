/**
 * Blob reference counts: every message row and every queue entry holds one reference on
 * its body; a blob (and its staged chunks) goes with its last reference.
 */
import { one, type Row, type Sql } from './sql.js';

/** Drops one reference from each blob (with multiplicity) and deletes blobs, and their chunks, left unreferenced. */
export async function releaseBlobs(sql: Sql, counts: Map<string, number>): Promise<void> {
  for (const hash of [...counts.keys()].sort()) {
    const r = await one(sql, 'UPDATE blobs SET refcount = refcount - ? WHERE hash = ? RETURNING refcount, upload', [counts.get(hash), hash]);
    if (r && Number(r.refcount) <= 0) {
      await sql.run('DELETE FROM blobs WHERE hash = ?', [hash]);
      if (r.upload != null) await sql.run('DELETE FROM blob_chunks WHERE upload = ?', [r.upload]);
    }
  }
}

export function countHashes(rows: Row[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(String(r.blob_hash), (counts.get(String(r.blob_hash)) ?? 0) + 1);
  return counts;
}
