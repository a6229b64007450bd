/**
 * Maildir directories on disk: reading a Maildir++ tree (INBOX at the root, folders as
 * `.Name` beside it; Dovecot's dovecot-uidlist and dovecot-keywords in each) and writing one
 * the way the Maildir rules ask: each message into tmp/, fsync, then renamed into cur/ (or
 * new/), and the directory fsynced, so a reader never sees half a file and a crash loses
 * nothing that was reported written. The names and file formats are mail/maildir.ts.
 */
import { fsyncPath } from '../fsync.js';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chown, lstat, mkdir, open, readdir, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { UserError } from '../errors.js';
import {
  crlfToLf,
  flagsFromLetters,
  folderOfMailbox,
  formatKeywords,
  formatUidList,
  lettersFromFlags,
  lfToCrlf,
  mailboxOfFolder,
  parseKeywords,
  parseMaildirName,
  parseSubscriptions,
  parseUidList,
  uidOf,
  uniqueName,
  withSizes,
  type UidList,
} from './maildir.js';

export interface MaildirMessage {
  path: string;
  base: string;
  flags: string[];
  /** Info letters no flag stands for (a keyword letter missing from dovecot-keywords). */
  unknownLetters: string[];
  /** The file's mtime: Courier and Dovecot keep the received date (IMAP INTERNALDATE) there. */
  internalDate: Date;
  /** Its uid in dovecot-uidlist, when listed. */
  uid: number | null;
}

export interface MaildirFolder {
  /** Tern's mailbox name ('INBOX' for the root). */
  name: string;
  dir: string;
  uidList: UidList | null;
  /** Listed uids first, ascending; then the rest by file name (arrival order). */
  messages: MaildirMessage[];
}

const exists = (path: string) =>
  stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );

const readText = (path: string) => readFile(path, 'utf8').catch(() => null);

/** Whether `dir` holds a Maildir (cur/ or new/). */
export async function isMaildir(dir: string): Promise<boolean> {
  return (await exists(join(dir, 'cur'))) || (await exists(join(dir, 'new')));
}

async function readFolder(name: string, dir: string): Promise<MaildirFolder> {
  const uidList = parseUidList((await readText(join(dir, 'dovecot-uidlist'))) ?? '');
  const keywords = parseKeywords((await readText(join(dir, 'dovecot-keywords'))) ?? '');
  const messages: MaildirMessage[] = [];
  for (const sub of ['new', 'cur']) {
    const files = await readdir(join(dir, sub)).catch(() => [] as string[]);
    for (const file of files) {
      if (file.startsWith('.')) continue;
      const path = join(dir, sub, file);
      const info = await stat(path).catch(() => null);
      if (!info?.isFile()) continue;
      const parsed = parseMaildirName(file);
      const { flags, unknown } = sub === 'cur' ? flagsFromLetters(parsed.letters, keywords) : { flags: [], unknown: [] };
      messages.push({
        path,
        base: parsed.base,
        flags,
        unknownLetters: unknown,
        internalDate: info.mtime,
        uid: (uidList && uidOf(uidList, parsed.base)) ?? null,
      });
    }
  }
  messages.sort((a, b) => (a.uid ?? Infinity) - (b.uid ?? Infinity) || (a.base < b.base ? -1 : a.base > b.base ? 1 : 0));
  return { name, dir, uidList, messages };
}

/** Reads a Maildir++ tree: its folders (INBOX first) and subscriptions. UserError for a missing dir or one that is no Maildir. */
export async function readMaildirTree(root: string): Promise<{ folders: MaildirFolder[]; subscriptions: string[] }> {
  const info = await stat(root).catch(() => null);
  if (!info) throw new UserError(`${root}: no such directory`);
  if (!info.isDirectory()) throw new UserError(`${root} is not a directory`);
  const entries = await readdir(root).catch((err: NodeJS.ErrnoException) => {
    throw new UserError(`${root}: cannot read it (${err.code ?? err.message})`);
  });
  if (!(await isMaildir(root))) throw new UserError(`${root} is not a Maildir (it has no cur/ or new/)`);
  const folders = [await readFolder('INBOX', root)];
  for (const entry of entries.sort()) {
    const name = mailboxOfFolder(entry);
    if (!name || name === 'INBOX' || !(await isMaildir(join(root, entry)))) continue;
    folders.push(await readFolder(name, join(root, entry)));
  }
  const subscriptions = parseSubscriptions((await readText(join(root, 'subscriptions'))) ?? '');
  return { folders, subscriptions };
}

/** A message file's bytes with CRLF line ends, as Tern stores them (Maildir files have LF). */
export async function* messageChunks(path: string): AsyncGenerator<Buffer> {
  const convert = lfToCrlf();
  for await (const chunk of createReadStream(path, { highWaterMark: 128 * 1024 })) yield convert(chunk as Buffer);
}

/** Who owns what a delivery creates (when the server runs as root). */
export interface FileOwner {
  uid: number;
  gid: number;
}

