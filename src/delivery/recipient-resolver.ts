/**
 * The one place that decides where a recipient's mail goes; SMTP, LMTP, the HTTP API
 * and import all ask here.
 *
 * Order for an address in a local domain: an exact alias, then an account, then
 * `user+tag@domain` as `user@domain`, then the domain's catch-all alias `@domain`.
 * Alias targets expand recursively (depth-limited, loops ignored) to accounts.
 */
import type { Store } from '../store/store.js';
import { domainOf, normalizeAddress } from '../mail/address.js';

export type Resolution =
  | { kind: 'local'; accountIds: number[] }
  | { kind: 'unknown-user' }
  | { kind: 'not-local' };

const MAX_ALIAS_DEPTH = 8;

export interface RecipientResolver {
  /** `address` must already be in normal form (mail/address.ts). */
  resolve(address: string): Promise<Resolution>;
}

export function createRecipientResolver(store: Store): RecipientResolver {
  async function expand(address: string, depth: number, seen: Set<string>, out: Set<number>): Promise<boolean> {
    if (seen.has(address) || depth > MAX_ALIAS_DEPTH) return false;
    seen.add(address);
    const targets = await store.aliasTargets(address);
    if (targets.length > 0) {
      let any = false;
      for (const t of targets) if (await expand(t, depth + 1, seen, out)) any = true;
      return any;
    }
    const account = await store.getAccount(address);
    if (account) {
      out.add(account.id);
      return true;
    }
    return false;
  }

  async function resolveIn(address: string): Promise<number[]> {
    const out = new Set<number>();
    await expand(address, 0, new Set(), out);
    return [...out];
  }

  return {
    async resolve(address) {
      const domain = domainOf(address);
      if (!(await store.isLocalDomain(domain))) return { kind: 'not-local' };
      let ids = await resolveIn(address);
      if (ids.length === 0) {
        const local = address.slice(0, address.lastIndexOf('@'));
        const plus = local.indexOf('+');
        if (plus > 0) ids = await resolveIn(normalizeAddress(`${local.slice(0, plus)}@${domain}`));
      }
      if (ids.length === 0) {
        const catchAll = await store.aliasTargets(`@${domain}`);
        const out = new Set<number>();
        for (const t of catchAll) await expand(t, 1, new Set([address]), out);
        ids = [...out];
      }
      return ids.length > 0 ? { kind: 'local', accountIds: ids } : { kind: 'unknown-user' };
    },
  };
}
