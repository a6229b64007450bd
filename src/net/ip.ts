/** Client addresses as sockets give them: one name per client, and IPv6 written out in full. */
import { isIP } from 'node:net';

/** An IPv4-mapped IPv6 address (::ffff:1.2.3.4) as plain IPv4; anything else as it is. */
export function plainAddress(address: string): string {
  return /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] ?? address;
}

/** The eight groups of an IPv6 address, `::` expanded and each padded to four hex digits; null for anything else. */
export function ipv6Groups(address: string): string[] | null {
  if (isIP(address) !== 6) return null;
  const [head = '', tail] = address.toLowerCase().split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return groups.map((g) => g.padStart(4, '0'));
}
