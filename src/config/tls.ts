/**
 * TLS material: the certificate and key from the data dir (generated self-signed on
 * first run) or from --tls-cert/--tls-key. `reload()` re-reads the files (SIGHUP) so
 * new connections use a renewed certificate without a restart.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
export async function ensureSelfSignedCertificate(dataDir: string, hostname: string): Promise<boolean> {
  const paths = defaultTlsPaths(dataDir);
  if (existsSync(paths.cert) && existsSync(paths.key)) return false;
  mkdirSync(join(dataDir, 'tls'), { recursive: true, mode: 0o700 });
  const notAfter = new Date();
  notAfter.setFullYear(notAfter.getFullYear() + 5);
  const pems = await generate([{ name: 'commonName', value: hostname }], {
    keySize: 2048,
    algorithm: 'sha256',
    notAfterDate: notAfter,
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: hostname }, { type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }],
  });
  writeFileSync(paths.key, pems.private, { mode: 0o600 });
  writeFileSync(paths.cert, pems.cert, { mode: 0o644 });
  return true;
}

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
