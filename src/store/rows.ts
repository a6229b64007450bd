/**
 * Row → domain object mappers shared by the backends (both schemas use the same column
 * names; dates are epoch milliseconds).
 */
import type { Account, Domain, Mailbox, StoredMessage } from './store.js';

export type Row = Record<string, unknown>;

export const toDomain = (r: Row): Domain => ({ name: String(r.name), createdAt: new Date(Number(r.created_at)) });

export function toAccount(r: Row): Account {
  return {
    id: Number(r.id),
    address: String(r.address),
    isAdmin: Boolean(r.is_admin),
    quotaBytes: r.quota_bytes == null ? null : Number(r.quota_bytes),
    createdAt: new Date(Number(r.created_at)),
  };
}

/** Expects the mailbox columns plus `messages` (a count). */
export function toMailbox(r: Row): Mailbox {
  return {
    id: Number(r.id),
    name: String(r.name),
    specialUse: r.special_use == null ? null : String(r.special_use),
    uidValidity: Number(r.uidvalidity),
    uidNext: Number(r.uidnext),
    highestModseq: Number(r.highestmodseq),
    messages: Number(r.messages),
  };
}

/** Expects the message columns plus `mailbox` (its name). */
export function toStoredMessage(r: Row): StoredMessage {
  return {
    id: Number(r.id),
    mailbox: String(r.mailbox),
    uid: Number(r.uid),
    modseq: Number(r.modseq),
    flags: String(r.flags).split(' ').filter(Boolean),
    internalDate: new Date(Number(r.internal_date)),
    size: Number(r.size),
    hash: String(r.blob_hash),
    ternId: String(r.tern_id),
    envelopeFrom: String(r.envelope_from),
  };
}
