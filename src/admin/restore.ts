/**
 * Bringing one account's mail (or one mailbox, or one message) back from a site archive
 * into the running site, through the store's normal delivery path and touching nothing
 * else: `tern restore FILE --account A [--mailbox M [--uid N]]`.
 *
 * The archive is read twice. The first pass reads it whole, so it is checked (checksum,
 * counts, digests) before anything is written, and notes the account, its mailboxes, the
 * messages wanted and their keywords. The second stages the bodies wanted as they come
 * (bodies come before their parsed structures and the messages in an archive) and
 * delivers each message once its structure has been read. A message whose body is already
 * in its mailbox is skipped, so a restore can be run again.
 */
import { ConflictError, UserError } from '../errors.js';
import { domainOf, normalizeAddress } from '../mail/address.js';
import type { Value } from '../store/transfer/archive.js';
import { readFrames } from '../store/transfer/index.js';
import type { BlobStructure, Store } from '../store/store.js';

export interface RestoreResult {
  account: string;
  createdAccount: boolean;
  mailboxes: string[];
  restored: number;
  /** Already in their mailbox (same body). */
  skipped: number;
  /** Refused by the account's quota. */
  overQuota: number;
}

interface WantedMessage {
  id: number;
  mailbox: string;
  uid: number;
  internalDate: number;
  hash: string;
  prefix: Buffer;
  envelopeFrom: string;
  ternId: string;
  flags: string[];
}

const FLAG_COLUMNS = [
  ['seen', '\\Seen'],
  ['answered', '\\Answered'],
  ['flagged', '\\Flagged'],
  ['deleted', '\\Deleted'],
  ['draft', '\\Draft'],
] as const;

type Row = Record<string, Value>;
const asRow = (columns: string[], values: Value[]): Row => Object.fromEntries(columns.map((c, i) => [c, values[i] ?? null]));

/** Pass 1: what the archive holds for the account, checked whole. */
async function findWanted(file: string, address: string, mailbox: string | undefined, uid: number | undefined) {
  let columns: string[] = [];
  let table = '';
  let account: Row | null = null;
  const mailboxes = new Map<number, { name: string; specialUse: string | null }>();
  const messages = new Map<number, WantedMessage>();
  for await (const f of readFrames(file)) {
    if (f.type === 'table') {
      table = f.name;
      columns = f.columns;
      continue;
    }
    if (f.type !== 'row') continue;
    const r = asRow(columns, f.values);
    if (table === 'accounts' && r.address === address) account = r;
    else if (table === 'mailboxes' && account && r.account_id === account.id && (mailbox === undefined || r.name === mailbox))
      mailboxes.set(r.id as number, { name: r.name as string, specialUse: (r.special_use as string | null) ?? null });
    else if (table === 'messages' && mailboxes.has(r.mailbox_id as number) && (uid === undefined || r.uid === uid))
      messages.set(r.id as number, {
        id: r.id as number,
        mailbox: mailboxes.get(r.mailbox_id as number)!.name,
        uid: r.uid as number,
        internalDate: r.internal_date as number,
        hash: r.blob_hash as string,
        prefix: (r.prefix as Buffer | null) ?? Buffer.alloc(0),
        envelopeFrom: r.envelope_from as string,
        ternId: r.tern_id as string,
        flags: FLAG_COLUMNS.filter(([c]) => r[c] === 1).map(([, f]) => f),
      });
    else if (table === 'keywords' && messages.has(r.message_id as number)) messages.get(r.message_id as number)!.flags.push(r.keyword as string);
  }
  return { account, mailboxes, messages };
}

