/**
 * What DNS says now about the records a domain should publish (admin/domains.ts dnsRecords):
 * each looked up, uncached, through the resolvers `tern serve` uses (`--dns-server`), and
 * compared with what Tern asks for. `ok`: published as asked; `different`: the name has a
 * record of that kind (same tag, for TXT) with another value; `missing`: none; `error`: the
 * lookup failed (timeout, SERVFAIL), so nothing is known.
 */
import { Resolver } from 'node:dns/promises';
import type { DnsRecord } from './domains.js';

export type DnsCheckStatus = 'ok' | 'different' | 'missing' | 'error';

export interface DnsCheck extends DnsRecord {
  found: string[];
  status: DnsCheckStatus;
  error?: string;
}

const NO_RECORD = new Set(['ENOTFOUND', 'ENODATA', 'NOTFOUND', 'NODATA']);

const host = (name: string) => name.toLowerCase().replace(/\.$/, '');
const spaces = (text: string) => text.trim().replace(/\s+/g, ' ');
/** The tag a TXT record starts with (v=spf1, v=DMARC1, v=DKIM1, v=STSv1 …): one name may hold several kinds. */
const tagOf = (text: string) => /^v=[^;\s]+/i.exec(text.trim())?.[0].toLowerCase() ?? '';

/** The records of one name and type as strings written like Tern's own (`10 mx.example.com.`). */
async function lookup(resolver: Resolver, r: DnsRecord): Promise<string[]> {
  switch (r.type) {
    case 'MX':
      return (await resolver.resolveMx(r.name)).map((m) => `${m.priority} ${host(m.exchange)}.`);
    case 'TXT':
      return (await resolver.resolveTxt(r.name)).map((chunks) => chunks.join(''));
    case 'CNAME':
      return (await resolver.resolveCname(r.name)).map((c) => `${host(c)}.`);
    case 'SRV':
      return (await resolver.resolveSrv(r.name)).map((s) => `${s.priority} ${s.weight} ${s.port} ${host(s.name)}.`);
    default:
      throw new Error(`cannot check ${r.type} records`);
  }
}

/** Whether `found` publishes what `r` asks for: MX by host (any preference), the others by value. */
function matches(r: DnsRecord, found: string): boolean {
  if (r.type === 'MX') return host(found.split(' ')[1] ?? '') === host(r.value.split(' ')[1] ?? '');
  if (r.type === 'TXT') return spaces(found) === spaces(r.value);
  return host(found) === host(r.value);
}

export function dnsResolver(servers: string[]): Resolver {
  const resolver = new Resolver({ timeout: 3000, tries: 1 });
  if (servers.length > 0) resolver.setServers(servers);
  return resolver;
}

/** Looks every record up at once; the answer keeps their order. */
export async function checkDnsRecords(records: DnsRecord[], resolver: Resolver): Promise<DnsCheck[]> {
  return Promise.all(
    records.map(async (r): Promise<DnsCheck> => {
      try {
        const all = await lookup(resolver, r);
        const found = r.type === 'TXT' ? all.filter((t) => tagOf(t) === tagOf(r.value)) : all;
        return { ...r, found, status: found.some((f) => matches(r, f)) ? 'ok' : found.length > 0 ? 'different' : 'missing' };
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (typeof code === 'string' && NO_RECORD.has(code)) return { ...r, found: [], status: 'missing' };
        return { ...r, found: [], status: 'error', error: typeof code === 'string' ? `${code}: ${(err as Error).message}` : (err as Error).message };
      }
    }),
  );
}
