/**
 * Row → domain object mappers shared by the backends (both schemas use the same column
 * names; dates are epoch milliseconds; booleans 0/1 or true/false).
 */
import type { Account, ApiKey, DkimKey, Domain, Mailbox } from '../store.js';
import type { Row } from './sql.js';

export const toDomain = (r: Row): Domain => ({ name: String(r.name), createdAt: new Date(Number(r.created_at)) });

export function toAccount(r: Row): Account {
  return {
    id: Number(r.id),
    address: String(r.address),
    isAdmin: Boolean(Number(r.is_admin)),
    quotaBytes: r.quota_bytes == null ? null : Number(r.quota_bytes),
    usedBytes: Number(r.used_bytes),
    createdAt: new Date(Number(r.created_at)),
  };
}

export function toMailbox(r: Row): Mailbox {
  return {
    id: Number(r.id),
    accountId: Number(r.account_id),
    name: String(r.name),
    specialUse: r.special_use == null ? null : (r.special_use as string),
    uidValidity: Number(r.uidvalidity),
    uidNext: Number(r.uidnext),
    highestModseq: Number(r.highestmodseq),
    messages: Number(r.messages),
    unseen: Number(r.unseen),
    bytes: Number(r.bytes),
  };
}

const dateOrNull = (v: unknown): Date | null => (v == null ? null : new Date(Number(v)));

export function toDkimKey(r: Row): DkimKey {
  return {
    domain: String(r.domain),
    selector: String(r.selector),
    algorithm: r.algorithm as DkimKey['algorithm'],
    privateKey: String(r.private_key),
    publicKey: String(r.public_key),
    state: r.state as DkimKey['state'],
    createdAt: new Date(Number(r.created_at)),
    activatedAt: dateOrNull(r.activated_at),
    retireAt: dateOrNull(r.retire_at),
  };
}

export function toApiKey(r: Row): ApiKey {
  const time = (v: unknown) => (v === null || v === undefined ? null : new Date(Number(v)));
  return {
    id: String(r.id),
    secretHash: String(r.secret_hash),
    scopes: String(r.scopes).split(',').filter(Boolean) as ApiKey['scopes'],
    domain: (r.domain as string | null) ?? null,
    description: (r.description as string | null) ?? '',
    ratePerMinute: r.rate_per_minute === null || r.rate_per_minute === undefined ? null : Number(r.rate_per_minute),
    createdAt: new Date(Number(r.created_at)),
    lastUsedAt: time(r.last_used_at),
    revokedAt: time(r.revoked_at),
  };
}
