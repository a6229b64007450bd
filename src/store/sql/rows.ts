/**
 * Row → domain object mappers shared by the backends (both schemas use the same column
 * names; dates are epoch milliseconds; booleans 0/1 or true/false).
 */
import type { Account, Domain, Mailbox } from '../store.js';
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
