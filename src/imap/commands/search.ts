/**
 * SEARCH and UID SEARCH (RFC 3501 6.4.4; CHARSET UTF-8; CONDSTORE MODSEQ). Criteria are
 * evaluated page by page over the stored flags, dates, sizes, the header fields and the
 * decoded text kept at delivery (mail/mime), so TEXT and BODY match decoded content
 * (quoted-printable, base64, charsets) without re-parsing a message.
 */
import { headerHas, storedForm } from '../../mail/mime/index.js';
import type { MessageRecord } from '../../store/store.js';
import { ImapNo } from '../errors.js';
import { inSet } from '../proto/sequence-set.js';
import { parseSearch, searchNeeds, UnsupportedCharset, usesModseq, type SearchKey } from '../proto/search-keys.js';
import type { SelectedMailbox } from '../selected.js';
import type { ImapSession } from '../session.js';
import { SELECTED, selectedOf, type Command } from './context.js';
import { prefetch, structureOf } from './fetch.js';

/** Messages of the view per store read; fewer when each brings its decoded text (up to 256 KiB). */
const PAGE = 1000;
const TEXT_PAGE = 100;
/** Store reads in flight at once (the reader threads work on them together). */
const READ_AHEAD = 2;
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

interface Candidate {
  rec: MessageRecord;
  seq: number;
  /** Header fields as "name: value" lines, lower-cased: the trace lines stored before the body, then the decoded top-level ones. */
  headers: string;
  /** Decoded text, lower-cased. */
  text: string;
}

/** Header fields stored before the body (per recipient), not in the stored structure. */
const TRACE_FIELDS = new Set(['return-path', 'delivered-to', 'received']);

/** The day (UTC midnight, ms) a Date header names, disregarding time and zone (RFC 3501 SENT*); null when unreadable. */
export function sentDay(date: string | undefined): number | null {
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

/** The trace lines stored before the body ("Received: …", folded) as stored header lines: "name: value", lower-cased. */
function traceLines(prefix: Buffer): string {
  const out: string[] = [];
  for (const line of prefix
    .toString('utf8')
    .replace(/\r?\n[ \t]/g, ' ')
    .replace(/\r/g, '')
    .split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) out.push(`${line.slice(0, colon).trim()}: ${line.slice(colon + 1).trim()}`.toLowerCase());
  }
  return out.join('\n');
}

/** The value of the first `field` line of stored header lines. */
function firstValue(lines: string, field: string): string | undefined {
  const at = `\n${lines}`.indexOf(`\n${field}: `);
  if (at === -1) return undefined;
  const eol = lines.indexOf('\n', at);
  return lines.slice(at + field.length + 2, eol === -1 ? lines.length : eol);
}

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
      return headerHas(c.headers, key.field, key.value.toLowerCase());
    case 'body':
      return c.text.includes(key.value.toLowerCase());
    case 'text': {
      const needle = key.value.toLowerCase();
      return c.text.includes(needle) || (!needle.includes('\n') && c.headers.includes(needle));
    }
    case 'date': {
      const day = key.field === 'internal' ? utcDay(c.rec.internalDate) : sentDay(firstValue(c.headers, 'date'));
      return day !== null && compareDay(day, key.cmp, key.day);
    }
    case 'size':
      return key.cmp === 'larger' ? c.rec.size > key.n : c.rec.size < key.n;
    case 'modseq':
      return c.rec.modseq >= key.n;
  }
}

/** What the database decides for a search: the terms every match must satisfy (a top-level AND) that it can test exactly. */
interface Pushed {
  matching: { text: string[]; headers: Array<{ field: string; value: string }> };
  /** The criteria left for the session. */
  rest: SearchKey;
}

/** Splits off BODY terms and HEADER terms on fields stored with the body (not the trace lines before it). */
function pushDown(key: SearchKey): Pushed {
  const matching: Pushed['matching'] = { text: [], headers: [] };
  const push = (k: SearchKey): boolean => {
    if (k.op === 'body' && k.value) matching.text.push(k.value.toLowerCase());
    else if (k.op === 'header' && !TRACE_FIELDS.has(k.field)) matching.headers.push({ field: k.field, value: k.value.toLowerCase() });
    else return false;
    return true;
  };
  if (key.op === 'and') {
    const keys = key.keys.filter((k) => !push(k));
    return { matching, rest: keys.length === 0 ? { op: 'all' } : { op: 'and', keys } };
  }
  return push(key) ? { matching, rest: { op: 'all' } } : { matching, rest: key };
}

/** Whether the criteria look at the trace lines stored before the body. */
function needsPrefix(key: SearchKey): boolean {
  switch (key.op) {
    case 'header':
      return TRACE_FIELDS.has(key.field);
    case 'text':
      return true;
    case 'and':
      return key.keys.some(needsPrefix);
    case 'or':
      return needsPrefix(key.a) || needsPrefix(key.b);
    case 'not':
      return needsPrefix(key.key);
    default:
      return false;
  }
}

export async function search(session: ImapSession, selected: SelectedMailbox, key: SearchKey): Promise<MessageRecord[]> {
  const { matching, rest } = pushDown(key);
  const pushed = matching.text.length + matching.headers.length > 0;
  const needs = searchNeeds(rest);
  const found: MessageRecord[] = [];
  const largestUid = selected.lastUid;
  const uids = selected.uids;
  const want = { headers: needs.headers, text: needs.text, prefix: needsPrefix(rest), matching: pushed ? matching : undefined };
  const size = needs.text ? TEXT_PAGE : PAGE;
  // A page is the uid range of the next `size` messages of the view: one query, whatever the gaps.
  const read = (p: number) =>
    p < uids.length
      ? prefetch(session.deps.store.mailboxes.fetch(selected.id, { from: uids.at(p), to: uids.at(Math.min(p + size, uids.length) - 1) }, want))
      : null;
  const ahead = Array.from({ length: READ_AHEAD }, (_, i) => read(i * size));
  for (let p = 0; p < uids.length; p += size) {
    const page = await ahead.shift()!;
    ahead.push(read(p + READ_AHEAD * size));
    for (const rec of page) {
      const seq = selected.seqOf(rec.uid);
      if (seq === 0) continue;
      // The database could not test a body not parsed yet: the session tests all of the criteria.
      const criteria = rec.parsed === false ? key : rest;
      const wants = rec.parsed === false ? searchNeeds(key) : needs;
      let headers = rec.headers;
      let text = rec.text;
      if ((wants.headers && headers == null) || (wants.text && text == null)) {
        // Not parsed yet (a backfill still running): parse this one now.
        const stored = storedForm(await structureOf(session, rec));
        headers = stored.headers;
        text = stored.text;
      }
      const lines = wants.headers ? [rec.prefix ? traceLines(rec.prefix) : '', headers ?? ''].filter(Boolean).join('\n') : '';
      if (matches(criteria, { rec, seq, headers: lines, text: text ?? '' }, selected, largestUid)) found.push(rec);
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
