/**
 * Reads the mailbox protocols run per command: the uids of a mailbox (SELECT), pages of
 * messages with what FETCH and SEARCH need (flags, dates, sizes, stored structure, search
 * text), and what changed since a mod-sequence (CONDSTORE, and pushing other sessions'
 * changes). Part of createReads (sql/reads.ts).
 */
import { headerPattern, isSearchField, type SearchField } from '../../mail/mime/index.js';
import { SYSTEM_FLAGS, type FlagChange, type MessageRecord, type MessageWants } from '../store.js';
import { FLAG_COLUMNS, flagList, flagsOfValues, systemFlagsOf } from './flags.js';
import { SEARCH_COLUMNS } from './search-fields.js';
import { placeholders, type Sql } from './sql.js';

/** Most uids one `fetch` read answers; callers page. */
export const FETCH_PAGE = 500;
/** Bodies up to this size come with a page when asked (`want.body`): a small message's FETCH BODY[] then costs no further read. */
export const INLINE_READ_LIMIT = 16 * 1024;

async function keywordsOf(sql: Sql, ids: number[]): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  for (let i = 0; i < ids.length; i += FETCH_PAGE) {
    const part = ids.slice(i, i + FETCH_PAGE);
    for (const k of await sql.all(`SELECT message_id, keyword FROM keywords WHERE message_id IN (${placeholders(part.length)})`, part)) {
      const id = Number(k.message_id);
      const list = out.get(id);
      if (list) list.push(String(k.keyword));
      else out.set(id, [String(k.keyword)]);
    }
  }
  return out;
}

/** `uid IN (…)`, or a BETWEEN when the uids are one run (the common 1:* case). */
function uidFilter(uids: number[]): { where: string; params: number[] } {
  const first = uids[0]!;
  const last = uids[uids.length - 1]!;
  if (last - first + 1 === uids.length) return { where: 'm.uid BETWEEN ? AND ?', params: [first, last] };
  return { where: `m.uid IN (${placeholders(uids.length)})`, params: uids };
}

