/**
 * The thread scheduled backups run on (scheduled.ts, through WorkerClient): each request
 * writes one archive with exportSite, so its reads, encoding and hashing never run on the
 * serving process's event loop.
 */
import { parentPort } from 'node:worker_threads';
import { exportSite, type SiteLocation } from './index.js';

parentPort!.on('message', (req: { id: number; at: SiteLocation; file: string }) => {
  exportSite(req.at, req.file, { kind: 'backup' }).then(
    (manifest) => parentPort!.postMessage({ id: req.id, ok: true, manifest }),
    (err: unknown) => parentPort!.postMessage({ id: req.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});