/** Makes what is missing of `dir`/{cur,new,tmp}; each directory made is synced into its parent, so a crash after a delivery cannot lose it. */
async function makeMaildir(dir: string, owner?: FileOwner): Promise<void> {
  for (const sub of ['cur', 'new', 'tmp']) {
    const target = join(dir, sub);
    const created = await mkdir(target, { recursive: true, mode: 0o700 });
    if (!created) continue;
    const made = [created];
    for (const part of relative(created, target).split(sep).filter(Boolean)) made.push(join(made[made.length - 1]!, part));
    for (const path of made) {
      if (owner) await chown(path, owner.uid, owner.gid);
      await fsyncPath(dirname(path));
    }
  }
}

/**
 * Writes one message into `dir`'s tmp/, fsyncs it, sets its mtime to `internalDate` and
 * renames it into `sub` (new/ for delivered mail, cur/ with `letters` as its info). CRLF
 * line ends become LF. The directory is not fsynced here (see `fsyncPath` callers). Returns
 * the file's base name.
 */
export async function writeMessageFile(
  dir: string,
  sub: 'new' | 'cur',
  chunks: AsyncIterable<Buffer>,
  o: { internalDate: Date; letters?: string; owner?: FileOwner },
): Promise<string> {
  const name = uniqueName();
  const tmp = join(dir, 'tmp', name);
  const handle = await open(tmp, 'wx', 0o600);
  let size = 0;
  let vsize = 0;
  try {
    const convert = crlfToLf();
    const put = async (data: Buffer) => {
      if (data.length === 0) return;
      size += data.length;
      vsize += data.length;
      for (const byte of data) if (byte === 0x0a) vsize++;
      await handle.write(data);
    };
    for await (const chunk of chunks) await put(convert.convert(chunk));
    await put(convert.end());
    await handle.sync();
  } catch (err) {
    await handle.close();
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await handle.close();
  await utimes(tmp, o.internalDate, o.internalDate);
  if (o.owner) await chown(tmp, o.owner.uid, o.owner.gid);
  const base = withSizes(name, size, vsize);
  await rename(tmp, join(dir, sub, sub === 'cur' ? `${base}:2,${o.letters ?? ''}` : base));
  return base;
}

/** Delivers one message into a Maildir's new/ with the directory fsynced: durable when it returns (a delivery may then answer 250). */
export async function deliverToMaildir(dir: string, chunks: AsyncIterable<Buffer>, internalDate: Date, owner?: FileOwner): Promise<string> {
  await makeMaildir(dir, owner);
  // A user owns their Maildir; a server running as root does not write through a link they put there.
  for (const p of [dir, join(dir, 'tmp'), join(dir, 'new')])
    if ((await lstat(p)).isSymbolicLink()) throw new Error(`${p} is a symbolic link: not delivering through it`);
  const base = await writeMessageFile(dir, 'new', chunks, { internalDate, owner });
  await fsyncPath(join(dir, 'new'));
  return base;
}

/** Writes one folder of a Maildir++ tree: messages into cur/ with their flags, then dovecot-uidlist and dovecot-keywords. */
export class MaildirFolderWriter {
  private readonly keywordIndex = new Map<string, number>();
  private readonly entries: Array<{ uid: number; base: string }> = [];
  /** Keywords no letter was left for (Maildir has 26 per folder). */
  readonly leftOut = new Set<string>();

  private constructor(readonly dir: string) {}

  static async create(root: string, mailbox: string): Promise<MaildirFolderWriter> {
    const folder = folderOfMailbox(mailbox);
    const dir = folder ? join(root, folder) : root;
    await makeMaildir(dir);
    if (folder) await writeFile(join(dir, 'maildirfolder'), '');
    return new MaildirFolderWriter(dir);
  }

  async write(chunks: AsyncIterable<Buffer>, m: { uid: number; flags: string[]; internalDate: Date }): Promise<void> {
    for (const f of m.flags) {
      if (!f.startsWith('\\') && !this.keywordIndex.has(f) && this.keywordIndex.size < 26) this.keywordIndex.set(f, this.keywordIndex.size);
    }
    const { letters, leftOut } = lettersFromFlags(m.flags, this.keywordIndex);
    for (const k of leftOut) this.leftOut.add(k);
    const base = await writeMessageFile(this.dir, 'cur', chunks, { internalDate: m.internalDate, letters });
    this.entries.push({ uid: m.uid, base });
  }

  /** Writes dovecot-uidlist (so Dovecot keeps our UIDVALIDITY and uids) and dovecot-keywords, and fsyncs the folder. */
  async finish(uidValidity: number, nextUid: number): Promise<void> {
    const guid = randomBytes(16).toString('hex');
    await writeAtomically(join(this.dir, 'dovecot-uidlist'), formatUidList({ uidValidity, nextUid, guid, entries: this.entries }));
    if (this.keywordIndex.size > 0) await writeAtomically(join(this.dir, 'dovecot-keywords'), formatKeywords([...this.keywordIndex.keys()]));
    await fsyncPath(join(this.dir, 'cur'));
    await fsyncPath(this.dir);
  }
}

/** Writes a file through a temporary name and a rename, fsynced. */
export async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.tern-${process.pid}`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
}
