/**
 * One mailbox to and from an mbox file (mboxrd, see mail/mbox.ts): `importMbox` and
 * `exportMbox`, for `tern import-mbox` / `tern export-mbox`. Both stream: one message at a
 * time is held in memory. mbox keeps no uids (the From_ line's sender and date become the
 * envelope sender and the internal date), so imported messages get new uids; flags come
 * from the Status: and X-Status: fields mail readers write, and are not written on export.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { fsyncPath } from '../fsync.js';
import { once } from 'node:events';
import { UserError } from '../errors.js';
import { mboxEntry, mboxFlags, readMbox } from '../mail/mbox.js';
import { collect, type Store } from '../store/store.js';
import { accountOf, ImportBatcher, newSummary, quietProgress, type TransferProgress, type TransferSummary } from './transfer.js';

export async function importMbox(
  store: Store,
  o: { file: string; address: string; mailbox?: string },
  progress: TransferProgress = quietProgress,
): Promise<TransferSummary> {
  const account = await accountOf(store, o.address);
  const info = await stat(o.file).catch((err: NodeJS.ErrnoException) => {
    throw new UserError(`${o.file}: ${err.code === 'ENOENT' ? 'no such file' : `cannot read it (${err.code ?? err.message})`}`);
  });
  if (!info.isFile()) throw new UserError(`${o.file} is not a file`);
  const input = createReadStream(o.file, { highWaterMark: 128 * 1024 });
  // Opening errors (permissions) surface on the first read.
  const chunks = (async function* () {
    try {
      for await (const c of input) yield c as Buffer;
    } catch (err) {
      throw new UserError(`${o.file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  })();
  const name = o.mailbox ?? 'INBOX';
  const summary = newSummary(account.address);
  const ready = await store.mailboxes.prepareImport(account.id, name, { uidValidity: null });
  const batcher = new ImportBatcher(store, account, name, summary, progress);
  let n = 0;
  try {
    for await (const m of readMbox(chunks)) {
      n++;
      await batcher.add({
        chunks: (async function* () {
          yield m.data;
        })(),
        flags: mboxFlags(m.data),
        internalDate: m.date ?? new Date(),
        envelopeFrom: m.sender,
        source: `${o.file} message ${n}`,
      });
    }
  } catch (err) {
    if (err instanceof UserError) throw new UserError(`${o.file}: ${err.message}`);
    throw err;
  } finally {
    input.destroy();
  }
  await batcher.flush();
  summary.mailboxes.push({ name, messages: batcher.stored, uidValidity: ready.mailbox.uidValidity, keptUids: false });
  return summary;
}

export async function exportMbox(
  store: Store,
  o: { address: string; mailbox: string; file: string },
  progress: TransferProgress = quietProgress,
): Promise<TransferSummary> {
  const account = await accountOf(store, o.address);
  const mailbox = await store.mailboxes.get(account.id, o.mailbox);
  if (!mailbox) throw new UserError(`mailbox ${o.mailbox} of ${account.address} does not exist`);
  const out = createWriteStream(o.file, { flags: 'wx', mode: 0o600 });
  // once() rejects with the stream's error (EEXIST, EACCES) when opening fails.
  await once(out, 'open').catch((err: NodeJS.ErrnoException) => {
    throw new UserError(`${o.file}: ${err.code === 'EEXIST' ? 'the file exists' : `cannot write it (${err.code ?? err.message})`}`);
  });
  const summary = newSummary(account.address);
  const messages = await store.mailboxes.messages(mailbox.id);
  progress.total(messages.length);
  const failed: { error?: Error } = {};
  out.on('error', (err) => (failed.error = err));
  try {
    for (const m of messages) {
      const entry = mboxEntry(m.envelopeFrom, m.internalDate, await collect(store.mailboxes.read(m.id)));
      if (failed.error) throw failed.error;
      if (!out.write(entry)) await once(out, 'drain');
      summary.messages++;
      summary.bytes += m.size;
      progress.advance(m.size);
    }
    out.end();
    await once(out, 'close');
    if (failed.error) throw failed.error;
    await fsyncPath(o.file);
  } catch (err) {
    // No half-written mbox is left under the name asked for.
    out.destroy();
    await rm(o.file, { force: true });
    const code = (err as NodeJS.ErrnoException).code;
    throw code ? new UserError(`${o.file}: cannot write it (${code === 'ENOSPC' ? 'the disk is full' : code})`) : err;
  }
  summary.mailboxes.push({ name: mailbox.name, messages: messages.length, uidValidity: mailbox.uidValidity, keptUids: false });
  return summary;
}