/** `text` matched literally inside a GLOB pattern. */
const globQuote = (text: string) => text.replace(/[*?[]/g, '[$&]');

export function createMessageReads(sql: Sql) {
  return {
    async uids(mailboxId: number): Promise<number[]> {
      return (await sql.all('SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid', [mailboxId])).map((r) => Number(r.uid));
    },

    /** Messages of the mailbox with these uids (ascending, at most FETCH_PAGE), with what `want` asks for. */
    async fetchMessages(mailboxId: number, uids: number[] | { from: number; to: number }, want: MessageWants): Promise<MessageRecord[]> {
      if (Array.isArray(uids) && uids.length === 0) return [];
      if (Array.isArray(uids) && uids.length > FETCH_PAGE) throw new Error(`fetchMessages takes at most ${FETCH_PAGE} uids`);
      const { where, params } = Array.isArray(uids) ? uidFilter(uids) : { where: 'm.uid BETWEEN ? AND ?', params: [uids.from, uids.to] };
      const pg = sql.dialect === 'postgres';
      const matching = want.matching ?? { text: [], headers: [] };
      // FROM, TO, CC, BCC and SUBJECT are tested on their short columns (sql/search-fields.ts), other fields on the header lines.
      const short = matching.headers.filter((h): h is { field: SearchField; value: string } => isSearchField(h.field));
      const other = matching.headers.filter((h) => !isSearchField(h.field));
      const useS = want.structure || want.text || want.headers || matching.text.length > 0 || other.length > 0;
      const useF = short.length > 0;
      // A body not parsed yet (no row) stays a candidate; the caller parses it to decide.
      const unparsed = useS ? 's.hash IS NULL' : 'f.hash IS NULL';
      const filters = [
        ...matching.text.map(() => ` AND (${unparsed} OR ${pg ? 'strpos(s.search_text, ?) > 0' : 'instr(s.search_text, ?) > 0'})`),
        ...short.map(({ field, value }) => {
          const column = `f.${SEARCH_COLUMNS[field]}`;
          const test = value.includes('\n') ? '1 = 0' : value === '' ? `${column} IS NOT NULL` : pg ? `strpos(${column}, ?) > 0` : `instr(${column}, ?) > 0`;
          return ` AND (${unparsed} OR ${test})`;
        }),
        // SQLite: a GLOB (in C) first, so the exact test (a JavaScript function) runs only on likely rows.
        ...other.map(
          () => ` AND (${unparsed} OR ${pg ? 's.search_headers ~ ?' : '(s.search_headers GLOB ? AND tern_header_has(s.search_headers, ?, ?) = 1)'})`,
        ),
      ].join('');
      const filterParams = [
        ...matching.text,
        ...short.flatMap(({ value }) => (value === '' || value.includes('\n') ? [] : [value])),
        ...other.flatMap(({ field, value }) => (pg ? [headerPattern(field, value)] : [`*${globQuote(field)}: *${globQuote(value)}*`, field, value])),
      ];
      const joins = [
        want.body ? 'JOIN blobs b ON b.hash = m.blob_hash' : '',
        useS ? 'LEFT JOIN blob_structures s ON s.hash = m.blob_hash' : '',
        useF ? 'LEFT JOIN blob_search f ON f.hash = m.blob_hash' : '',
      ].join(' ');
      // Columns by name; a row comes back as an array in this order (a page can be thousands of rows).
      const columns: Record<string, string> = {
        id: 'm.id',
        uid: 'm.uid',
        modseq: 'm.modseq',
        internalDate: 'm.internal_date',
        size: 'm.size',
        prefixLength: pg ? 'octet_length(m.prefix)' : 'length(m.prefix)',
        hash: 'm.blob_hash',
        // Keywords space-separated (a keyword has no spaces).
        keywords: `(SELECT ${pg ? "string_agg(k.keyword, ' ')" : "group_concat(k.keyword, ' ')"} FROM keywords k WHERE k.message_id = m.id)`,
        ...Object.fromEntries(SYSTEM_FLAGS.map((f) => [f, `m.${FLAG_COLUMNS[f]}`])),
        ...(want.structure ? { structure: 's.structure' } : {}),
        ...(want.text ? { text: 's.search_text' } : {}),
        ...(want.headers ? { headers: 's.search_headers' } : {}),
        ...(want.prefix || want.body ? { prefix: 'm.prefix' } : {}),
        ...(want.body ? { body: `CASE WHEN b.upload IS NULL AND b.size <= ${INLINE_READ_LIMIT} THEN b.data END` } : {}),
        ...(want.matching ? { parsed: `NOT (${unparsed})` } : {}),
      };
      const names = Object.keys(columns);
      const at = (name: string) => names.indexOf(name);
      const rows = await sql.arrays(
        `SELECT ${names.map((n) => columns[n]).join(', ')} FROM messages m ${joins} WHERE m.mailbox_id = ? AND ${where}${filters} ORDER BY m.uid`,
        [mailboxId, ...params, ...filterParams],
      );
      const [id, uid, modseq, internalDate, size, prefixLength, hash, keywords, firstFlag, structure, text, headers, prefix, body, parsed] = [
        ...['id', 'uid', 'modseq', 'internalDate', 'size', 'prefixLength', 'hash', 'keywords', SYSTEM_FLAGS[0]],
        ...['structure', 'text', 'headers', 'prefix', 'body', 'parsed'],
      ].map(at);
      const str = (v: unknown) => (typeof v === 'string' ? v : null);
      return rows.map((r) => {
        const record: MessageRecord = {
          id: Number(r[id!]),
          uid: Number(r[uid!]),
          modseq: Number(r[modseq!]),
          flags: flagsOfValues(r.slice(firstFlag, firstFlag! + SYSTEM_FLAGS.length), r[keywords!]),
          internalDate: Number(r[internalDate!]),
          size: Number(r[size!]),
          prefixLength: Number(r[prefixLength!]),
          hash: String(r[hash!]),
        };
        if (want.structure) record.structure = str(r[structure!]);
        if (want.text) record.text = str(r[text!]);
        if (want.headers) record.headers = str(r[headers!]);
        if (want.prefix || want.body) record.prefix = r[prefix!] as Buffer;
        if (want.body) record.body = r[body!] == null ? null : (r[body!] as Buffer);
        if (want.matching) record.parsed = Boolean(r[parsed!]);
        return record;
      });
    },

    async firstUnseen(mailboxId: number): Promise<number | null> {
      const r = await sql.all('SELECT min(uid) AS uid FROM messages WHERE mailbox_id = ? AND seen = 0', [mailboxId]);
      return r[0]?.uid == null ? null : Number(r[0].uid);
    },

    /** Uids of the messages flagged \Deleted (EXPUNGE, CLOSE). */
    async deletedUids(mailboxId: number): Promise<number[]> {
      return (await sql.all('SELECT uid FROM messages WHERE mailbox_id = ? AND deleted = 1 ORDER BY uid', [mailboxId])).map((r) => Number(r.uid));
    },

    /** Messages whose modseq is above `since`, by uid: their flags now. */
    async changedSince(mailboxId: number, since: number): Promise<FlagChange[]> {
      const rows = await sql.all(
        'SELECT id, uid, modseq, seen, answered, flagged, deleted, draft FROM messages WHERE mailbox_id = ? AND modseq > ? ORDER BY uid',
        [mailboxId, since],
      );
      const keywords = await keywordsOf(
        sql,
        rows.map((r) => Number(r.id)),
      );
      return rows.map((r) => ({ uid: Number(r.uid), modseq: Number(r.modseq), flags: flagList(systemFlagsOf(r), keywords.get(Number(r.id)) ?? []) }));
    },
  };
}
