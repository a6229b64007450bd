/**
 * Mail accounts, the same for `tern user` and the HTTP API: a password is at least 8
 * characters or generated (and then shown once), a quota is a whole number of bytes or
 * unlimited, and a key limited to a domain manages only that domain's accounts and never
 * makes, changes or deletes site administrators.
 */
import { isLegacyHash } from '../auth/legacy-hashes.js';
import { generatePassword, hashPassword } from '../auth/password.js';
import { ForbiddenError, NotFoundError, UserError } from '../errors.js';
import { domainOf, normalizeAddress, normalizeDomain } from '../mail/address.js';
import type { Account, Store } from '../store/store.js';
import { manages, requireSiteAdmin, scopeDomain, type Actor } from './actor.js';

export const MIN_PASSWORD_LENGTH = 8;
const MAX_PASSWORD_LENGTH = 1024;

/** The password given, checked, or a generated one (`generated` says which: show it once). */
export function choosePassword(given: string | undefined): { password: string; generated: boolean } {
  if (given === undefined) return { password: generatePassword(), generated: true };
  if (given.length < MIN_PASSWORD_LENGTH) throw new UserError(`password must be at least ${MIN_PASSWORD_LENGTH} characters`);
  if (given.length > MAX_PASSWORD_LENGTH) throw new UserError(`password must be at most ${MAX_PASSWORD_LENGTH} characters`);
  return { password: given, generated: false };
}

/** The stored form of a password (auth/password.ts): `$scrypt$N=…,r=…,p=…$SALT$HASH`. */
const PASSWORD_HASH = /^\$scrypt\$N=\d+,r=\d+,p=\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/;

/**
 * Throws unless `hash` is a password hash as Tern stores them (from `tern config export
 * --password-hashes`) or a Dovecot `{SCHEME}…` hash carried over from a legacy host
 * (auth/legacy-hashes.ts checks it at login and then stores a scrypt hash in its place).
 */
export function checkPasswordHash(hash: string): void {
  if (!PASSWORD_HASH.test(hash) && !isLegacyHash(hash))
    throw new UserError('password_hash: expected a hash as Tern stores them ($scrypt$N=…,r=…,p=…$salt$hash) or a Dovecot {SCHEME} hash');
}

function checkQuota(quotaBytes: number | null | undefined): void {
  if (quotaBytes != null && (!Number.isSafeInteger(quotaBytes) || quotaBytes < 0))
    throw new UserError('the quota is a whole number of bytes, or null for unlimited');
}

/** The account's address, normalized, once it is known to exist and to be the actor's. */
async function existingAccount(store: Store, actor: Actor, address: string): Promise<Account> {
  const a = normalizeAddress(address);
  const account = manages(actor, domainOf(a)) ? await store.directory.getAccount(a) : null;
  if (!account) throw new NotFoundError(`account ${a} does not exist`);
  return account;
}

/** The account, once it is known to be the actor's to change: a key limited to a domain never changes site administrators. */
async function changeableAccount(store: Store, actor: Actor, address: string, what: string): Promise<Account> {
  const account = await existingAccount(store, actor, address);
  if (account.isAdmin && actor?.domain) throw new ForbiddenError(`a key limited to a domain cannot ${what} site administrators`);
  return account;
}

export async function createAccount(
  store: Store,
  actor: Actor,
  o: { address: string; password?: string; passwordHash?: string; isAdmin?: boolean; quotaBytes?: number | null },
): Promise<{ account: Account; password: string; generated: boolean }> {
  const address = normalizeAddress(o.address);
  if (!manages(actor, domainOf(address))) throw new ForbiddenError(`this key manages only ${actor?.domain}`);
  if (o.isAdmin && actor?.domain) throw new ForbiddenError('a key limited to a domain cannot make site administrators');
  checkQuota(o.quotaBytes);
  if (o.passwordHash !== undefined) checkPasswordHash(o.passwordHash);
  // A hash given (an account carried over from another site) is kept as it is: no password to show.
  const { password, generated } = o.passwordHash !== undefined ? { password: '', generated: false } : choosePassword(o.password);
  const account = await store.directory.addAccount({
    address,
    passwordHash: o.passwordHash ?? (await hashPassword(password)),
    isAdmin: Boolean(o.isAdmin),
    quotaBytes: o.quotaBytes ?? null,
  });
  return { account, password, generated };
}

