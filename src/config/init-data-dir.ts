/**
 * First-run initialisation of a site: the data dir, a self-signed TLS certificate, the
 * local hostname as the first domain, an admin account whose generated password is
 * returned once (the caller prints it; only its hash is stored), and postmaster@hostname
 * as an alias of the admin. Safe to call on every start, and from many processes at once:
 * it does nothing once the site is initialised.
 */
import { mkdirSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { generatePassword, hashPassword } from '../auth/password.js';
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
  const saved = await store.getSetting('hostname');
  if (saved) return saved;
  try {
    return normalizeDomain(osHostname());
  } catch {
    return 'localhost';
  }
}

/** Runs one creation step; false when a concurrent run (another process or node) created the same thing first. */
async function createUnlessRaced(step: () => Promise<unknown>): Promise<boolean> {
  try {
    await step();
    return true;
  } catch (err) {
    if (err instanceof ConflictError) return false;
    throw err;
  }
}

/**
 * Idempotent and safe when several processes or cluster nodes run it at once on one store: each step
 * checks first and tolerates losing the race to a concurrent run, so exactly one domain, admin and
 * postmaster alias come out, and only the run that created the admin returns its password.
 */
export async function initDataDir(store: Store, dataDir: string, hostnameOverride?: string): Promise<InitResult> {
  mkdirSync(dataDir, { recursive: true });
  const hostname = await siteHostname(store, hostnameOverride);
  await ensureSelfSignedCertificate(dataDir, hostname);
  if (await store.getSetting('initialized_at')) return { created: false, hostname };

  let created = false;
  await store.setSetting('hostname', hostname);
  if (!(await store.isLocalDomain(hostname))) created = (await createUnlessRaced(() => store.addDomain(hostname))) || created;
  const address = `admin@${hostname}`;
  let admin: InitResult['admin'];
  if (!(await store.getAccount(address))) {
    const password = generatePassword();
    const passwordHash = await hashPassword(password);
    if (await createUnlessRaced(() => store.addAccount({ address, passwordHash, isAdmin: true }))) {
      admin = { address, password };
      created = true;
    }
  }
  // RFC 5321 4.5.1: every domain's postmaster must reach someone; start with the admin.
  const postmaster = `postmaster@${hostname}`;
  if ((await store.aliasTargets(postmaster)).length === 0) created = (await createUnlessRaced(() => store.addAlias(postmaster, address))) || created;
  if (!(await store.getSetting('initialized_at'))) {
    await store.setSetting('initialized_at', new Date().toISOString());
    created = true;
  }
  return { created, hostname, admin };
}
