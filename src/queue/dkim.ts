/**
 * DKIM for outbound mail: keys per domain (RSA 2048 by default, Ed25519 too, RFC 8463),
 * their DNS records, signing with mailauth when a message is queued (once per message,
 * however many destinations it has; the signatures are stored in the queue entries'
 * prefix, so an entry leaves as it was signed), and key rotation: a new
 * key starts `pending`; once its record is visible through the configured resolver it
 * becomes `active` and the key it replaces starts `retiring`, and is deleted after a grace
 * period (its record should stay published until then, for mail still in transit).
 */
import { generateKeyPairSync } from 'node:crypto';
import { Readable } from 'node:stream';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { collect, type DkimAlgorithm, type DkimKey, type DirectoryStore } from '../store/store.js';
import { WorkerClient } from '../worker-client.js';

/** How long a retiring key's record should stay published. */
export const DEFAULT_RETIRE_AFTER_MS = 7 * 24 * 3600_000;
/** Active keys are looked up again after this long. */
const KEYS_CACHE_MS = 60_000;

/** A new key pair: PKCS#8 PEM private key, and the record's p= value. */
export function generateDkimKey(algorithm: DkimAlgorithm): { privateKey: string; publicKey: string } {
  if (algorithm === 'ed25519') {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    // RFC 8463 3: p= is the raw 32-byte public key, the last bytes of the SPKI DER.
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    return { privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKey: spki.subarray(spki.length - 32).toString('base64') };
  }
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
  };
}

/** A selector not used yet by the domain: `tYYYYMMDD` + r or e (+ a counter on a second rotation the same day). */
export function newSelector(existing: DkimKey[], algorithm: DkimAlgorithm, now = new Date()): string {
  const base = `t${now.toISOString().slice(0, 10).replace(/-/g, '')}${algorithm === 'rsa' ? 'r' : 'e'}`;
  const taken = new Set(existing.map((k) => k.selector));
  let selector = base;
  for (let n = 2; taken.has(selector); n++) selector = `${base}${n}`;
  return selector;
}

/** Creates and stores a key for `domain`; active at once unless `pending` (a rotation). */
export async function addDkimKey(directory: DirectoryStore, domain: string, algorithm: DkimAlgorithm, state: 'active' | 'pending'): Promise<DkimKey> {
  const selector = newSelector(await directory.dkimKeys(domain), algorithm);
  return directory.addDkimKey({ domain, selector, algorithm, state, ...generateDkimKey(algorithm) });
}

/** The TXT record of a key (RFC 6376 3.6.1), as one string; DNS tools split it into 255-byte pieces. */
export function dkimRecordValue(key: Pick<DkimKey, 'algorithm' | 'publicKey'>): string {
  return `v=DKIM1; k=${key.algorithm}; p=${key.publicKey}`;
}

export const dkimRecordName = (key: Pick<DkimKey, 'domain' | 'selector'>): string => `${key.selector}._domainkey.${key.domain}`;

/** Messages up to this size are signed on the signing thread (read into memory once); larger ones stream through mailauth on the event loop. */
export const SIGN_IN_THREAD_LIMIT = 1024 * 1024;

/** Signs outbound messages with the sending domain's active keys (cached for a minute). */
export class DkimSigner {
  private readonly cache = new Map<string, { until: number; keys: Promise<DkimKey[]> }>();
  private readonly thread = new WorkerClient(
    new URL('./dkim-worker.js', import.meta.url),
    null,
    (why) => new Error(`DKIM signing thread stopped: ${why}`),
    false,
  );

  constructor(private readonly directory: DirectoryStore) {}

  private activeKeys(domain: string): Promise<DkimKey[]> {
    const now = Date.now();
    const hit = this.cache.get(domain);
    if (hit && hit.until > now) return hit.keys;
    if (this.cache.size > 10_000) this.cache.clear();
    const keys = this.directory.dkimKeys(domain).then((all) => all.filter((k) => k.state === 'active'));
    keys.catch(() => this.cache.delete(domain));
    this.cache.set(domain, { until: now + KEYS_CACHE_MS, keys });
    return keys;
  }

  /** DKIM-Signature header lines (empty when the domain has no active key) for the message of `size` bytes made of `parts`. */
  async sign(domain: string, parts: AsyncIterable<Buffer>, size: number): Promise<string> {
    const keys = await this.activeKeys(domain);
    if (keys.length === 0) return '';
    const signatureData = keys.map((k) => ({
      signingDomain: k.domain,
      selector: k.selector,
      privateKey: k.privateKey,
      algorithm: k.algorithm === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256',
    }));
    if (size <= SIGN_IN_THREAD_LIMIT) {
      const message = await collect(parts);
      const answer = await this.thread.request({ message, signatureData });
      if (typeof answer.error === 'string') throw new Error(`DKIM signing for ${domain} failed: ${answer.error}`);
      return String(answer.signatures);
    }
    const result = await dkimSign(Readable.from(parts), { ...signatureData[0]!, canonicalization: 'relaxed/relaxed', signatureData });
    if (result.errors?.length) throw new Error(`DKIM signing for ${domain} failed: ${result.errors.map((e) => e.message).join('; ')}`);
    return result.signatures;
  }

  forget(): void {
    this.cache.clear();
  }

  /** Stops the signing thread (a later signature starts it again). */
  close(): Promise<void> {
    return this.thread.close();
  }
}

/**
 * One rotation pass: a pending key whose record the resolver now returns is activated
 * (the keys it replaces start retiring); retiring keys past their time are deleted.
 * Returns what changed, for the log.
 */
export async function rotateDkimKeys(
  directory: DirectoryStore,
  resolveTxt: (name: string) => Promise<string[][]>,
  retireAfterMs: number,
  now = Date.now(),
): Promise<string[]> {
  const changes: string[] = [];
  for (const key of await directory.dkimKeys()) {
    if (key.state === 'pending') {
      let published = false;
      try {
        published = (await resolveTxt(dkimRecordName(key))).some((chunks) => chunks.join('').replace(/\s+/g, '').includes(`p=${key.publicKey}`));
      } catch {
        published = false; // not there yet, or DNS trouble: asked again next pass
      }
      if (published) {
        await directory.activateDkimKey(key.domain, key.selector, new Date(now + retireAfterMs));
        changes.push(`${key.domain}: DKIM selector ${key.selector} is published and now signs`);
      }
    } else if (key.state === 'retiring' && key.retireAt && key.retireAt.getTime() <= now) {
      await directory.deleteDkimKey(key.domain, key.selector);
      changes.push(`${key.domain}: DKIM selector ${key.selector} retired`);
    }
  }
  return changes;
}
