/**
 * Reading an account's mail through the API: its mailboxes, a page of messages with their
 * main headers, one message parsed (headers, text, html, attachment list, by mailparser)
 * or raw, and one attachment. Who may read: an admin key (one limited to a domain, that
 * domain's accounts), or a read key limited to the account's domain — a site-wide read key
 * is for message traces, not for everyone's mailbox.
 */
import type { AddressObject, ParsedMail } from 'mailparser';
import { ForbiddenError, NotFoundError } from '../errors.js';
import { domainOf, normalizeAddress } from '../mail/address.js';
import { parseStoredStructure } from '../mail/mime/index.js';
import type { Account, Mailbox, Store } from '../store/store.js';
import { manages, type Actor } from './actor.js';

/** The account, once the actor may read it. */
export async function readableAccount(store: Store, actor: Actor, address: string): Promise<Account> {
  const a = normalizeAddress(address);
  if (actor && !actor.scopes.includes('admin') && !actor.domain)
    throw new ForbiddenError('reading mailboxes takes an admin key, or a read key limited to the account’s domain');
  const account = manages(actor, domainOf(a)) ? await store.directory.getAccount(a) : null;
  if (!account) throw new NotFoundError(`account ${a} does not exist`);
  return account;
}

export async function mailboxOf(store: Store, account: Account, name: string): Promise<Mailbox> {
  const mailbox = await store.mailboxes.get(account.id, name.toUpperCase() === 'INBOX' ? 'INBOX' : name);
  if (!mailbox) throw new NotFoundError(`mailbox ${JSON.stringify(name)} of ${account.address} does not exist`);
  return mailbox;
}

export interface MessageSummary {
  uid: number;
  flags: string[];
  size: number;
  internalDate: string;
  from: string | null;
  to: string | null;
  subject: string | null;
  date: string | null;
  messageId: string | null;
}

/** Messages newest first: those with a uid below `before`, at most `limit`; `next` is the cursor of the following page. */
export async function listMessages(
  store: Store,
  mailbox: Mailbox,
  page: { before?: number; limit: number },
): Promise<{ messages: MessageSummary[]; next: number | null }> {
  const uids = await store.mailboxes.uids(mailbox.id);
  let end = uids.length;
  if (page.before !== undefined) while (end > 0 && uids[end - 1]! >= page.before) end--;
  const chosen = uids.slice(Math.max(0, end - page.limit), end);
  const records = chosen.length ? await store.mailboxes.fetch(mailbox.id, chosen, { structure: true }) : [];
  const messages = records
    .sort((a, b) => b.uid - a.uid)
    .map((r) => {
      const headers = new Map<string, string>();
      if (r.structure)
        for (const [name, value] of parseStoredStructure(r.structure).headers) if (!headers.has(name.toLowerCase())) headers.set(name.toLowerCase(), value);
      const h = (name: string) => headers.get(name) ?? null;
      return {
        uid: r.uid,
        flags: r.flags,
        size: r.size,
        internalDate: new Date(r.internalDate).toISOString(),
        from: h('from'),
        to: h('to'),
        subject: h('subject'),
        date: h('date'),
        messageId: h('message-id'),
      };
    });
  return { messages, next: end - chosen.length > 0 && chosen.length > 0 ? chosen[0]! : null };
}

/** The stored message (id and record) of `uid`. */
export async function messageAt(store: Store, mailbox: Mailbox, uid: number) {
  const [record] = await store.mailboxes.fetch(mailbox.id, [uid], {});
  if (!record) throw new NotFoundError(`message ${uid} in ${mailbox.name} does not exist`);
  return record;
}

export async function parseMessage(store: Store, messageId: number): Promise<ParsedMail> {
  const chunks: Buffer[] = [];
  for await (const c of store.mailboxes.read(messageId)) chunks.push(c);
  const { simpleParser } = await import('mailparser'); // loaded on the first read: most nodes never parse a message this way
  return simpleParser(Buffer.concat(chunks), { skipImageLinks: true, skipTextToHtml: true, skipTextLinks: true });
}

const addressText = (a: AddressObject | AddressObject[] | undefined) => (a === undefined ? null : (Array.isArray(a) ? a : [a]).map((x) => x.text).join(', '));
const addressList = (a: AddressObject | AddressObject[] | undefined) =>
  (a === undefined ? [] : Array.isArray(a) ? a : [a]).flatMap((x) => x.value.map((v) => ({ name: v.name, address: v.address ?? null })));

/** The message as JSON: its headers as sent, the main ones decoded, the text and HTML bodies and the attachments (without their content). */
export function parsedJson(m: ParsedMail) {
  return {
    headers: m.headerLines.map((h) => {
      const colon = h.line.indexOf(':');
      return { name: colon > 0 ? h.line.slice(0, colon) : h.key, value: colon > 0 ? h.line.slice(colon + 1).trim() : h.line };
    }),
    from: addressList(m.from),
    to: addressList(m.to),
    cc: addressList(m.cc),
    replyTo: addressList(m.replyTo),
    fromText: addressText(m.from),
    toText: addressText(m.to),
    subject: m.subject ?? null,
    date: m.date?.toISOString() ?? null,
    messageId: m.messageId ?? null,
    inReplyTo: m.inReplyTo ?? null,
    text: m.text ?? null,
    html: typeof m.html === 'string' ? m.html : null,
    attachments: m.attachments.map((a, index) => ({
      index,
      filename: a.filename ?? null,
      contentType: a.contentType,
      size: a.size,
      contentId: a.contentId ?? null,
      disposition: a.contentDisposition ?? null,
    })),
  };
}
