/**
 * First-run initialisation of a site: the data dir, a self-signed TLS certificate, the
 * local hostname as the first domain, an admin account whose generated password is
 * returned once, and postmaster@hostname as an alias of the admin (the caller prints it; only its hash is stored). Safe to call on every
 * start: it does nothing once the site is initialised.
 */
import { mkdirSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { generatePassword, hashPassword } from '../auth/password.js';
import { addDkimKey } from '../queue/dkim.js';
import { ConflictError } from '../errors.js';
import { normalizeDomain } from '../mail/address.js';
import type { Store } from '../store/store.js';
import { ensureSelfSignedCertificate } from './tls.js';

export interface InitResult {
  created: boolean;
  hostname: string;
  admin?: { address: string; password: string };
}

/** The name this server uses in greetings and Received headers. */
export async function siteHostname(store: Store, override?: string): Promise<string> {
  if (override) return normalizeDomain(override);
  const saved = await store.directory.getSetting('hostname');
  if (saved) return saved;
  try {
    return normalizeDomain(osHostname());
  } catch {
    return 'localhost';
  }
}

export async function initDataDir(store: Store, dataDir: string, hostnameOverride?: string): Promise<InitResult> {
  mkdirSync(dataDir, { recursive: true });
  const hostname = await siteHostname(store, hostnameOverride);
  await ensureSelfSignedCertificate(dataDir, hostname);
  if (await store.directory.getSetting('initialized_at')) return { created: false, hostname };

  // Every step is idempotent and tolerates a node doing the same at the same moment:
  // the first writer wins, the others find its result.
  const ignoreConflict = (err: unknown) => {
    if (!(err instanceof ConflictError)) throw err;
  };
  const site = await store.directory.initSetting('hostname', hostname);
  if (!(await store.directory.isLocalDomain(site))) await store.directory.addDomain(site).catch(ignoreConflict);
  const address = `admin@${site}`;
  let admin: InitResult['admin'];
  if (!(await store.directory.getAccount(address))) {
    const password = generatePassword();
    await store.directory
      .addAccount({ address, passwordHash: await hashPassword(password), isAdmin: true })
      .then(() => (admin = { address, password }), ignoreConflict);
  }
  // Mail the site sends itself (bounces) is signed with the host name's key.
  if ((await store.directory.dkimKeys(site)).length === 0) await addDkimKey(store.directory, site, 'rsa', 'active').catch(ignoreConflict);
  // RFC 5321 4.5.1: every domain's postmaster must reach someone; start with the admin.
  if ((await store.directory.aliasTargets(`postmaster@${site}`)).length === 0) {
    await store.directory.addAlias(`postmaster@${site}`, address).catch(ignoreConflict);
  }
  await store.directory.initSetting('initialized_at', new Date().toISOString());
  return { created: true, hostname: site, admin };
}
