/**
 * ACME (RFC 8555) certificates for the site's host name, through acme-client: with
 * `--acme-directory URL`, a node that serves the http role orders a certificate when the
 * one in the data dir is self-signed, expires within RENEW_BEFORE_MS, or does not name the
 * host, then checks twice a day. The HTTP-01 answer is kept in the store (setting
 * `acme_challenge:<token>`), so whichever node the CA reaches answers it at
 * `/.well-known/acme-challenge/<token>` (http/well-known-routes.ts; port 80 must reach the
 * http role). The new key and certificate replace the files in the data dir and every
 * listener uses them for new connections at once. Without the flag, nothing changes: the
 * self-signed certificate stays, as it should on loopback.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import type { DirectoryStore } from '../store/store.js';
import type { TlsProvider } from './tls.js';

export const ACME_CHALLENGE_PREFIX = 'acme_challenge:';
/** A certificate is renewed this long before it expires (Let's Encrypt's advice for 90-day certificates). */
export const RENEW_BEFORE_MS = 30 * 24 * 3_600_000;
const CHECK_EVERY_MS = 12 * 3_600_000;
/** After a failed order: try again this soon. */
const RETRY_MS = 10 * 60_000;

export interface AcmeOptions {
  directoryUrl: string;
  email?: string;
  hostnames: string[];
  certFile: string;
  keyFile: string;
}

/** Why the certificate in `pem` must be replaced, or null when it may stay. */
export function certificateDue(pem: string | null, hostnames: string[], now = Date.now()): string | null {
  if (!pem) return 'no certificate';
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return 'the certificate cannot be read';
  }
  if (cert.issuer === cert.subject) return 'the certificate is self-signed';
  if (new Date(cert.validTo).getTime() - now < RENEW_BEFORE_MS) return `the certificate expires ${new Date(cert.validTo).toISOString()}`;
  const missing = hostnames.filter((h) => !cert.checkHost(h));
  return missing.length ? `the certificate does not name ${missing.join(', ')}` : null;
}

export class AcmeManager {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<boolean> | null = null;
  private stopped = false;

  constructor(
    private readonly directory: DirectoryStore,
    private readonly tls: TlsProvider,
    private readonly options: AcmeOptions,
    private readonly log: Logger,
  ) {}

  /** Checks now (in the background) and then twice a day. */
  start(): void {
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.check().finally(() => (this.running = null));
    }, ms);
    this.timer.unref();
  }

  /** Orders a certificate when the current one is due; true when one was installed. */
  async check(): Promise<boolean> {
    const current = existsSync(this.options.certFile) ? readFileSync(this.options.certFile, 'utf8') : null;
    const why = certificateDue(current, this.options.hostnames);
    if (!why) {
      this.schedule(CHECK_EVERY_MS);
      return false;
    }
    try {
      this.log.info({ hostnames: this.options.hostnames, why }, 'acme: ordering a certificate');
      await this.order();
      this.log.info({ hostnames: this.options.hostnames }, 'acme: certificate installed');
      this.schedule(CHECK_EVERY_MS);
      return true;
    } catch (err) {
      this.log.error({ err: (err as Error).message }, `acme: no certificate; trying again in ${RETRY_MS / 60_000} min`);
      this.schedule(RETRY_MS);
      return false;
    }
  }

  private async order(): Promise<void> {
    const o = this.options;
    // Loaded only on a node that orders certificates: it is a large module tree.
    const { default: acme } = await import('acme-client');
    const client = new acme.Client({ directoryUrl: o.directoryUrl, accountKey: await this.accountKey() });
    const [key, csr] = await acme.crypto.createCsr({ commonName: o.hostnames[0]!, altNames: o.hostnames });
    const cert = await client.auto({
      csr,
      email: o.email,
      termsOfServiceAgreed: true,
      challengePriority: ['http-01'],
      // The CA checks the answer; asking ourselves first would need port 80 to reach us from here.
      skipChallengeVerification: true,
      challengeCreateFn: (_authz, challenge, keyAuthorization) => this.directory.setSetting(`${ACME_CHALLENGE_PREFIX}${challenge.token}`, keyAuthorization),
      challengeRemoveFn: (_authz, challenge) => this.directory.deleteSetting(`${ACME_CHALLENGE_PREFIX}${challenge.token}`),
    });
    // The key first, then the certificate, each by rename: the pair on disk always matches once the certificate is in place.
    writeAtomically(o.keyFile, key.toString(), 0o600);
    writeAtomically(o.certFile, cert, 0o644);
    this.tls.reload();
  }

  /** The ACME account key, made once and kept beside the certificate. */
  private async accountKey(): Promise<Buffer> {
    const file = join(dirname(this.options.keyFile), 'acme-account.pem');
    if (existsSync(file)) return readFileSync(file);
    const { default: acme } = await import('acme-client');
    const key = await acme.crypto.createPrivateKey();
    writeAtomically(file, key.toString(), 0o600);
    return key;
  }
}

function writeAtomically(file: string, data: string, mode: number): void {
  writeFileSync(`${file}.tmp`, data, { mode });
  renameSync(`${file}.tmp`, file);
}