export interface AccountSummary {
  address: string;
  admin: boolean;
  quotaBytes: number | null;
  usedBytes: number;
  messages: number;
  createdAt: string;
}

function summary(a: Account, messages: number): AccountSummary {
  return { address: a.address, admin: a.isAdmin, quotaBytes: a.quotaBytes, usedBytes: a.usedBytes, messages, createdAt: a.createdAt.toISOString() };
}

/** The accounts `actor` may see (of `domain` when given; with `search`, those whose address contains it), one page of them, and how many match. */
export async function listAccounts(
  store: Store,
  actor: Actor,
  o: { domain?: string; search?: string; offset?: number; limit?: number } = {},
): Promise<{ accounts: AccountSummary[]; total: number }> {
  const needle = o.search?.trim().toLowerCase() ?? '';
  const all = (await store.directory.listAccounts(scopeDomain(actor, o.domain ? normalizeDomain(o.domain) : undefined))).filter((a) =>
    a.address.includes(needle),
  );
  const page = all.slice(o.offset ?? 0, (o.offset ?? 0) + (o.limit ?? all.length));
  const counts = new Map((await store.stats()).accounts.map((a) => [a.address, a.messages]));
  return { accounts: page.map((a) => summary(a, counts.get(a.address) ?? 0)), total: all.length };
}

export async function getAccount(store: Store, actor: Actor, address: string): Promise<AccountSummary> {
  const account = await existingAccount(store, actor, address);
  const mailboxes = await store.mailboxes.list(account.id);
  return summary(
    account,
    mailboxes.reduce((n, m) => n + m.messages, 0),
  );
}

/** Sets the password given or a generated one; returns it so a generated one can be shown once. */
export async function setPassword(
  store: Store,
  actor: Actor,
  address: string,
  given?: string,
): Promise<{ address: string; password: string; generated: boolean }> {
  const account = await changeableAccount(store, actor, address, 'set the password of');
  const { password, generated } = choosePassword(given);
  await store.directory.setPasswordHash(account.address, await hashPassword(password));
  return { address: account.address, password, generated };
}

/** Stores a password hash as it is (carried over from another site: `tern config apply`, `tern import-users`). */
export async function setPasswordHash(store: Store, actor: Actor, address: string, hash: string): Promise<string> {
  const account = await changeableAccount(store, actor, address, 'set the password of');
  checkPasswordHash(hash);
  await store.directory.setPasswordHash(account.address, hash);
  return account.address;
}

/** The stored password hash of an account (for `tern config export --password-hashes`); site administrators only. */
export async function passwordHashOf(store: Store, actor: Actor, address: string): Promise<string | null> {
  requireSiteAdmin(actor, 'reading password hashes');
  return store.directory.getPasswordHash(normalizeAddress(address));
}

/** Makes an account a site administrator, or not; only whoever manages the whole site may. */
export async function setAdmin(store: Store, actor: Actor, address: string, isAdmin: boolean): Promise<string> {
  requireSiteAdmin(actor, 'changing who is a site administrator');
  const account = await existingAccount(store, actor, address);
  await store.directory.setAdmin(account.address, isAdmin);
  return account.address;
}

export async function setQuota(store: Store, actor: Actor, address: string, quotaBytes: number | null): Promise<string> {
  const account = await changeableAccount(store, actor, address, 'set the quota of');
  checkQuota(quotaBytes);
  await store.directory.setQuota(account.address, quotaBytes);
  return account.address;
}

/** Deletes the account with all its mailboxes and messages. */
export async function deleteAccount(store: Store, actor: Actor, address: string): Promise<string> {
  const account = await changeableAccount(store, actor, address, 'delete');
  await store.directory.deleteAccount(account.address);
  return account.address;
}
