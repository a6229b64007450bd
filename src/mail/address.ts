/**
 * The one address parser. Every path that accepts an address (SMTP envelope, CLI,
 * aliases, recipient resolution) goes through here so that lookups agree.
 *
 * Normal form: local part and domain lower-cased; an internationalised domain is
 * converted to its ASCII (punycode) form. Catch-all aliases are written `@domain`.
 */
import { domainToASCII } from 'node:url';
import { UserError } from '../errors.js';

export const MAX_ADDRESS_LENGTH = 254; // RFC 5321 4.5.3.1.3 path (256) minus the brackets
const MAX_LOCAL_LENGTH = 64; // RFC 5321 4.5.3.1.1

// RFC 5322 atext plus '.', and non-ASCII (RFC 6531 SMTPUTF8) except the C1 controls U+0080-U+009F.
const DOT_ATOM_LOCAL = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u00A0-\uFFFF]+(\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u00A0-\uFFFF]+)*$/;
const QUOTED_LOCAL = /^"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u00A0-\uFFFF]|\\[\x20-\x7e])*"$/;
const DOMAIN_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
/** RFC 5321 4.1.3 address literals: [IPv4] or [IPv6:…]; nothing else between the brackets. */
const ADDRESS_LITERAL = /^\[(?:\d{1,3}(?:\.\d{1,3}){3}|ipv6:[0-9a-f:.]+)\]$/;

export interface Address {
  local: string;
  domain: string;
}

/** Lower-cases and ASCII-encodes a domain; throws UserError when it is not a valid host name. */
export function normalizeDomain(input: string): string {
  let domain = input.trim().toLowerCase();
  if (domain.endsWith('.')) domain = domain.slice(0, -1);
  if (ADDRESS_LITERAL.test(domain)) return domain;
  if (/[^\x00-\x7f]/.test(domain)) domain = domainToASCII(domain);
  if (!domain || domain.length > 253 || !domain.split('.').every((l) => DOMAIN_LABEL.test(l))) {
    throw new UserError(`invalid domain name: ${JSON.stringify(input)}`);
  }
  return domain;
}

/** Splits and validates `local@domain`; throws UserError with a readable reason. */
export function parseAddress(input: string): Address {
  const at = input.lastIndexOf('@');
  if (at <= 0 || at === input.length - 1) throw new UserError(`invalid address: ${JSON.stringify(input)} (expected local@domain)`);
  if (input.length > MAX_ADDRESS_LENGTH) throw new UserError(`address too long (over ${MAX_ADDRESS_LENGTH} characters)`);
  const local = input.slice(0, at);
  if (Buffer.byteLength(local) > MAX_LOCAL_LENGTH) throw new UserError(`local part too long (over ${MAX_LOCAL_LENGTH} bytes)`);
  let normalLocal = local;
  if (!DOT_ATOM_LOCAL.test(local)) {
    if (!QUOTED_LOCAL.test(local)) throw new UserError(`invalid local part in address: ${JSON.stringify(input)}`);
    // Quotes are not part of the mailbox name (RFC 5322 3.2.4): "alice"@d is alice@d.
    const unquoted = local.slice(1, -1).replace(/\\(.)/g, '$1');
    if (DOT_ATOM_LOCAL.test(unquoted)) normalLocal = unquoted;
  }
  return { local: normalLocal.toLowerCase(), domain: normalizeDomain(input.slice(at + 1)) };
}

/** An envelope sender: validated and its domain normalised, its local part kept as written (RFC 5321 2.4). */
export function normalizeSender(input: string): string {
  const s = input.trim();
  const { domain } = parseAddress(s);
  return `${s.slice(0, s.lastIndexOf('@'))}@${domain}`;
}

/** The normal form of an address, for storage and lookups. */
export function normalizeAddress(input: string): string {
  const { local, domain } = parseAddress(input.trim());
  return `${local}@${domain}`;
}

/** Normal form of an alias source: a full address or a catch-all `@domain`. */
export function normalizeAliasSource(input: string): string {
  const s = input.trim();
  if (s.startsWith('@')) return `@${normalizeDomain(s.slice(1))}`;
  return normalizeAddress(s);
}

export function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1);
}
