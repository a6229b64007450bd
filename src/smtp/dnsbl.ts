/**
 * DNS blocklists (RFC 5782), optional (`--dnsbl zone,…`): a stranger connecting to the MX
 * is looked up in each zone before the greeting; an answer in 127.0.0.0/8 (but not
 * 127.255.255.0/24, which lists use to say the query itself was refused) means listed, and
 * the client is refused with 554 5.7.1. Lookups go through the resolver with short
 * timeouts and a cache; a list that does not answer lists no one.
 */
import { isIP } from 'node:net';
import { metrics } from '../metrics.js';
import { ipv6Groups, plainAddress } from '../net/ip.js';
import type { MailDns } from '../queue/dns.js';

/** The name to look up for `address` in `zone`: reversed octets (IPv4) or nibbles (IPv6); null for anything else. */
export function dnsblName(address: string, zone: string): string | null {
  const a = plainAddress(address);
  if (isIP(a) === 4) return `${a.split('.').reverse().join('.')}.${zone}`;
  const groups = ipv6Groups(a);
  if (!groups) return null;
  const nibbles = groups.join('');
  return `${[...nibbles].reverse().join('.')}.${zone}`;
}

export class Dnsbl {
  constructor(
    private readonly dns: Pick<MailDns, 'resolve'>,
    readonly zones: string[],
  ) {}

  /** The first zone that lists `address`, or null. */
  async listed(address: string): Promise<string | null> {
    const hits = await Promise.all(
      this.zones.map(async (zone) => {
        const name = dnsblName(address, zone);
        if (!name) return null;
        try {
          const answers = (await this.dns.resolve(name, 'A')) as string[];
          return answers.some((ip) => ip.startsWith('127.') && !ip.startsWith('127.255.255.')) ? zone : null;
        } catch {
          return null; // not listed, or the list does not answer
        }
      }),
    );
    const zone = hits.find((z) => z !== null) ?? null;
    if (zone) metrics.dnsblHits.inc({ zone });
    return zone;
  }
}
