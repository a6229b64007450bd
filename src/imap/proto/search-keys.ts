/**
 * SEARCH criteria (RFC 3501 6.4.4, RFC 7162 MODSEQ) into a tree of typed keys. Pure.
 * CHARSET may be US-ASCII or UTF-8 (strings are read as UTF-8 either way).
 */
import { ArgReader, BadArgs, parseNumber, parseSearchDate } from './args.js';
import type { Token } from './command-reader.js';
import { parseSequenceSet, type SequenceSet } from './sequence-set.js';

export type SearchKey =
  | { op: 'all' }
  | { op: 'and'; keys: SearchKey[] }
  | { op: 'or'; a: SearchKey; b: SearchKey }
  | { op: 'not'; key: SearchKey }
  | { op: 'seq' | 'uid'; set: SequenceSet }
  /** A system flag or keyword that must be set (`set`) or not. */
  | { op: 'flag'; flag: string; set: boolean }
  | { op: 'recent' | 'new' | 'old' }
  /** A header field containing `value` (case-insensitive); an empty value asks only that the field exists. */
  | { op: 'header'; field: string; value: string }
  | { op: 'body' | 'text'; value: string }
  | { op: 'date'; field: 'internal' | 'sent'; cmp: 'before' | 'on' | 'since'; day: number }
  | { op: 'size'; cmp: 'larger' | 'smaller'; n: number }
  | { op: 'modseq'; n: number };

const FLAG_KEYS: Record<string, [string, boolean]> = {
  ANSWERED: ['\\Answered', true],
  DELETED: ['\\Deleted', true],
  DRAFT: ['\\Draft', true],
  FLAGGED: ['\\Flagged', true],
  SEEN: ['\\Seen', true],
  UNANSWERED: ['\\Answered', false],
  UNDELETED: ['\\Deleted', false],
  UNDRAFT: ['\\Draft', false],
  UNFLAGGED: ['\\Flagged', false],
  UNSEEN: ['\\Seen', false],
};
const HEADER_KEYS = new Set(['FROM', 'TO', 'CC', 'BCC', 'SUBJECT']);
const DATE_KEYS: Record<string, ['internal' | 'sent', 'before' | 'on' | 'since']> = {
  BEFORE: ['internal', 'before'],
  ON: ['internal', 'on'],
  SINCE: ['internal', 'since'],
  SENTBEFORE: ['sent', 'before'],
  SENTON: ['sent', 'on'],
  SENTSINCE: ['sent', 'since'],
};
const MAX_DEPTH = 32;

/** Parses everything after SEARCH (with its optional CHARSET). */
export function parseSearch(tokens: Token[]): SearchKey {
  const args = new ArgReader(tokens);
  const first = args.peek();
  if (first?.type === 'atom' && first.value.toUpperCase() === 'CHARSET') {
    args.token('CHARSET');
    const charset = args.astring('charset').toUpperCase();
    if (charset !== 'UTF-8' && charset !== 'US-ASCII') throw new UnsupportedCharset(charset);
  }
  const keys: SearchKey[] = [];
  while (!args.done) keys.push(parseKey(args, 0));
  if (keys.length === 0) throw new BadArgs('Missing search criteria');
  return keys.length === 1 ? keys[0]! : { op: 'and', keys };
}

/** A CHARSET other than UTF-8/US-ASCII: answered NO [BADCHARSET (UTF-8 US-ASCII)]. */
export class UnsupportedCharset extends Error {}

function parseKey(args: ArgReader, depth: number): SearchKey {
  if (depth > MAX_DEPTH) throw new BadArgs('Search criteria too deeply nested');
  const t = args.token('search key');
  if (t.type === 'list') {
    if (t.items.length === 0) throw new BadArgs('Empty search key list');
    const inner = new ArgReader(t.items);
    const keys: SearchKey[] = [];
    while (!inner.done) keys.push(parseKey(inner, depth + 1));
    return keys.length === 1 ? keys[0]! : { op: 'and', keys };
  }
  if (t.type !== 'atom') throw new BadArgs('Expected a search key');
  const name = t.value.toUpperCase();
  const flag = FLAG_KEYS[name];
  if (flag) return { op: 'flag', flag: flag[0], set: flag[1] };
  if (HEADER_KEYS.has(name)) return { op: 'header', field: name.toLowerCase(), value: args.astring(`${name} value`) };
  const date = DATE_KEYS[name];
  if (date) return { op: 'date', field: date[0], cmp: date[1], day: parseSearchDate(args.astring('date')).getTime() };
  switch (name) {
    case 'ALL':
      return { op: 'all' };
    case 'RECENT':
      return { op: 'recent' };
    case 'NEW':
      return { op: 'new' };
    case 'OLD':
      return { op: 'old' };
    case 'KEYWORD':
    case 'UNKEYWORD':
      return { op: 'flag', flag: args.atom('keyword'), set: name === 'KEYWORD' };
    case 'HEADER':
      return { op: 'header', field: args.astring('header field').toLowerCase(), value: args.astring('header value') };
    case 'BODY':
    case 'TEXT':
      return { op: name === 'BODY' ? 'body' : 'text', value: args.astring(`${name} value`) };
    case 'LARGER':
    case 'SMALLER':
      return { op: 'size', cmp: name === 'LARGER' ? 'larger' : 'smaller', n: args.number('size') };
    case 'UID':
      return { op: 'uid', set: parseSequenceSet(args.atom('uid set')) };
    case 'NOT':
      return { op: 'not', key: parseKey(args, depth + 1) };
    case 'OR':
      return { op: 'or', a: parseKey(args, depth + 1), b: parseKey(args, depth + 1) };
    case 'MODSEQ': {
      // MODSEQ [entry-name entry-type] n: the entry is accepted and ignored (RFC 7162 3.1.5).
      const a = args.astring('mod-sequence');
      if (/^\d+$/.test(a)) return { op: 'modseq', n: parseNumber(a, 'mod-sequence') };
      args.atom('entry type');
      return { op: 'modseq', n: args.number('mod-sequence') };
    }
    default:
      if (/^[\d*]/.test(name)) return { op: 'seq', set: parseSequenceSet(t.value) };
      throw new BadArgs(`Unknown search key ${t.value.slice(0, 40)}`);
  }
}

/** Whether the criteria mention MODSEQ (the answer then carries the highest mod-sequence). */
export function usesModseq(key: SearchKey): boolean {
  switch (key.op) {
    case 'modseq':
      return true;
    case 'and':
      return key.keys.some(usesModseq);
    case 'or':
      return usesModseq(key.a) || usesModseq(key.b);
    case 'not':
      return usesModseq(key.key);
    default:
      return false;
  }
}

/** What evaluating the criteria needs besides flags and dates: headers, the body text, or the Date header. */
export function searchNeeds(key: SearchKey): { headers: boolean; text: boolean } {
  const out = { headers: false, text: false };
  const walk = (k: SearchKey): void => {
    if (k.op === 'header' || (k.op === 'date' && k.field === 'sent')) out.headers = true;
    else if (k.op === 'body') out.text = true;
    else if (k.op === 'text') out.text = out.headers = true;
    else if (k.op === 'and') k.keys.forEach(walk);
    else if (k.op === 'or') {
      walk(k.a);
      walk(k.b);
    } else if (k.op === 'not') walk(k.key);
  };
  walk(key);
  return out;
}
