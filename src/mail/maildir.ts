/**
 * Maildir and Maildir++ as Courier and Dovecot keep them, as pure functions: file names
 * (`time.unique.host,S=size,W=vsize:2,FLAGS`), the `:2,` flag letters, Dovecot's
 * `dovecot-uidlist` (version 3) and `dovecot-keywords`, the `subscriptions` file, and
 * Maildir++ folder names (`.Archive.2024` is Tern's `Archive/2024`). Reading and writing
 * the directories is mail/maildir-files.ts.
 *
 * Folder names stay in modified UTF-7 (RFC 3501 5.1.3) as Dovecot writes them, which is
 * how Tern keeps mailbox names too (as IMAP clients send them); only the hierarchy
 * separator changes ('.' in Maildir++, '/' in Tern).
 */
import { hostname } from 'node:os';

/** Maildir info flags (letters in ASCII order) and the IMAP flags they stand for. */
const SYSTEM_LETTERS: ReadonlyArray<[string, string]> = [
  ['D', '\\Draft'],
  ['F', '\\Flagged'],
  ['R', '\\Answered'],
  ['S', '\\Seen'],
  ['T', '\\Deleted'],
];
/** "Passed" (resent, forwarded, bounced) has no IMAP system flag; it is the $Forwarded keyword (RFC 5788). */
const PASSED_KEYWORD = '$Forwarded';

export interface MaildirName {
  /** The name up to the info (`:2,…`); what dovecot-uidlist lists. */
  base: string;
  /** `,S=`: the file's size, when the name says. */
  size: number | null;
  /** `,W=`: the size with CRLF line ends (RFC822.SIZE), when the name says. */
  vsize: number | null;
  /** The info's flag letters (empty for a message in new/ or without info). */
  letters: string;
}

export function parseMaildirName(name: string): MaildirName {
  const colon = name.indexOf(':');
  const base = colon < 0 ? name : name.slice(0, colon);
  const info = colon < 0 ? '' : name.slice(colon + 1);
  const letters = info.startsWith('2,') ? info.slice(2) : '';
  const field = (key: string): number | null => {
    const m = new RegExp(`,${key}=(\\d+)`).exec(base);
    return m ? Number(m[1]) : null;
  };
  return { base, size: field('S'), vsize: field('W'), letters };
}

/** IMAP flags from `:2,` letters; lower-case letters are keywords by their index in the folder's dovecot-keywords. */
export function flagsFromLetters(letters: string, keywords: ReadonlyArray<string | undefined>): { flags: string[]; unknown: string[] } {
  const flags = new Set<string>();
  const unknown: string[] = [];
  for (const letter of letters) {
    const system = SYSTEM_LETTERS.find(([l]) => l === letter);
    if (system) flags.add(system[1]);
    else if (letter === 'P') flags.add(PASSED_KEYWORD);
    else if (letter >= 'a' && letter <= 'z' && keywords[letter.charCodeAt(0) - 97]) flags.add(keywords[letter.charCodeAt(0) - 97]!);
    else unknown.push(letter);
  }
  return { flags: [...flags], unknown };
}

/** `:2,` letters for IMAP flags, in ASCII order; keywords get their letter from `keywordIndex` (at most 26 per folder), others are returned as left out. */
export function lettersFromFlags(flags: string[], keywordIndex: Map<string, number>): { letters: string; leftOut: string[] } {
  const out: string[] = [];
  const leftOut: string[] = [];
  for (const f of flags) {
    const system = SYSTEM_LETTERS.find(([, flag]) => flag.toLowerCase() === f.toLowerCase());
    if (system) out.push(system[0]);
    else if (f.toLowerCase() === '\\recent') continue;
    else {
      const i = keywordIndex.get(f);
      if (i !== undefined && i < 26) out.push(String.fromCharCode(97 + i));
      else leftOut.push(f);
    }
  }
  return { letters: [...new Set(out)].sort().join(''), leftOut };
}

/** `dovecot-keywords`: lines of "index name"; the result is indexed by the keyword's number (its letter a–z). */
export function parseKeywords(text: string): Array<string | undefined> {
  const out: Array<string | undefined> = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+) (.+)$/.exec(line.trimEnd());
    if (m && Number(m[1]) < 26) out[Number(m[1])] = m[2];
  }
  return out;
}

export function formatKeywords(names: string[]): string {
  return names.map((n, i) => `${i} ${n}\n`).join('');
}

export interface UidList {
  uidValidity: number;
  nextUid: number;
  /** The mailbox GUID (`G`), 32 hex digits, when given. */
  guid: string | null;
  /** Uid by file base name. */
  uids: Map<string, number>;
}

/**
 * `dovecot-uidlist`, version 3 (Dovecot 1.0 and later): a header `3 V<uidvalidity>
 * N<nextuid> [G<guid>] …`, then one line per message: `<uid> [<key><value> …] :<base>`.
 * Version 1 (`1 <uidvalidity> <nextuid>`, lines `<uid> <base>`) is read too. Null when the
 * header is not one of those.
 */
