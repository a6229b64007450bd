/**
 * Trusted networks (`--trusted-networks`, the database setting `trusted_networks`, else
 * loopback): clients from them skip the checks meant for strangers on the MX (SPF, DKIM
 * and DMARC enforcement, and later greylisting, rate limits and blocklists), as Postfix's
 * `mynetworks` does. Unlike `mynetworks` they never grant relaying: only authenticated
 * submission relays.
 */
import { BlockList, isIP } from 'node:net';
import { UserError } from '../errors.js';
import { plainAddress } from '../net/ip.js';

export const DEFAULT_TRUSTED_NETWORKS = '127.0.0.0/8,::1/128';
export const TRUSTED_NETWORKS_SETTING = 'trusted_networks';

export class TrustedNetworks {
  private constructor(
    private readonly list: BlockList,
    readonly text: string,
  ) {}

  /** `none`, or comma-separated addresses and CIDR ranges (IPv4 and IPv6). */
  static parse(what: string, value: string): TrustedNetworks {
    const list = new BlockList();
    const text = value.trim();
    if (text.toLowerCase() === 'none') return new TrustedNetworks(list, 'none');
    const parts = text
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    if (parts.length === 0) throw new UserError(`${what}: give CIDR ranges (e.g. 127.0.0.0/8,::1/128) or none`);
    for (const part of parts) {
      const [address, bits, extra] = part.split('/');
      const family = isIP(address ?? '');
      const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
      if (
        !family ||
        extra !== undefined ||
        !Number.isInteger(prefix) ||
        prefix < 0 ||
        prefix > (family === 6 ? 128 : 32) ||
        (bits !== undefined && !/^\d+$/.test(bits))
      )
        throw new UserError(`${what}: ${JSON.stringify(part)} is not an address or a CIDR range`);
      list.addSubnet(address!, prefix, family === 6 ? 'ipv6' : 'ipv4');
    }
    return new TrustedNetworks(list, parts.join(','));
  }

  /** Whether a client address (as a socket gives it; IPv4-mapped IPv6 counts as IPv4) is trusted. */
  has(address: string): boolean {
    const a = plainAddress(address);
    const family = isIP(a);
    return family !== 0 && this.list.check(a, family === 6 ? 'ipv6' : 'ipv4');
  }
}
