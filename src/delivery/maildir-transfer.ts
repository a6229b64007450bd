/**
 * One account's mail to and from a Maildir++ tree (Courier, Dovecot): `importMaildir` and
 * `exportMaildir`, called by `tern import-maildir` / `tern export-maildir` and meant to be
 * called once per user by a site import.
 *
 * Import keeps each folder's UIDVALIDITY and uids from dovecot-uidlist when the Tern
 * mailbox is new or empty (messages the list does not name get uids from its next uid on);
 * otherwise the messages are appended with new uids and a note says so. Export writes
 * dovecot-uidlist and dovecot-keywords, so Dovecot serves the same UIDVALIDITY, uids and
 * keywords Tern did.
 */
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { fitsMaildirPlusPlus, formatSubscriptions } from '../mail/maildir.js';
import { MaildirFolderWriter, messageChunks, readMaildirTree, writeAtomically } from '../mail/maildir-files.js';
import { DEFAULT_MAILBOXES, type Store } from '../store/store.js';
import { accountOf, ImportBatcher, newSummary, quietProgress, type TransferProgress, type TransferSummary } from './transfer.js';

export async function importMaildir(store: Store, o: { dir: string; address: string }, progress: TransferProgress = quietProgress): Promise<TransferSummary> {
  const account = await accountOf(store, o.address);
  const tree = await readMaildirTree(o.dir);
  const summary = newSummary(account.address);
  progress.total(tree.folders.reduce((n, f) => n + f.messages.length, 0));
  for (const folder of tree.folders) {
    const list = folder.uidList;
    const listed = folder.messages.flatMap((m) => (m.uid === null ? [] : [m.uid]));
    const specialUse = DEFAULT_MAILBOXES.find((d) => d.name === folder.name)?.specialUse ?? null;
    const ready = await store.mailboxes.prepareImport(account.id, folder.name, {
      uidValidity: list?.uidValidity ?? null,
      lowestUid: listed.length > 0 ? listed.reduce((a, b) => Math.min(a, b)) : list?.nextUid,
      specialUse,
    });
    if (list && !ready.keepUids) {
      const why = ready.mailbox.messages > 0 ? 'the mailbox already has messages' : 'its uids or UIDVALIDITY cannot be kept';
      summary.notes.push(`${folder.name}: ${why}; imported messages get new uids`);
      progress.note(summary.notes[summary.notes.length - 1]!);
    }
    // Messages the list does not name get uids after the list's next uid, as Dovecot would give them.
    let nextUid = listed.reduce((n, u) => Math.max(n, u + 1), list?.nextUid ?? 1);
    const batcher = new ImportBatcher(store, account, folder.name, summary, progress);
    for (const m of folder.messages) {
      if (m.unknownLetters.length > 0) summary.notes.push(`${m.path}: flag letters without a keyword left out: ${m.unknownLetters.join('')}`);
      const uid = ready.keepUids ? (m.uid ?? nextUid++) : undefined;
      await batcher.add({ chunks: messageChunks(m.path), flags: m.flags, internalDate: m.internalDate, envelopeFrom: '', uid, source: m.path });
    }
    await batcher.flush();
    const mailbox = ready.keepUids ? await store.mailboxes.finishImport(ready.mailbox.id, nextUid) : ready.mailbox;
    summary.mailboxes.push({ name: folder.name, messages: batcher.stored, uidValidity: mailbox.uidValidity, keptUids: ready.keepUids });
  }
  for (const name of tree.subscriptions) if (name !== 'INBOX') await store.mailboxes.subscribe(account.id, name);
  return summary;
}

export async function exportMaildir(store: Store, o: { address: string; dir: string }, progress: TransferProgress = quietProgress): Promise<TransferSummary> {
  const account = await accountOf(store, o.address);
  const existing = await readdir(o.dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw new UserError(`${o.dir}: cannot use it (${err.code ?? err.message})`);
  });
  if (existing.length > 0) throw new UserError(`${o.dir} is not empty; export into a new directory`);
  await mkdir(o.dir, { recursive: true, mode: 0o700 });
  const summary = newSummary(account.address);
  const mailboxes = await store.mailboxes.list(account.id);
  progress.total(mailboxes.reduce((n, m) => n + m.messages, 0));
  for (const mailbox of mailboxes) {
    if (!fitsMaildirPlusPlus(mailbox.name)) {
      summary.notes.push(`${mailbox.name}: a '.' in its name becomes a level of the Maildir++ hierarchy`);
      progress.note(summary.notes[summary.notes.length - 1]!);
    }
    const writer = await MaildirFolderWriter.create(o.dir, mailbox.name);
    const messages = await store.mailboxes.messages(mailbox.id);
    for (const m of messages) {
      await writer.write(store.mailboxes.read(m.id), m);
      summary.messages++;
      summary.bytes += m.size;
      progress.advance(m.size);
    }
    await writer.finish(mailbox.uidValidity, mailbox.uidNext);
    if (writer.leftOut.size > 0) {
      summary.notes.push(`${mailbox.name}: keywords beyond Maildir's 26 per folder left out: ${[...writer.leftOut].join(' ')}`);
      progress.note(summary.notes[summary.notes.length - 1]!);
    }
    summary.mailboxes.push({ name: mailbox.name, messages: messages.length, uidValidity: mailbox.uidValidity, keptUids: true });
  }
  const subscribed = (await store.mailboxes.subscriptions(account.id)).filter((n) => n !== 'INBOX');
  await writeAtomically(join(o.dir, 'subscriptions'), formatSubscriptions(subscribed));
  return summary;
}