export function parseUidList(text: string): UidList | null {
  const lines = text.split('\n');
  const header = lines[0]!.trim().split(' ');
  let list: UidList;
  if (header[0] === '3') {
    const field = (key: string) => header.find((h) => h.startsWith(key))?.slice(1);
    list = { uidValidity: Number(field('V')), nextUid: Number(field('N')), guid: field('G') ?? null, uids: new Map() };
  } else if (header[0] === '1' && header.length >= 3) {
    list = { uidValidity: Number(header[1]), nextUid: Number(header[2]), guid: null, uids: new Map() };
  } else return null;
  if (!Number.isInteger(list.uidValidity) || !Number.isInteger(list.nextUid)) return null;
  for (const line of lines.slice(1)) {
    if (!line) continue;
    const m = header[0] === '3' ? /^(\d+)(?: [^:]*)? :(.+)$/.exec(line) : /^(\d+) (.+)$/.exec(line);
    if (!m) continue;
    const base = m[2]!;
    list.uids.set(base.includes(':') ? base.slice(0, base.indexOf(':')) : base, Number(m[1]));
  }
  return list;
}

export function formatUidList(list: { uidValidity: number; nextUid: number; guid: string; entries: Array<{ uid: number; base: string }> }): string {
  const lines = [...list.entries].sort((a, b) => a.uid - b.uid).map((e) => `${e.uid} :${e.base}\n`);
  return `3 V${list.uidValidity} N${list.nextUid} G${list.guid}\n${lines.join('')}`;
}

/** Looks a file's uid up: by its base name, else by the base without the `,S=…` fields (older lists name files before they got them). */
export function uidOf(list: UidList, base: string): number | undefined {
  return list.uids.get(base) ?? list.uids.get(base.split(',')[0]!);
}

/** Tern's mailbox name for a Maildir++ folder directory (`.Archive.2024` → `Archive/2024`); null for what is no folder. */
export function mailboxOfFolder(dirName: string): string | null {
  if (!dirName.startsWith('.') || dirName === '.' || dirName === '..' || dirName.length < 2) return null;
  const parts = dirName.slice(1).split('.');
  if (parts.some((p) => p === '')) return null;
  const name = parts.join('/');
  return name.toUpperCase() === 'INBOX' ? 'INBOX' : name;
}

/** The Maildir++ folder directory of a Tern mailbox (`Archive/2024` → `.Archive.2024`); null for INBOX, the root. */
export function folderOfMailbox(name: string): string | null {
  if (name.toUpperCase() === 'INBOX') return null;
  return `.${name.split('/').join('.')}`;
}

/** Whether a mailbox name survives Maildir++ (a '.' inside a name would become a level). */
export const fitsMaildirPlusPlus = (name: string): boolean => !name.split('/').some((p) => p.includes('.') || p === '');

/**
 * The `subscriptions` file: Dovecot 2.3 writes `V\t2` then a blank line, then names with
 * their levels separated by tabs; older files list one name a line with the folder
 * separator ('.'). Returns Tern names.
 */
export function parseSubscriptions(text: string): string[] {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  if (lines[0] === 'V\t2')
    return lines
      .slice(1)
      .filter(Boolean)
      .map((l) => l.split('\t').join('/'));
  return lines.filter(Boolean).map((l) => (l.toUpperCase() === 'INBOX' ? 'INBOX' : l.split('.').join('/')));
}

export function formatSubscriptions(names: string[]): string {
  return `V\t2\n\n${names.map((n) => `${n.split('/').join('\t')}\n`).join('')}`;
}

let counter = 0;
const host = hostname().replace(/\//g, '\\057').replace(/:/g, '\\072').replace(/,/g, '\\054') || 'localhost';

/**
 * A file name unique per the Maildir rules: seconds, then `M` microseconds, `P` process id
 * and `Q` a per-process counter (as Dovecot does), then the host name with '/', ':' and ','
 * escaped. Sizes go in with `withSizes` once the file is written.
 */
export function uniqueName(now = Date.now()): string {
  const micros = Math.floor((performance.now() % 1000) * 1000);
  return `${Math.floor(now / 1000)}.M${micros}P${process.pid}Q${++counter}.${host}`;
}

export const withSizes = (name: string, size: number, vsize: number): string => `${name},S=${size},W=${vsize}`;

/** Streaming line-end conversion: bare LF → CRLF (Maildir files into Tern), tracking a CR that ends a chunk. */
export function lfToCrlf(): (chunk: Buffer) => Buffer {
  let lastCr = false;
  return (chunk) => {
    let start = 0;
    const parts: Buffer[] = [];
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] === 0x0a && !(i === 0 ? lastCr : chunk[i - 1] === 0x0d)) {
        parts.push(chunk.subarray(start, i), CR);
        start = i;
      }
    }
    if (chunk.length > 0) lastCr = chunk[chunk.length - 1] === 0x0d;
    parts.push(chunk.subarray(start));
    return parts.length === 1 ? chunk : Buffer.concat(parts);
  };
}

/** Streaming CRLF → LF (Tern's messages into Maildir and mbox files); a CR not followed by LF stays. */
export function crlfToLf(): { convert(chunk: Buffer): Buffer; end(): Buffer } {
  let pendingCr = false;
  return {
    convert(chunk) {
      const parts: Buffer[] = [];
      let start = 0;
      if (pendingCr) {
        if (chunk[0] !== 0x0a) parts.push(CR);
        pendingCr = false;
      }
      for (let i = 0; i < chunk.length; i++) {
        if (chunk[i] !== 0x0d) continue;
        if (i + 1 === chunk.length) {
          parts.push(chunk.subarray(start, i));
          start = i + 1;
          pendingCr = true;
        } else if (chunk[i + 1] === 0x0a) {
          parts.push(chunk.subarray(start, i));
          start = i + 1;
        }
      }
      parts.push(chunk.subarray(start));
      return Buffer.concat(parts);
    },
    end() {
      const out = pendingCr ? CR : Buffer.alloc(0);
      pendingCr = false;
      return out;
    },
  };
}

const CR = Buffer.from('\r');
