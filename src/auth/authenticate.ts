/**
 * Password logins for every protocol (IMAP, POP3, later submission and HTTP): one place
 * that checks a user name and password against the directory and logs every failure with
 * the client address; failures count towards a ban (auth/guard.ts). A password that
 * matches an imported legacy hash replaces it with a scrypt hash (one store write).
 */
import type { Logger } from 'pino';
import type { Account, DirectoryStore } from '../store/store.js';
import type { Guard } from './guard.js';
import { isLegacyHash, legacyHashInfo } from './legacy-hashes.js';
import { hashPassword, needsRehash, verifyPassword } from './password.js';

export interface LoginContext {
  protocol: string;
  remoteAddress: string;
}

export interface Authenticator {
  /** The account when `user` and `password` match; null (and a log line) otherwise. */
  login(user: string, password: string, context: LoginContext): Promise<Account | null>;
}

/** Longest user name or password accepted; longer ones fail without a lookup. */
const MAX_CREDENTIAL = 1024;

export function createAuthenticator(directory: DirectoryStore, log: Logger, guard?: Pick<Guard, 'banned' | 'loginFailed'>): Authenticator {
  // Unknown users are checked against a throwaway hash, so a failure takes as long either way.
  const decoy = hashPassword('decoy password that matches nothing');
  async function upgradeHash(address: string, password: string, stored: string): Promise<void> {
    try {
      await directory.setPasswordHash(address, await hashPassword(password));
      log.info({ user: address, from: stored.startsWith('{') ? stored.slice(0, stored.indexOf('}') + 1) : 'scrypt' }, 'password hash upgraded to scrypt');
    } catch (err) {
      // The login stands; the next one tries again.
      log.warn({ user: address, err: (err as Error).message }, 'password hash upgrade failed');
    }
  }
  return {
    async login(user, password, context) {
      const address = user.trim().toLowerCase();
      // A banned address gets no more tries (its connection may predate the ban).
      if (guard?.banned(context.remoteAddress)) {
        log.warn({ protocol: context.protocol, ip: context.remoteAddress, user: address.slice(0, 256) }, 'login refused: address banned');
        return null;
      }
      let account: Account | null = null;
      if (address.length > 0 && address.length <= MAX_CREDENTIAL && password.length <= MAX_CREDENTIAL) {
        const stored = await directory.getPasswordHash(address);
        const ok = await verifyPassword(password, stored ?? (await decoy));
        // An imported hash that is quick to check (a salted SHA) or not checkable at all would
        // answer sooner than a scrypt check, telling which imported accounts exist: take as long.
        if (stored && isLegacyHash(stored)) {
          const info = legacyHashInfo(stored);
          if (!info.verifiable || !info.expensive) await verifyPassword(password, await decoy);
        }
        if (ok && stored) account = await directory.getAccount(address);
        // An imported account's old hash (or an older scrypt cost) is replaced at its first login.
        if (account && stored && needsRehash(stored)) await upgradeHash(account.address, password, stored);
      }
      if (account) log.info({ protocol: context.protocol, ip: context.remoteAddress, user: address }, 'login');
      else {
        log.warn({ protocol: context.protocol, ip: context.remoteAddress, user: address.slice(0, 256) }, 'login failed');
        guard?.loginFailed(context.remoteAddress, context.protocol);
      }
      return account;
    },
  };
}

/** SASL PLAIN (RFC 4616): `authzid NUL authcid NUL password`, base64; null when malformed. */
export function decodeSaslPlain(base64: string): { authzid: string; user: string; password: string } | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64)) return null;
  const parts = Buffer.from(base64, 'base64').toString('utf8').split('\0');
  if (parts.length !== 3 || !parts[1]) return null;
  return { authzid: parts[0]!, user: parts[1], password: parts[2]! };
}

/** Whether a client may send a password in clear: over TLS, from loopback, or when the operator allowed it. */
export function mayUsePlaintext(opts: { secure: boolean; remoteAddress: string; insecureAuth: boolean }): boolean {
  return opts.secure || opts.insecureAuth || isLoopback(opts.remoteAddress);
}

export function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}
