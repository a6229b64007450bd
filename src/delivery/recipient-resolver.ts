/**
 * The one place that decides where a recipient's mail goes; SMTP, LMTP, the HTTP API
 * and import all ask here.
 *
 * Order for an address in a local domain: an exact alias, then an account, then
 * `user+tag@domain` as `user@domain`, then the domain's catch-all alias `@domain`.
 * Alias targets expand recursively (depth-limited, loops ignored) to accounts.
 *
 * Postmaster (RFC 5321 4.5.1): `<Postmaster>` without a domain, and postmaster at the
 * server's own hostname, must always be accepted: they go to postmaster@hostname when that
 * is a local address, else to the site's administrators.
 *
 * Quota: an account whose used bytes (a maintained counter, so this is O(1)) plus the
 * announced message size exceed its quota is left out; when every account an address
 * reaches is full, the answer is over-quota. The store checks again at commit.
 *
 * Lookups that found an alias or an account without a quota are kept for a second
 * (LOOKUP_TTL_MS), so a busy address costs one store read per second instead of one per
 * RCPT. Nothing else is kept: an unknown address is asked again every time (a new account
 * is reachable at once), and so is an account with a quota (its used bytes change with
 * every delivery). A deleted account or a changed alias is seen within the second; mail
 * accepted meanwhile for a deleted account is refused at commit (550 5.1.1).
 */
import type { Account, AddressLookup, DirectoryStore } from '../store/store.js';
import { domainOf, normalizeAddress } from '../mail/address.js';

export type Resolution =
  | { kind: 'local'; address: string; accountIds: number[] }
  | { kind: 'over-quota'; address: string }
  | { kind: 'unknown-user'; address: string }
  | { kind: 'not-local'; address: string };

const MAX_ALIAS_DEPTH = 8;
const LOOKUP_TTL_MS = 1000;
const MAX_CACHED_LOOKUPS = 10_000;

export interface RecipientResolver {
  /**
   * `address` is as the client wrote it (RCPT TO); it is normalised here (mail/address.ts
   * throws UserError for a malformed one). `size` is the SIZE= announced, if any.
   */
  resolve(address: string, size?: number): Promise<Resolution>;
}

/** Recent lookups worth keeping (see above); oldest first, so the first entry is the one to evict. */
function lookupCache(directory: DirectoryStore): (address: string) => Promise<AddressLookup> {
  const kept = new Map<string, { facts: AddressLookup; until: number }>();
  const keepable = (f: AddressLookup) => f.aliasTargets.length > 0 || (f.account !== null && f.account.quotaBytes === null);
  return async (address) => {
    const now = Date.now();
    const hit = kept.get(address);
    if (hit && hit.until > now) return hit.facts;
    const facts = await directory.lookup(address);
    kept.delete(address);
    if (keepable(facts)) {
      if (kept.size >= MAX_CACHED_LOOKUPS) kept.delete(kept.keys().next().value!);
      kept.set(address, { facts, until: now + LOOKUP_TTL_MS });
    }
    return facts;
  };
}

export function createRecipientResolver(directory: DirectoryStore, options: { hostname: string }): RecipientResolver {
  const lookup = lookupCache(directory);
  /** Adds the accounts `address` reaches; `known` is its lookup when the caller already has it. */
  async function expand(address: string, depth: number, seen: Set<string>, out: Map<number, Account>, known?: AddressLookup): Promise<void> {
    if (seen.has(address) || depth > MAX_ALIAS_DEPTH) return;
    seen.add(address);
    const facts = known ?? (await lookup(address));
    if (facts.aliasTargets.length > 0) {
      for (const t of facts.aliasTargets) await expand(t, depth + 1, seen, out);
      return;
    }
    if (facts.account) out.set(facts.account.id, facts.account);
  }

  async function accountsFor(address: string, domain: string, facts: AddressLookup): Promise<Account[]> {
    const out = new Map<number, Account>();
    await expand(address, 0, new Set(), out, facts);
    if (out.size === 0) {
      const local = address.slice(0, address.lastIndexOf('@'));
      const plus = local.startsWith('"') ? -1 : local.indexOf('+'); // no subaddress in quoted local parts
      if (plus > 0) await expand(normalizeAddress(`${local.slice(0, plus)}@${domain}`), 0, new Set(), out);
    }
    if (out.size === 0) {
      for (const t of (await lookup(`@${domain}`)).aliasTargets) await expand(t, 1, new Set([address]), out);
    }
    return [...out.values()];
  }

  const hasRoom = (a: Account, size: number) => a.quotaBytes === null || a.usedBytes + size <= a.quotaBytes;

  function decide(address: string, accounts: Account[], size: number): Resolution {
    if (accounts.length === 0) return { kind: 'unknown-user', address };
    const withRoom = accounts.filter((a) => hasRoom(a, size)).map((a) => a.id);
    return withRoom.length > 0 ? { kind: 'local', address, accountIds: withRoom } : { kind: 'over-quota', address };
  }

  return {
    async resolve(raw, size = 0) {
      const postmaster = `postmaster@${options.hostname}`;
      const address = raw.toLowerCase() === 'postmaster' ? postmaster : normalizeAddress(raw);
      const domain = domainOf(address);
      // One round trip for the common case: the domain, an alias, or the account itself.
      const facts = await lookup(address);
      if (facts.localDomain) {
        const accounts = await accountsFor(address, domain, facts);
        if (accounts.length > 0 || address !== postmaster) return decide(address, accounts, size);
      } else if (address !== postmaster) {
        return { kind: 'not-local', address };
      }
      // Postmaster of a hostname that is not (or not fully) a local domain: the administrators.
      return decide(
        address,
        (await directory.listAccounts()).filter((a) => a.isAdmin),
        size,
      );
    },
  };
}
