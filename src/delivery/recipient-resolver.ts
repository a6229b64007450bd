/**
 * The one place that decides where a recipient's mail goes; SMTP, LMTP, the HTTP API
 * and import all ask here.
 *
 * Order for an address in a local domain: an exact alias, then an account, then
 * `user+tag@domain` as `user@domain`, then the domain's catch-all alias `@domain`.
 * Alias targets expand recursively (depth-limited, loops ignored) to accounts.
 * Quota: an account whose stored bytes plus the announced message size exceed its quota
 * is left out; when every account an address reaches is full, the answer is over-quota.
 */
import type { Account, Store } from '../store/store.js';
import { domainOf, normalizeAddress } from '../mail/address.js';

export type Resolution =
  | { kind: 'local'; accountIds: number[] }
  | { kind: 'over-quota' }
  | { kind: 'unknown-user' }
  | { kind: 'not-local' };

const MAX_ALIAS_DEPTH = 8;

export interface RecipientResolver {
  /** `address` must already be in normal form (mail/address.ts); `size` is the SIZE= announced, if any. */
  resolve(address: string, size?: number): Promise<Resolution>;
}

export function createRecipientResolver(store: Store): RecipientResolver {
  async function expand(address: string, depth: number, seen: Set<string>, out: Map<number, Account>): Promise<void> {
    if (seen.has(address) || depth > MAX_ALIAS_DEPTH) return;
    seen.add(address);
    const targets = await store.aliasTargets(address);
    if (targets.length > 0) {
      for (const t of targets) await expand(t, depth + 1, seen, out);
      return;
    }
    const account = await store.getAccount(address);
    if (account) out.set(account.id, account);
  }

  async function accountsFor(address: string, domain: string): Promise<Account[]> {
    const out = new Map<number, Account>();
    await expand(address, 0, new Set(), out);
    if (out.size === 0) {
      const local = address.slice(0, address.lastIndexOf('@'));
      const plus = local.startsWith('"') ? -1 : local.indexOf('+'); // no subaddress in quoted local parts
      if (plus > 0) await expand(normalizeAddress(`${local.slice(0, plus)}@${domain}`), 0, new Set(), out);
    }
    if (out.size === 0) {
      for (const t of await store.aliasTargets(`@${domain}`)) await expand(t, 1, new Set([address]), out);
    }
    return [...out.values()];
  }

  async function hasRoom(account: Account, size: number): Promise<boolean> {
    if (account.quotaBytes === null) return true;
    return (await store.usedBytes(account.id)) + size <= account.quotaBytes;
  }

  return {
    async resolve(address, size = 0) {
      const domain = domainOf(address);
      if (!(await store.isLocalDomain(domain))) return { kind: 'not-local' };
      const accounts = await accountsFor(address, domain);
      if (accounts.length === 0) return { kind: 'unknown-user' };
      const withRoom: number[] = [];
      for (const a of accounts) if (await hasRoom(a, size)) withRoom.push(a.id);
      return withRoom.length > 0 ? { kind: 'local', accountIds: withRoom } : { kind: 'over-quota' };
    },
  };
}
