/**
 * The thread that verifies legacy password hashes (auth/legacy-hashes.ts): SHA-crypt,
 * bcrypt and argon2 cost tens to hundreds of milliseconds of CPU, which must not stall the
 * event loop that serves every connection. Requests carry the password and the stored
 * hash; answers say whether they match.
 */
import { parentPort } from 'node:worker_threads';
import { verifyLegacyHash } from './legacy-hashes.js';

interface VerifyRequest {
  id: number;
  password: string;
  stored: string;
}

parentPort!.on('message', (req: VerifyRequest) => {
  verifyLegacyHash(req.password, req.stored).then(
    (ok) => parentPort!.postMessage({ id: req.id, ok }),
    (err: unknown) => parentPort!.postMessage({ id: req.id, ok: false, error: (err as Error).message ?? String(err) }),
  );
});
