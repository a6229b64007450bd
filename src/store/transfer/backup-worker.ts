/**
 * A worker thread that writes one archive (exportSite), so a scheduled backup's reads,
 * encoding and hashing never run on the serving process's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { exportSite, type SiteLocation } from './index.js';

const job = workerData as { at: SiteLocation; file: string };
exportSite(job.at, job.file, { kind: 'backup' }).then(
  (manifest) => parentPort!.postMessage({ ok: true, manifest }),
  (err: unknown) => parentPort!.postMessage({ ok: false, error: err instanceof Error ? err.message : String(err) }),
);
