/**
 * DNS for outbound delivery: where a domain's mail goes (MX, RFC 5321 5.1: lowest
 * preference first, equal ones shuffled; no MX means the domain itself; a null MX, RFC
 * 7505, means the domain accepts no mail) and the addresses of a host. Lookups go to the
 * configured resolver (`--dns-server`, so tests use their own DNS server) with a short
 * timeout, and answers are kept for a minute so a busy destination costs one lookup.
 */
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';

export interface MailHost {
  host: string;
  preference: number;
}

/** A DNS answer that will not change by retrying: the domain does not exist, or publishes a null MX. */
export class PermanentDnsError extends Error {}

const CACHE_MS = 60_000;
const MAX_CACHED = 10_000;
/** Codes that mean "no such name / no such record", not "try later". */
const NO_ANSWER = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN']);

export interface MailDns {
  /** The hosts to try for `domain`, best first. Throws PermanentDnsError for a null MX or a domain that does not exist. */
  mailHosts(domain: string): Promise<MailHost[]>;
  /** IPv4 then IPv6 addresses of `host` (an address literal is returned as is); empty when it has none. */
  addresses(host: string): Promise<string[]>;
  /** TXT records of `name`, uncached (DKIM rotation checks what is published now). */
  txt(name: string): Promise<string[][]>;
  /**
   * Any record type, as `dns.promises.resolve` answers (mailauth's resolver: SPF, DKIM,
   * DMARC, ARC lookups). Answers and "no such record" are kept for a minute; other
   * failures are not kept.
   */
  resolve(name: string, rrtype: string): Promise<string[][] | string[]>;
}

export function createMailDns(options: { servers?: string[]; timeoutMs?: number; tries?: number } = {}): MailDns {
  const resolver = new Resolver({ timeout: options.timeoutMs ?? 5000, tries: options.tries ?? 2 });
  if (options.servers?.length) resolver.setServers(options.servers);
  const cache = new Map<string, { until: number; value: Promise<unknown> }>();

  function cached<T>(key: string, load: () => Promise<T>): Promise<T> {
    const now = Date.now();
    const hit = cache.get(key);
    if (hit && hit.until > now) return hit.value as Promise<T>;
    if (cache.size >= MAX_CACHED) cache.clear();
    const value = load();
    cache.set(key, { until: now + CACHE_MS, value });
    value.catch(() => cache.delete(key)); // failures are asked again next time
    return value;
  }

  const noAnswer = (err: unknown) => NO_ANSWER.has((err as NodeJS.ErrnoException).code ?? '');

  async function records<T>(lookup: () => Promise<T[]>): Promise<T[] | null> {
    try {
      return await lookup();
    } catch (err) {
      if (noAnswer(err)) return null;
      throw err;
    }
  }

  function addresses(host: string): Promise<string[]> {
    if (isIP(host)) return Promise.resolve([host]);
    return cached(`a:${host}`, async () => {
      const [v4, v6] = await Promise.all([records(() => resolver.resolve4(host)), records(() => resolver.resolve6(host))]);
      return [...(v4 ?? []), ...(v6 ?? [])];
    });
  }

  function mailHosts(domain: string): Promise<MailHost[]> {
    return cached(`mx:${domain}`, async () => {
      const mx = await records(() => resolver.resolveMx(domain));
      if (mx && mx.length > 0) {
        // RFC 7505: an MX of "." (node gives an empty exchange) means no mail at all.
        if (mx.some((r) => r.exchange === '' || r.exchange === '.')) throw new PermanentDnsError(`${domain} does not accept mail (null MX)`);
        const shuffled = mx.map((r) => ({ host: r.exchange.toLowerCase(), preference: r.priority, key: Math.random() }));
        shuffled.sort((a, b) => a.preference - b.preference || a.key - b.key);
        return shuffled.map(({ host, preference }) => ({ host, preference }));
      }
      // No MX: the domain itself, if it has an address (RFC 5321 5.1).
      if ((await addresses(domain)).length === 0) throw new PermanentDnsError(`${domain} has no MX and no address record`);
      return [{ host: domain, preference: 0 }];
    });
  }

  /** A lookup whose "no such record" answer is kept like an answer (it is one), and thrown again as it came. */
  function resolve(name: string, rrtype: string): Promise<string[][] | string[]> {
    const key = `${rrtype}:${name.toLowerCase()}`;
    const answer = cached<{ records: string[][] | string[] } | { none: Error }>(key, async () => {
      try {
        return { records: (await resolver.resolve(name, rrtype)) as string[][] | string[] };
      } catch (err) {
        if (noAnswer(err)) return { none: err as Error };
        throw err;
      }
    });
    return answer.then((a) => {
      if ('none' in a) throw a.none;
      return a.records;
    });
  }

  return { mailHosts, addresses, txt: (name) => resolver.resolveTxt(name), resolve };
}
