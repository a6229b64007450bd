/**
 * Who may send as whom on submission: an account may use its own address, any alias
 * that delivers to it, and any address of a domain whose catch-all (`@domain`) delivers
 * to it. Everything else is refused (553 5.7.1), for the envelope sender and for every
 * address in the From header alike.
 */
import { domainOf } from '../mail/address.js';
import type { Account, DirectoryStore } from '../store/store.js';

export interface SenderPolicy {
  mayUse(account: Account, address: string): Promise<boolean>;
}

export function createSenderPolicy(directory: DirectoryStore): SenderPolicy {
  return {
    async mayUse(account, raw) {
      const address = raw.toLowerCase();
      if (address === account.address) return true;
      if ((await directory.aliasTargets(address)).includes(account.address)) return true;
      return (await directory.aliasTargets(`@${domainOf(address)}`)).includes(account.address);
    },
  };
}
