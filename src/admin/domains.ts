/**
 * Domains and their DKIM keys and DNS records, the same for `tern domain` and the HTTP API.
 * Adding or deleting a domain is the site's business; a key limited to a domain sees only
 * its own.
 */
import { createHash } from 'node:crypto';
import { NotFoundError, UserError } from '../errors.js';
import { normalizeDomain } from '../mail/address.js';
import { addDkimKey, dkimRecordName, dkimRecordValue } from '../queue/dkim.js';
import type { DirectoryStore, DkimAlgorithm, DkimKey, Domain } from '../store/store.js';
import { parsePolicy, policySetting, type InboundPolicy } from '../smtp/inbound-auth.js';
import { manages, requireSiteAdmin, type Actor } from './actor.js';

const DKIM_CHOICES: Record<string, DkimAlgorithm[]> = { rsa: ['rsa'], ed25519: ['ed25519'], both: ['rsa', 'ed25519'], none: [] };

/** `rsa`, `ed25519`, `both` or `none` as the keys to make. */
export function parseDkimChoice(value: string): DkimAlgorithm[] {
  const found = DKIM_CHOICES[value.trim().toLowerCase()];
  if (!found) throw new UserError(`DKIM keys: rsa, ed25519, both or none, got ${JSON.stringify(value)}`);
  return found;
}

export async function addDomain(directory: DirectoryStore, actor: Actor, name: string, dkim: DkimAlgorithm[]): Promise<{ domain: Domain; keys: DkimKey[] }> {
  requireSiteAdmin(actor, 'adding a domain');
  const n = normalizeDomain(name);
  const domain = await directory.addDomain(n);
  const keys = [];
  for (const a of dkim) keys.push(await addDkimKey(directory, n, a, 'active'));
  return { domain, keys };
}

export async function listDomains(directory: DirectoryStore, actor: Actor): Promise<Domain[]> {
  return (await directory.listDomains()).filter((d) => manages(actor, d.name));
}

/** The domain, normalized, once it is known to exist and to be the actor's. */
export async function existingDomain(directory: DirectoryStore, actor: Actor, name: string): Promise<string> {
  const n = normalizeDomain(name);
  if (!manages(actor, n) || !(await directory.isLocalDomain(n))) throw new NotFoundError(`domain ${n} does not exist`);
  return n;
}

/** Throws ConflictError while accounts or aliases still use it; its API keys are revoked with it. */
export async function deleteDomain(directory: DirectoryStore, actor: Actor, name: string): Promise<string> {
  requireSiteAdmin(actor, 'deleting a domain');
  const n = await existingDomain(directory, actor, name);
  await directory.deleteDomain(n);
  return n;
}

export async function dkimKeys(directory: DirectoryStore, actor: Actor, domain?: string): Promise<DkimKey[]> {
  if (domain) return directory.dkimKeys(await existingDomain(directory, actor, domain));
  return (await directory.dkimKeys()).filter((k) => manages(actor, k.domain));
}

/** A new key next to the current one; it starts signing once its record is published. */
export async function rotateDkimKey(directory: DirectoryStore, actor: Actor, domain: string, algorithm: DkimAlgorithm): Promise<DkimKey> {
  return addDkimKey(directory, await existingDomain(directory, actor, domain), algorithm, 'pending');
}

/** The key as shown to people and API callers: never its private half. */
export function publicDkimKey(k: DkimKey) {
  return {
    domain: k.domain,
    selector: k.selector,
    algorithm: k.algorithm,
    state: k.state,
    createdAt: k.createdAt.toISOString(),
    retireAt: k.retireAt?.toISOString() ?? null,
    record: { name: dkimRecordName(k), type: 'TXT', value: dkimRecordValue(k) },
  };
}

export interface DnsRecord {
  name: string;
  type: string;
  value: string;
  note?: string;
}

/** RFC 8461 3.2: the policy file served at https://mta-sts.<domain>/.well-known/mta-sts.txt; null for mode none. */
export function mtaStsPolicy(mode: InboundPolicy['mtaSts'], hostname: string): string | null {
  if (mode === 'none') return null;
  return `version: STSv1\r\nmode: ${mode}\r\nmx: ${hostname}\r\nmax_age: 604800\r\n`;
}

/** The policy's id for its TXT record: it changes whenever the policy does (RFC 8461 3.1). */
const mtaStsId = (policy: string) => createHash('sha256').update(policy).digest('hex').slice(0, 20);

/** What a domain publishes so its mail flows and authenticates; SRV ports are the standard ones (map Tern's ports to them in production). */
export async function dnsRecords(directory: DirectoryStore, actor: Actor, name: string, hostname: string): Promise<DnsRecord[]> {
  const domain = await existingDomain(directory, actor, name);
  const keys = await directory.dkimKeys(domain);
  const policy = mtaStsPolicy((await inboundPolicy(directory, actor, domain)).mtaSts, hostname);
  const mtaSts: DnsRecord[] = policy
    ? [
        { name: `_mta-sts.${domain}`, type: 'TXT', value: `v=STSv1; id=${mtaStsId(policy)}`, note: 'MTA-STS (RFC 8461): the id changes with the policy' },
        {
          name: `mta-sts.${domain}`,
          type: 'CNAME',
          value: `${hostname}.`,
          note: 'serves /.well-known/mta-sts.txt: the http role behind HTTPS on 443 with a certificate for this name',
        },
        { name: `_smtp._tls.${domain}`, type: 'TXT', value: `v=TLSRPTv1; rua=mailto:postmaster@${domain}`, note: 'TLS reports (RFC 8460)' },
      ]
    : [];
  const srv = (service: string, port: number): DnsRecord => ({ name: `_${service}._tcp.${domain}`, type: 'SRV', value: `0 1 ${port} ${hostname}.` });
  return [
    { name: domain, type: 'MX', value: `10 ${hostname}.` },
    { name: domain, type: 'TXT', value: 'v=spf1 mx ~all', note: 'SPF: the MX hosts send its mail' },
    ...keys
      .filter((k) => k.state !== 'retiring' || (k.retireAt?.getTime() ?? 0) > Date.now())
      .map((k) => ({ name: dkimRecordName(k), type: 'TXT', value: dkimRecordValue(k), note: `DKIM ${k.algorithm}, ${k.state}` })),
    {
      name: `_dmarc.${domain}`,
      type: 'TXT',
      value: `v=DMARC1; p=none; rua=mailto:postmaster@${domain}`,
      note: 'DMARC: start with p=none, then quarantine or reject',
    },
    ...mtaSts,
    srv('submission', 587),
    srv('submissions', 465),
    srv('imap', 143),
    srv('imaps', 993),
    srv('pop3', 110),
    srv('pop3s', 995),
  ];
}

/** What the MX enforces for mail to `domain` (SPF, DMARC); the defaults when never set. */
export async function inboundPolicy(directory: DirectoryStore, actor: Actor, domain: string): Promise<InboundPolicy> {
  const n = await existingDomain(directory, actor, domain);
  const raw = await directory.getSetting(policySetting(n));
  return parsePolicy(raw ? JSON.parse(raw) : {});
}

/** Changes what the MX enforces for mail to `domain`; fields left out keep their value. A running server sees it within 5 s. */
export async function setInboundPolicy(directory: DirectoryStore, actor: Actor, domain: string, change: Partial<InboundPolicy>): Promise<InboundPolicy> {
  const policy = parsePolicy({ ...(await inboundPolicy(directory, actor, domain)), ...change });
  await directory.setSetting(policySetting(normalizeDomain(domain)), JSON.stringify(policy));
  return policy;
}
