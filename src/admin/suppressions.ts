/**
 * The suppression list, the same for `tern suppression` and the HTTP API: addresses that
 * bounced hard (added by the queue worker) or were put there, which API sends skip (the
 * recipient's status is `suppressed`). It is the site's: only site-wide admins manage it.
 */
import { UserError } from '../errors.js';
import { normalizeAddress } from '../mail/address.js';
import type { DirectoryStore, Suppression } from '../store/store.js';
import { requireSiteAdmin, type Actor } from './actor.js';

/** Most addresses one add or import takes. */
export const MAX_SUPPRESSIONS_AT_ONCE = 10_000;

/** Adds addresses (normalized; a bad one fails the whole call, naming it); returns how many were new. */
export async function addSuppressions(
  directory: DirectoryStore,
  actor: Actor,
  addresses: string[],
  o: { source?: 'manual' | 'import'; reason?: string } = {},
): Promise<number> {
  requireSiteAdmin(actor, 'the suppression list is the whole site’s');
  if (addresses.length === 0) throw new UserError('give at least one address');
  if (addresses.length > MAX_SUPPRESSIONS_AT_ONCE) throw new UserError(`at most ${MAX_SUPPRESSIONS_AT_ONCE} addresses at once`);
  const entries = [...new Set(addresses.map((a) => normalizeAddress(a.trim())))].map((address) => ({
    address,
    source: o.source ?? 'manual',
    reason: o.reason ?? '',
  }));
  return directory.addSuppressions(entries);
}

export async function deleteSuppression(directory: DirectoryStore, actor: Actor, address: string): Promise<void> {
  requireSiteAdmin(actor, 'the suppression list is the whole site’s');
  await directory.deleteSuppression(normalizeAddress(address));
}

export async function listSuppressions(directory: DirectoryStore, actor: Actor, page: { after?: string; limit: number }): Promise<Suppression[]> {
  requireSiteAdmin(actor, 'the suppression list is the whole site’s');
  return directory.listSuppressions(page);
}

/** Addresses out of an import file: one a line, or the first field of a CSV line; blank lines, `#` comments and a header line are skipped. */
export function addressesFromFile(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) =>
      line
        .split(/[,;\t]/)[0]!
        .trim()
        .replace(/^"|"$/g, ''),
    )
    .filter((a) => a && !a.startsWith('#') && a.includes('@'));
}

/** Whether a failure reply means the address itself is bad (RFC 3463 x.1.1 bad mailbox, x.1.2 bad domain, x.1.10 null MX), not a passing refusal. */
export const isHardBounce = (reply: string | null): boolean => /^5\d\d[ -]5\.1\.(1|2|10)\b/.test(reply ?? '');
