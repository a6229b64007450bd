/**
 * TLS material: the certificate and key from the data dir (generated self-signed on
 * first run) or from --tls-cert/--tls-key. `reload()` re-reads the files (SIGHUP) so
 * new connections use a renewed certificate without a restart.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { generate } from 'selfsigned';
import { UserError } from '../errors.js';

export interface TlsProvider {
  context(): SecureContext;
  reload(): void;
}

export function defaultTlsPaths(dataDir: string): { cert: string; key: string } {
  return { cert: join(dataDir, 'tls', 'cert.pem'), key: join(dataDir, 'tls', 'key.pem') };
}

/** Creates a self-signed certificate for `hostname` in the data dir unless one exists. */
/**
 * Creates the first-run self-signed certificate unless one exists. Nodes starting
 * together on one data dir agree on one key pair: the first takes a lock file and writes
 * the key, then the certificate (each by rename, so a certificate on disk always has its
 * key beside it); the others wait for the certificate. A lock left by a crashed process is
 * taken over after LOCK_STALE_MS.
 */
export async function ensureSelfSignedCertificate(dataDir: string, hostname: string): Promise<boolean> {
  const paths = defaultTlsPaths(dataDir);
  if (existsSync(paths.cert) && existsSync(paths.key)) return false;
  mkdirSync(join(dataDir, 'tls'), { recursive: true, mode: 0o700 });
  const lock = join(dataDir, 'tls', '.creating');
  const deadline = Date.now() + LOCK_STALE_MS;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx'));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (existsSync(paths.cert) && existsSync(paths.key)) return false;
      if (Date.now() > deadline) {
        rmSync(lock, { force: true });
        continue;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    if (existsSync(paths.cert) && existsSync(paths.key)) return false;
    const notAfter = new Date();
    notAfter.setFullYear(notAfter.getFullYear() + 5);
    const pems = await generate([{ name: 'commonName', value: hostname }], {
      keySize: 2048,
      algorithm: 'sha256',
      notAfterDate: notAfter,
      extensions: [
        {
          name: 'subjectAltName',
          altNames: [
            { type: 2, value: hostname },
            { type: 2, value: 'localhost' },
            { type: 7, ip: '127.0.0.1' },
          ],
        },
      ],
    });
    writeFileSync(`${paths.key}.tmp`, pems.private, { mode: 0o600 });
    renameSync(`${paths.key}.tmp`, paths.key);
    writeFileSync(`${paths.cert}.tmp`, pems.cert, { mode: 0o644 });
    renameSync(`${paths.cert}.tmp`, paths.cert);
    return true;
  } finally {
    rmSync(lock, { force: true });
  }
}

const LOCK_STALE_MS = 30_000;

export function createTlsProvider(certFile: string, keyFile: string): TlsProvider {
  const load = (): SecureContext => {
    try {
      return createSecureContext({ cert: readFileSync(certFile), key: readFileSync(keyFile), minVersion: 'TLSv1.2' });
    } catch (err) {
      throw new UserError(`cannot load TLS certificate ${certFile} / key ${keyFile}: ${(err as Error).message}`);
    }
  };
  let current = load();
  return {
    context: () => current,
    reload: () => {
      current = load();
    },
  };
}