export async function restoreMail(store: Store, file: string, o: { account: string; mailbox?: string; uid?: number }): Promise<RestoreResult> {
  const address = normalizeAddress(o.account);
  const { account: saved, mailboxes, messages } = await findWanted(file, address, o.mailbox, o.uid);
  if (!saved) throw new UserError(`${file} has no account ${address}`);
  if (o.mailbox !== undefined && mailboxes.size === 0) throw new UserError(`${file} has no mailbox "${o.mailbox}" for ${address}`);
  if (o.uid !== undefined && messages.size === 0) throw new UserError(`${file} has no message with uid ${o.uid} in "${o.mailbox}" of ${address}`);

  // The account and its mailboxes, as they were, where they are missing.
  let account = await store.directory.getAccount(address);
  const createdAccount = !account;
  if (!account) {
    if (!(await store.directory.isLocalDomain(domainOf(address))))
      throw new UserError(`the domain ${domainOf(address)} is not hosted here: add it first (tern domain add ${domainOf(address)})`);
    account = await store.directory.addAccount({
      address,
      passwordHash: saved.password_hash as string,
      isAdmin: saved.is_admin === 1,
      quotaBytes: (saved.quota_bytes as number | null) ?? null,
    });
  }
  const present = new Map<string, Set<string>>();
  for (const mb of mailboxes.values()) {
    let box = await store.mailboxes.get(account.id, mb.name);
    if (!box) {
      try {
        box = await store.mailboxes.create(account.id, mb.name, mb.specialUse);
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        box = (await store.mailboxes.get(account.id, mb.name))!;
      }
    }
    present.set(mb.name, new Set((await store.mailboxes.messages(box.id)).map((m) => m.hash)));
  }

  const result: RestoreResult = { account: address, createdAccount, mailboxes: [...present.keys()], restored: 0, skipped: 0, overQuota: 0 };
  const wanted = new Map<string, WantedMessage[]>();
  for (const m of messages.values()) {
    if (present.get(m.mailbox)!.has(m.hash)) result.skipped++;
    else wanted.set(m.hash, [...(wanted.get(m.hash) ?? []), m]);
  }
  if (wanted.size === 0) return result;

  // Pass 2: stage the bodies wanted, deliver each once its structure is known.
  const staged = new Map<string, { upload: string; size: number; oldUpload: string | null; chunks: number }>();
  const byOldUpload = new Map<string, string>();
  const deliver = async (hash: string, structure?: BlobStructure) => {
    const body = staged.get(hash);
    const list = wanted.get(hash);
    if (!body || !list) return;
    wanted.delete(hash);
    for (const m of list) {
      const [outcome] = await store.mailboxes.deliver({
        ternId: m.ternId,
        blob: { hash, size: body.size, upload: body.upload, structure },
        envelopeFrom: m.envelopeFrom,
        recipients: [{ accountId: account.id, prefix: m.prefix, mailbox: m.mailbox, flags: m.flags }],
        internalDate: new Date(m.internalDate),
        atomic: false,
      });
      if (outcome?.status === 'stored') result.restored++;
      else result.overQuota++;
    }
  };
  let columns: string[] = [];
  let table = '';
  try {
    for await (const f of readFrames(file)) {
      if (f.type === 'table') {
        table = f.name;
        columns = f.columns;
        if (table === 'blob_search' || table === 'messages') break; // every body and structure has been read
        continue;
      }
      if (f.type !== 'row') continue;
      const r = asRow(columns, f.values);
      if (table === 'blobs' && wanted.has(r.hash as string)) {
        const upload = store.blobs.newUpload();
        const entry = { upload, size: r.size as number, oldUpload: (r.upload as string | null) ?? null, chunks: 0 };
        staged.set(r.hash as string, entry);
        if (entry.oldUpload) byOldUpload.set(entry.oldUpload, r.hash as string);
        else await store.blobs.stage(upload, entry.chunks++, r.data as Buffer);
      } else if (table === 'blob_chunks' && byOldUpload.has(r.upload as string)) {
        const entry = staged.get(byOldUpload.get(r.upload as string)!)!;
        await store.blobs.stage(entry.upload, r.seq as number, r.data as Buffer);
      } else if (table === 'blob_structures' && wanted.has(r.hash as string)) {
        await deliver(r.hash as string, { json: r.structure as string, text: r.search_text as string, headers: r.search_headers as string });
      }
    }
    // Bodies stored without a parsed structure: the store parses them when it next opens.
    for (const hash of [...wanted.keys()]) await deliver(hash);
  } finally {
    for (const [hash, s] of staged) if (wanted.has(hash)) await store.blobs.discard(s.upload).catch(() => undefined);
  }
  return result;
}
