/**
 * MTA-STS (RFC 8461): a domain publishes `_mta-sts.<domain>` TXT "v=STSv1; id=…" and a
 * policy at https://mta-sts.<domain>/.well-known/mta-sts.txt naming its MX hosts and a
 * mode. In `enforce` mode mail goes only to listed MX hosts, over TLS with a certificate
 * valid for the host; otherwise it waits in the queue. `testing` only logs what enforce
 * would refuse; `none` withdraws a policy.
 *
 * The policy is fetched over HTTPS (certificate checked, no redirects, 200 and text/plain
 * only, 64 KB at most) and cached in the store (setting `mta-sts:<domain>`) until its
 * max_age, so a restart, another node or an attacker who strips the TXT record does not
 * lose it. The TXT record is looked up at most once a minute per domain; a new id means
 * a new policy, and when fetching it fails the cached one stays in force (RFC 8461 5.1).
 */
import { request } from 'node:https';
import type { LookupFunction } from 'node:net';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { DirectoryStore } from '../store/store.js';
import type { MailDns } from './dns.js';

export type StsMode = 'enforce' | 'testing' | 'none';

export interface StsPolicy {
  mode: StsMode;
  /** MX host patterns: a name, or `*.` and a name (one more label, RFC 8461 4.1). */
  mx: string[];
  maxAgeSeconds: number;
}

interface CachedPolicy extends StsPolicy {
  id: string;
  /** When the policy was fetched (ms); it holds until fetchedAt + maxAgeSeconds. */
  fetchedAt: number;
}

/** Where cached policies are kept (one setting per domain). */
export const MTA_STS_PREFIX = 'mta-sts:';
/** RFC 8461 3.2: max_age is at most a year. */
const MAX_AGE_LIMIT = 31_557_600;
const MAX_POLICY_BYTES = 64 * 1024;
const TXT_RECHECK_MS = 60_000;

/** The id of the domain's STS record; null when it publishes none (or not exactly one, RFC 8461 3.1). */
export function stsRecordId(txt: string[][]): string | null {
  const records = txt.map((chunks) => chunks.join('')).filter((r) => /^v=STSv1\s*;/.test(r));
  if (records.length !== 1) return null;
  const id = /(?:^|;)\s*id=([A-Za-z0-9]{1,32})\s*(?:;|$)/.exec(records[0]!);
  return id ? id[1]! : null;
}

/** Parses a policy body (RFC 8461 3.2); throws with the reason when it is not a valid policy. */
export function parseStsPolicy(text: string): StsPolicy {
  const fields = new Map<string, string>();
  const mx: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = /^([A-Za-z0-9_]+)\s*:\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    const key = m[1]!.toLowerCase();
    if (key === 'mx') mx.push(m[2]!.toLowerCase().replace(/\.$/, ''));
    else if (!fields.has(key)) fields.set(key, m[2]!); // the first one counts
  }
  if (fields.get('version') !== 'STSv1') throw new Error('version is not STSv1');
  const mode = fields.get('mode');
  if (mode !== 'enforce' && mode !== 'testing' && mode !== 'none') throw new Error(`mode ${JSON.stringify(mode ?? '')} is not enforce, testing or none`);
  const maxAge = fields.get('max_age');
  if (!maxAge || !/^\d{1,10}$/.test(maxAge)) throw new Error('max_age is missing or not a number');
  if (mode !== 'none' && mx.length === 0) throw new Error('no mx pattern');
  return { mode, mx, maxAgeSeconds: Math.min(Number(maxAge), MAX_AGE_LIMIT) };
}

/** Whether MX host `host` is one the policy lists (a wildcard stands for exactly one label). */
export function stsAllows(policy: Pick<StsPolicy, 'mx'>, host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  return policy.mx.some((pattern) => {
    if (!pattern.startsWith('*.')) return name === pattern;
    const suffix = pattern.slice(1);
    const label = name.slice(0, -suffix.length);
    return name.endsWith(suffix) && label.length > 0 && !label.includes('.');
  });
}

export interface MtaStsOptions {
  dns: MailDns;
  directory: DirectoryStore;
  /** The HTTPS port of policy hosts (443; tests run their own policy server elsewhere). */
  port: number;
  timeoutMs: number;
  log: Logger;
}

export class MtaSts {
  private readonly cache = new Map<string, CachedPolicy | null>();
  /** Per domain, when its TXT record was last looked at. */
  private readonly checked = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<StsPolicy | null>>();

