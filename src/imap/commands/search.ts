/**
 * SEARCH and UID SEARCH (RFC 3501 6.4.4; CHARSET UTF-8; CONDSTORE MODSEQ). Criteria are
 * evaluated page by page over the stored flags, dates, sizes, the header fields and the
 * decoded text kept at delivery (mail/mime), so TEXT and BODY match decoded content
 * (quoted-printable, base64, charsets) without re-parsing a message.
 */
import { parseStoredStructure, type MessageStructure } from '../../mail/mime/index.js';
import type { MessageRecord } from '../../store/store.js';
import { ImapNo } from '../errors.js';
import { inSet } from '../proto/sequence-set.js';
import { parseSearch, searchNeeds, UnsupportedCharset, usesModseq, type SearchKey } from '../proto/search-keys.js';
import type { SelectedMailbox } from '../selected.js';
import type { ImapSession } from '../session.js';
import { SELECTED, selectedOf, type Command } from './context.js';
import { structureOf } from './fetch.js';

const PAGE = 500;
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

interface Candidate {
  rec: MessageRecord;
  seq: number;
  structure: MessageStructure | null;
  /** Header fields: the stored top-level ones plus the trace lines before the body, lower-case names. */
  headers: Array<[string, string]> | null;
}

/** The day (UTC midnight, ms) a Date header names, disregarding time and zone (RFC 3501 SENT*); null when unreadable. */
export function sentDay(date: string | null): number | null {
  if (!date) return null;
  const m = /(\d{1,2})\s+([a-z]{3})[a-z]*\s+(\d{2,4})/i.exec(date);
  if (!m) return null;
  const month = MONTHS.indexOf(m[2]!.toLowerCase());
  if (month < 0) return null;
  let year = Number(m[3]);
  if (m[3]!.length === 2) year += year < 50 ? 2000 : 1900;
  return Date.UTC(year, month, Number(m[1]));
}

function utcDay(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
}

function compareDay(day: number, cmp: 'before' | 'on' | 'since', wanted: number): boolean {
  return cmp === 'before' ? day < wanted : cmp === 'on' ? day === wanted : day >= wanted;
}

/** Trace header lines (Return-Path, Received…) stored before the body, unfolded. */
function prefixFields(prefix: Buffer | undefined): Array<[string, string]> {
  if (!prefix || prefix.length === 0) return [];
  const out: Array<[string, string]> = [];
  for (const line of prefix
    .toString('utf8')
    .replace(/\r?\n[ \t]/g, ' ')
    .split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) out.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()]);
  }
  return out;
}

const contains = (haystack: string, needle: string) => haystack.toLowerCase().includes(needle.toLowerCase());

function matches(key: SearchKey, c: Candidate, selected: SelectedMailbox, largestUid: number): boolean {
  switch (key.op) {
    case 'all':
      return true;
    case 'and':
      return key.keys.every((k) => matches(k, c, selected, largestUid));
    case 'or':
      return matches(key.a, c, selected, largestUid) || matches(key.b, c, selected, largestUid);
    case 'not':
      return !matches(key.key, c, selected, largestUid);
    case 'seq':
      return inSet(key.set, c.seq, selected.exists);
    case 'uid':
      return inSet(key.set, c.rec.uid, largestUid);
    case 'flag':
      return c.rec.flags.some((f) => f.toLowerCase() === key.flag.toLowerCase()) === key.set;
    case 'recent':
      return selected.recent.has(c.rec.uid);
    case 'new':
      return selected.recent.has(c.rec.uid) && !c.rec.flags.includes('\\Seen');
    case 'old':
      return !selected.recent.has(c.rec.uid);
    case 'header':
      return c.headers!.some(([name, value]) => name === key.field && (key.value === '' || contains(value, key.value)));
    case 'body':
      return contains(c.rec.text ?? '', key.value);
    case 'text':
      return contains(c.rec.text ?? '', key.value) || c.headers!.some(([name, value]) => contains(`${name}: ${value}`, key.value));
    case 'date': {
      const day = key.field === 'internal' ? utcDay(c.rec.internalDate) : sentDay(c.structure?.envelope.date ?? null);
      return day !== null && compareDay(day, key.cmp, key.day);
    }
    case 'size':
      return key.cmp === 'larger' ? c.rec.size > key.n : c.rec.size < key.n;
    case 'modseq':
      return c.rec.modseq >= key.n;
  }
}

export async function search(session: ImapSession, selected: SelectedMailbox, key: SearchKey): Promise<MessageRecord[]> {
  const needs = searchNeeds(key);
  const found: MessageRecord[] = [];
  const largestUid = selected.uids[selected.uids.length - 1] ?? 0;
  const uids = [...selected.uids];
  for (let p = 0; p < uids.length; p += PAGE) {
    const page = await session.deps.store.mailboxes.fetch(selected.id, uids.slice(p, p + PAGE), {
      structure: needs.headers,
      text: needs.text,
      prefix: needs.headers,
    });
    for (const rec of page) {
      const seq = selected.seqOf(rec.uid);
      if (seq === 0) continue;
      let structure: MessageStructure | null = null;
      if (needs.headers) structure = rec.structure ? parseStoredStructure(rec.structure) : await structureOf(session, rec);
      if (needs.text && rec.text == null) rec.text = (await structureOf(session, rec)).text;
      const headers = structure ? [...prefixFields(rec.prefix), ...structure.headers] : null;
      if (matches(key, { rec, seq, structure, headers }, selected, largestUid)) found.push(rec);
    }
  }
  return found;
}

export const SEARCH_COMMANDS: Record<string, Command> = {
  SEARCH: {
    states: SELECTED,
    async run(ctx) {
      const { session } = ctx;
      const selected = selectedOf(ctx);
      let key: SearchKey;
      try {
        key = parseSearch(ctx.args.peek() ? drain(ctx.args) : []);
      } catch (err) {
        if (err instanceof UnsupportedCharset) throw new ImapNo('BADCHARSET (UTF-8 US-ASCII)', `Charset ${err.message} is not supported`);
        throw err;
      }
      const found = await search(session, selected, key);
      const numbers = found.map((r) => (ctx.uid ? r.uid : selected.seqOf(r.uid)));
      let line = `SEARCH${numbers.map((n) => ` ${n}`).join('')}`;
      if (usesModseq(key)) {
        session.enabled.add('CONDSTORE');
        if (found.length > 0) line += ` (MODSEQ ${Math.max(...found.map((r) => r.modseq))})`;
      }
      session.untagged(line);
    },
  },
};

/** The remaining argument tokens. */
function drain(args: import('../proto/args.js').ArgReader) {
  const tokens = [];
  while (!args.done) tokens.push(args.token('search key'));
  return tokens;
}
