/**
 * SEARCH and UID SEARCH (RFC 3501 6.4.4; CHARSET UTF-8; CONDSTORE MODSEQ). Criteria are
 * evaluated page by page over the stored flags, dates, sizes, the header fields and the
 * decoded text kept at delivery (mail/mime), so TEXT and BODY match decoded content
 * (quoted-printable, base64, charsets) without re-parsing a message.
 */
import { storedForm } from '../../mail/mime/index.js';
import type { MessageRecord } from '../../store/store.js';
import { ImapNo } from '../errors.js';
import { inSet } from '../proto/sequence-set.js';
import { parseSearch, searchNeeds, UnsupportedCharset, usesModseq, type SearchKey } from '../proto/search-keys.js';
import type { SelectedMailbox } from '../selected.js';
import type { ImapSession } from '../session.js';
import { SELECTED, selectedOf, type Command } from './context.js';
import { structureOf } from './fetch.js';

/** Messages of the view per store read. */
const PAGE = 2000;
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

interface Candidate {
  rec: MessageRecord;
  seq: number;
  /** Header fields, lower-cased: the decoded top-level ones and the trace lines stored before the body. */
  headers: Array<[string, string]>;
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

/** "name: value" lines (as stored, or trace lines) as lower-cased [name, value] pairs. */
function fieldsOf(lines: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const line of lines.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0)
      out.push([
        line.slice(0, colon).trim().toLowerCase(),
        line
          .slice(colon + 1)
          .trim()
          .toLowerCase(),
      ]);
  }
  return out;
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
    case 'header': {
      const needle = key.value.toLowerCase();
      return c.headers.some(([name, value]) => name === key.field && value.includes(needle));
    }
    case 'body':
      return c.text.includes(key.value.toLowerCase());
    case 'text': {
      const needle = key.value.toLowerCase();
      return c.text.includes(needle) || c.headers.some(([name, value]) => `${name}: ${value}`.includes(needle));
    }
    case 'date': {
      const day = key.field === 'internal' ? utcDay(c.rec.internalDate) : sentDay(c.headers.find(([name]) => name === 'date')?.[1]);
      return day !== null && compareDay(day, key.cmp, key.day);
    }
    case 'size':
      return key.cmp === 'larger' ? c.rec.size > key.n : c.rec.size < key.n;
    case 'modseq':
      return c.rec.modseq >= key.n;
  }
}

/**
 * Strings every match must contain, from the terms that must all hold (a top-level AND):
 * the store filters on them in SQL, so only candidates travel; `matches` then decides.
 */
function requiredStrings(key: SearchKey, out = { text: [] as string[], headers: [] as string[] }) {
  if (key.op === 'and') for (const k of key.keys) requiredStrings(k, out);
  else if (key.op === 'body' && key.value) out.text.push(key.value.toLowerCase());
  else if (key.op === 'header' && key.value && !TRACE_FIELDS.has(key.field)) out.headers.push(key.value.toLowerCase());
  return out;
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
  const needs = searchNeeds(key);
  const prefix = needsPrefix(key);
  const containing = requiredStrings(key);
  const found: MessageRecord[] = [];
  const largestUid = selected.lastUid;
  const uids = selected.uids;
  for (let p = 0; p < uids.length; p += PAGE) {
    // A page is the uid range of the next PAGE messages of the view: one query, whatever the gaps.
    const page = await session.deps.store.mailboxes.fetch(
      selected.id,
      { from: uids.at(p), to: uids.at(Math.min(p + PAGE, uids.length) - 1) },
      {
        headers: needs.headers,
        text: needs.text,
        prefix,
        containing,
      },
    );
    for (const rec of page) {
      const seq = selected.seqOf(rec.uid);
      if (seq === 0) continue;
      let headers = rec.headers;
      let text = rec.text;
      if ((needs.headers && headers == null) || (needs.text && text == null)) {
        // Not parsed yet (a backfill still running): parse this one now.
        const stored = storedForm(await structureOf(session, rec));
        headers = stored.headers;
        text = stored.text;
      }
      const fields = needs.headers
        ? [
            ...(rec.prefix
              ? fieldsOf(
                  rec.prefix
                    .toString('utf8')
                    .replace(/\r?\n[ \t]/g, ' ')
                    .replace(/\r/g, ''),
                )
              : []),
            ...fieldsOf(headers ?? ''),
          ]
        : [];
      if (matches(key, { rec, seq, headers: fields, text: text ?? '' }, selected, largestUid)) found.push(rec);
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