  constructor(private readonly options: MtaStsOptions) {}

  /** The policy in force for `domain` (null: none). Never throws: trouble leaves the cached policy, if any, in force. */
  policy(domain: string): Promise<StsPolicy | null> {
    let p = this.inFlight.get(domain);
    if (!p) {
      p = this.load(domain).finally(() => this.inFlight.delete(domain));
      this.inFlight.set(domain, p);
    }
    return p;
  }

  private async load(domain: string): Promise<StsPolicy | null> {
    const now = Date.now();
    let cached = this.cache.get(domain);
    if (cached === undefined) {
      cached = await this.stored(domain);
      this.cache.set(domain, cached);
    }
    const valid = cached && cached.fetchedAt + cached.maxAgeSeconds * 1000 > now ? cached : null;
    // Looked at within the minute: the same answer (also "no policy", so a busy destination without one costs one lookup a minute).
    if ((this.checked.get(domain) ?? 0) + TXT_RECHECK_MS > now) return valid && active(valid);
    this.checked.set(domain, now);
    if (this.checked.size > 10_000) this.checked.clear();

    let id: string | null;
    try {
      id = stsRecordId(await this.options.dns.txt(`_mta-sts.${domain}`));
    } catch {
      id = null; // no record, or DNS trouble: the cached policy (if any) holds
    }
    if (id === null || (valid && valid.id === id)) return valid && active(valid);
    try {
      const policy: CachedPolicy = { ...parseStsPolicy(await this.fetch(domain)), id, fetchedAt: now };
      this.cache.set(domain, policy);
      await this.options.directory.setSetting(MTA_STS_PREFIX + domain, JSON.stringify(policy));
      this.options.log.info({ domain, id, mode: policy.mode, mx: policy.mx, maxAge: policy.maxAgeSeconds }, 'MTA-STS policy fetched');
      return active(policy);
    } catch (err) {
      this.options.log.warn({ domain, id, err: (err as Error).message, cached: valid?.id ?? null }, 'MTA-STS policy could not be fetched');
      return valid && active(valid);
    }
  }

  private async stored(domain: string): Promise<CachedPolicy | null> {
    try {
      const value = await this.options.directory.getSetting(MTA_STS_PREFIX + domain);
      return value ? (JSON.parse(value) as CachedPolicy) : null;
    } catch {
      return null;
    }
  }

  /** GET https://mta-sts.<domain>/.well-known/mta-sts.txt through the configured resolver. */
  private fetch(domain: string): Promise<string> {
    const host = `mta-sts.${domain}`;
    const lookup: LookupFunction = (name, opts, done) => {
      this.options.dns.addresses(name).then(
        (list) => {
          const first = list[0];
          if (!first) return done(Object.assign(new Error(`${name} has no address`), { code: 'ENOTFOUND' }), '', 4);
          if (opts.all)
            return (done as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(
              null,
              list.map((a) => ({ address: a, family: isIP(a) })),
            );
          done(null, first, isIP(first));
        },
        (err: Error) => done(err, '', 4),
      );
    };
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host,
          port: this.options.port,
          path: '/.well-known/mta-sts.txt',
          method: 'GET',
          servername: host,
          lookup,
          timeout: this.options.timeoutMs,
          headers: { 'user-agent': 'Tern' },
        },
        (res) => {
          const type = (res.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
          if (res.statusCode !== 200) reject(new Error(`${host} answered HTTP ${res.statusCode} (redirects are not followed)`));
          else if (type !== 'text/plain') reject(new Error(`${host} served the policy as ${type || 'no type'}, not text/plain`));
          else {
            const parts: Buffer[] = [];
            let size = 0;
            res.on('data', (d: Buffer) => {
              size += d.length;
              if (size > MAX_POLICY_BYTES) req.destroy(new Error(`${host}: the policy is over ${MAX_POLICY_BYTES} bytes`));
              else parts.push(d);
            });
            res.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
            return;
          }
          res.resume();
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${host}: no answer in ${this.options.timeoutMs} ms`)));
      req.on('error', reject);
      req.end();
    });
  }
}

/** A policy in mode none is no policy. */
const active = (p: CachedPolicy): StsPolicy | null => (p.mode === 'none' ? null : { mode: p.mode, mx: p.mx, maxAgeSeconds: p.maxAgeSeconds });
