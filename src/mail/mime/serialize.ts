/**
 * The stored form of a MessageStructure: compact JSON of everything but the search text,
 * which the store keeps in a column of its own.
 */
import type { MessageStructure } from './structure.js';

export function serializeStructure(s: MessageStructure): string {
  return JSON.stringify({ version: s.version, root: s.root, envelope: s.envelope, headers: s.headers });
}

/**
 * What the store keeps of a parsed body: the structure as JSON, and for SEARCH the decoded
 * text and top-level header fields ("name: value" lines), both lower-cased once here so the
 * store can match them case-insensitively in SQL (instr/strpos) with a lower-cased needle.
 */
export function storedForm(s: MessageStructure): { json: string; text: string; headers: string; messageId: string | null; subject: string | null } {
  const first = (field: string) =>
    s.headers
      .find(([name]) => name.toLowerCase() === field)?.[1]
      .replace(/[\r\n]+/g, ' ')
      .trim() || null;
  return {
    json: serializeStructure(s),
    text: s.text.toLowerCase(),
    headers: s.headers.map(([name, value]) => `${name}: ${value.replace(/[\r\n]+/g, ' ')}`.toLowerCase()).join('\n'),
    messageId: first('message-id'),
    subject: first('subject'),
  };
}

/**
 * Whether stored header lines (storedForm's `headers`: "name: value", lower-cased, one per
 * line) have a field `field` whose value contains `needle` (both lower-case; an empty
 * needle asks only that the field exists). The one definition of SEARCH HEADER matching:
 * the IMAP session calls it, SQLite calls it from SQL, and the PostgreSQL query's regular
 * expression (headerPattern) says the same.
 */
export function headerHas(lines: string, field: string, needle: string): boolean {
  if (needle.includes('\n')) return false;
  const start = `${field}: `;
  const next = (from: number) => {
    const i = lines.indexOf(`\n${start}`, from);
    return i === -1 ? -1 : i + 1;
  };
  for (let at = lines.startsWith(start) ? 0 : next(0); at !== -1;) {
    const eol = lines.indexOf('\n', at);
    const end = eol === -1 ? lines.length : eol;
    const value = at + start.length;
    if (needle === '' || lines.slice(value, end).includes(needle)) return true;
    at = eol === -1 ? -1 : next(eol);
  }
  return false;
}

/** The header fields SEARCH has keys of their own for (RFC 3501 FROM, TO, CC, BCC, SUBJECT): the store keeps their values in short columns. */
export const SEARCH_FIELDS = ['from', 'to', 'cc', 'bcc', 'subject'] as const;
export type SearchField = (typeof SEARCH_FIELDS)[number];

export const isSearchField = (field: string): field is SearchField => (SEARCH_FIELDS as readonly string[]).includes(field);

/**
 * For each of SEARCH_FIELDS, the values of its lines in stored header lines, joined by line
 * breaks; null when it has none. For a needle without a line break, `values.includes(needle)`
 * is exactly headerHas (the store matches SEARCH FROM … SUBJECT on these, with instr/strpos).
 */
export function searchValues(lines: string): Record<SearchField, string | null> {
  const found: Record<SearchField, string[]> = { from: [], to: [], cc: [], bcc: [], subject: [] };
  for (const line of lines.split('\n')) {
    const colon = line.indexOf(': ');
    const name = colon === -1 ? '' : line.slice(0, colon);
    if (isSearchField(name)) found[name].push(line.slice(colon + 2));
  }
  const out = {} as Record<SearchField, string | null>;
  for (const f of SEARCH_FIELDS) out[f] = found[f].length > 0 ? found[f].join('\n') : null;
  return out;
}

/** A POSIX regular expression (PostgreSQL `~`) true exactly where headerHas is. */
export function headerPattern(field: string, needle: string): string {
  const quote = (s: string) => s.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
  return needle.includes('\n') ? '$.^' : `(^|\n)${quote(field)}: [^\n]*${quote(needle)}`;
}

/** Reads what serializeStructure wrote (`text` comes back empty); throws on anything else. */
export function parseStoredStructure(json: string): MessageStructure {
  const value = JSON.parse(json) as Partial<MessageStructure> | null;
  if (!value || typeof value !== 'object' || value.version !== 1 || !value.root || !value.envelope || !Array.isArray(value.headers)) {
    throw new Error('not a stored message structure (version 1)');
  }
  return { version: 1, root: value.root, envelope: value.envelope, headers: value.headers, text: '' };
}
