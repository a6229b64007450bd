/**
 * Random arguments of IMAP commands, valid by RFC 3501 and its extensions: strings as
 * atoms, quoted strings or literals (synchronizing or LITERAL+), sequence and uid sets
 * with `*`, `n:*` and `*:n`, flag lists, FETCH items with sections and partials, SEARCH
 * keys nested with OR, NOT and parentheses, dates.
 */
import type { Prng } from '../../fuzz/prng.js';
import type { Part } from './segments.js';

const ATOM = /^[^\x00-\x20\x7f-\uffff(){%*"\\\]]+$/;
const QUOTABLE = /^[\x01-\x09\x0b\x0c\x0e-\x7f]*$/;

/** An astring: an atom when possible, else a quoted string, else (or sometimes anyway) a literal. */
export function astring(r: Prng, value: string, literalChance = 0.1): Part {
  const bytes = Buffer.from(value, 'utf8');
  if (r.chance(literalChance) || !QUOTABLE.test(value)) return { literal: bytes, sync: r.chance(0.5) };
  if (ATOM.test(value) && r.chance(0.6)) return value;
  return `"${value.replace(/[\\"]/g, '\\$&')}"`;
}

/** A string (never an atom): quoted or a literal. */
export function imapString(r: Prng, value: string, literalChance = 0.1): Part {
  if (r.chance(literalChance) || !QUOTABLE.test(value)) return { literal: Buffer.from(value, 'utf8'), sync: r.chance(0.5) };
  return `"${value.replace(/[\\"]/g, '\\$&')}"`;
}

const numberIn = (r: Prng, lo: number, hi: number) => (hi < lo ? lo : r.int(lo, hi));

/**
 * A sequence set. `largest` is the message count (or highest uid, for uid sets); null when
 * unknown, which leaves only forms valid in any mailbox. Sequence numbers stay in range.
 */
export function sequenceSet(r: Prng, largest: number | null, uid: boolean): string {
  if (largest === null || largest === 0) {
    if (!uid) return r.pick(['1:*', '*']);
    largest = 20;
  }
  const top = uid ? largest + 3 : largest;
  const one = (): string =>
    r.weighted<() => string>([
      [4, () => String(numberIn(r, 1, top))],
      [3, () => `${numberIn(r, 1, top)}:${numberIn(r, 1, top)}`],
      [2, () => `${numberIn(r, 1, top)}:*`],
      [1, () => `*:${numberIn(r, 1, top)}`],
      [1, () => '*'],
      [2, () => '1:*'],
    ])();
  const n = r.weighted([
    [6, 1],
    [2, 2],
    [1, 4],
  ]);
  return Array.from({ length: n }, one).join(',');
}

export const SYSTEM_FLAGS = ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'];

export function flagList(r: Prng, opts: { deleted: boolean } = { deleted: true }): string[] {
  const choices = [...SYSTEM_FLAGS.filter((f) => opts.deleted || f !== '\\Deleted'), '$Forwarded', '$Junk', `$k${r.text(3)}`, 'custom_kw', '\\Recent'];
  const n = r.weighted([
    [1, 0],
    [5, 1],
    [3, 2],
    [1, 4],
  ]);
  return [...new Set(Array.from({ length: n }, () => r.pick(choices)))];
}

const SECTIONS = [
  '',
  'HEADER',
  'TEXT',
  'HEADER.FIELDS (FROM TO)',
  'HEADER.FIELDS (Subject)',
  'HEADER.FIELDS ("Date" MESSAGE-ID)',
  'HEADER.FIELDS.NOT (SUBJECT DATE)',
  'header.fields (from)',
  '1',
  '2',
  '1.1',
  '1.2',
  '2.1',
  '1.MIME',
  '2.MIME',
  '1.HEADER',
  '2.HEADER',
  '2.TEXT',
  '1.2.3',
  '3.HEADER.FIELDS (CONTENT-TYPE)',
  '9',
];

export function fetchItems(r: Prng): string {
  const macro = r.weighted<string | null>([
    [1, 'ALL'],
    [1, 'FAST'],
    [1, 'FULL'],
    [12, null],
  ]);
  if (macro) return macro;
  const item = (): string =>
    r.weighted<() => string>([
      [6, () => r.pick(['FLAGS', 'UID', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODYSTRUCTURE', 'BODY', 'MODSEQ', 'uid', 'flags'])],
      [2, () => r.pick(['RFC822', 'RFC822.HEADER', 'RFC822.TEXT'])],
      [
        5,
        () => {
          const name = r.pick(['BODY', 'BODY.PEEK', 'BODY.PEEK', 'body.peek']);
          const partial = r.chance(0.3) ? `<${r.pick([0, 0, 1, 5, 100, 100_000])}.${r.pick([1, 10, 100, 5000, 1_000_000])}>` : '';
          return `${name}[${r.pick(SECTIONS)}]${partial}`;
        },
      ],
    ])();
  const n = r.weighted([
    [3, 1],
    [4, 2],
    [2, 4],
    [1, 7],
  ]);
  const items = Array.from({ length: n }, item);
  return n === 1 && r.chance(0.5) && !items[0]!.includes(' ') ? items[0]! : `(${items.join(' ')})`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

export function searchDate(r: Prng): string {
  return `${r.int(1, 28)}-${r.pick(MONTHS)}-${r.int(1990, 2035)}`;
}

/** An APPEND date-time: "17-Jul-1996 02:44:25 -0700" (day padded with a space or a zero). */
export function dateTime(r: Prng): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const day = r.int(1, 28);
  const dayText = day < 10 ? r.pick([` ${day}`, pad(day)]) : String(day);
  return `"${dayText}-${r.pick(MONTHS)}-${r.int(1990, 2035)} ${pad(r.int(0, 23))}:${pad(r.int(0, 59))}:${pad(r.int(0, 59))} ${r.pick(['+0000', '-0700', '+1245'])}"`;
}

const SEARCH_TEXT = ['fuzz', 'hello', 'tern', 'alice', 'example', 'Grüße', '日本', 'x', ''];

/** SEARCH criteria (with OR, NOT and parenthesized lists down to `depth`). */
export function searchKey(r: Prng, depth: number, largest: number | null): Part[] {
  const text = () => r.pick(SEARCH_TEXT);
  const str = (v: string) => astring(r, v, /[^\x00-\x7f]/.test(v) ? 1 : 0.1);
  const choice = r.weighted<() => Part[]>([
    [6, () => [r.pick(['ALL', 'ANSWERED', 'DELETED', 'FLAGGED', 'SEEN', 'UNSEEN', 'NEW', 'OLD', 'RECENT', 'DRAFT', 'UNDRAFT', 'UNDELETED', 'unseen'])]],
    [2, () => [`${r.pick(['KEYWORD', 'UNKEYWORD'])} ${r.pick(['$Forwarded', '$Junk', 'custom_kw'])}`]],
    [4, () => [`${r.pick(['FROM', 'TO', 'CC', 'BCC', 'SUBJECT', 'BODY', 'TEXT'])} `, str(text())]],
    [2, () => ['HEADER ', str(r.pick(['Message-ID', 'X-Folded', 'Content-Type', 'received'])), ' ', str(text())]],
    [2, () => [`${r.pick(['LARGER', 'SMALLER'])} ${r.pick([0, 100, 5000, 4294967295])}`]],
    [2, () => [`${r.pick(['BEFORE', 'ON', 'SINCE', 'SENTBEFORE', 'SENTON', 'SENTSINCE'])} ${r.chance(0.7) ? searchDate(r) : `"${searchDate(r)}"`}`]],
    [2, () => [`UID ${sequenceSet(r, null, true)}`]],
    [1, () => [sequenceSet(r, largest, false)]],
    [1, () => [`MODSEQ ${r.chance(0.3) ? '"/flags/\\\\seen" all ' : ''}${r.int(1, 1000)}`]],
    [depth > 0 ? 2 : 0, () => ['NOT ', ...searchKey(r, depth - 1, largest)]],
    [depth > 0 ? 2 : 0, () => ['OR ', ...searchKey(r, depth - 1, largest), ' ', ...searchKey(r, depth - 1, largest)]],
    [
      depth > 0 ? 2 : 0,
      () => {
        const inner: Part[] = ['('];
        for (let i = r.int(1, 3); i > 0; i--) inner.push(...searchKey(r, depth - 1, largest), i > 1 ? ' ' : '');
        return [...inner, ')'];
      },
    ],
  ]);
  return choice();
}

/** A LIST command's arguments after "LIST " (selection options, reference, patterns, return options). */
export function listArguments(r: Prng, root: string): Part[] {
  const parts: Part[] = [];
  const selection = r.weighted<string | null>([
    [6, null],
    [1, '(SUBSCRIBED)'],
    [1, '(SPECIAL-USE)'],
    [1, '(SUBSCRIBED RECURSIVEMATCH)'],
    [1, '()'],
    [1, '(REMOTE)'],
  ]);
  if (selection) parts.push(`${selection} `);
  const reference = r.weighted<string>([
    [6, ''],
    [1, root],
    [1, `${root}/`],
  ]);
  parts.push(imapString(r, reference), ' ');
  const pattern = () => r.pick([`${root}*`, `${root}/%`, `${root}%`, `${root}/*`, 'INBOX', 'inbox', '%', '*', `${root}`, 'c%/x', '']);
  if (r.chance(0.15)) parts.push(`(${[pattern(), pattern()].map((p) => `"${p}"`).join(' ')})`);
  else parts.push(astring(r, reference ? r.pick(['%', '*', 'sub']) : pattern()));
  if (r.chance(0.25)) {
    const returns = r.pick([
      'CHILDREN',
      'SUBSCRIBED',
      'SPECIAL-USE',
      'STATUS (MESSAGES UIDNEXT)',
      'STATUS (UNSEEN SIZE HIGHESTMODSEQ)',
      'CHILDREN STATUS (RECENT)',
    ]);
    parts.push(` RETURN (${returns})`);
  }
  return parts;
}

export function statusItems(r: Prng): string {
  const all = ['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'HIGHESTMODSEQ', 'SIZE'];
  const n = r.int(1, all.length);
  const items = new Set<string>();
  for (let i = 0; i < n; i++) items.add(r.pick(all));
  return `(${[...items].join(' ')})`;
}
