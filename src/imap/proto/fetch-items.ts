/**
 * FETCH data items (RFC 3501 6.4.5, RFC 7162 MODSEQ): "(UID FLAGS BODY.PEEK[HEADER.FIELDS
 * (FROM)]<0.100>)" into typed items, including the ALL/FAST/FULL macros. Pure.
 */
import { BadArgs, parseNumber } from './args.js';
import type { Token } from './command-reader.js';

export type SectionText = 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'TEXT' | 'MIME' | null;

export interface Section {
  /** Part numbers ("1.2" → [1, 2]); empty for the whole message. */
  part: number[];
  text: SectionText;
  /** Lower-cased header names for HEADER.FIELDS(.NOT). */
  fields: string[];
}

export type FetchItem =
  | { kind: 'FLAGS' | 'UID' | 'INTERNALDATE' | 'RFC822.SIZE' | 'ENVELOPE' | 'BODYSTRUCTURE' | 'BODY' | 'MODSEQ' }
  | {
      kind: 'section';
      /** BODY.PEEK, RFC822.HEADER: do not set \Seen. */
      peek: boolean;
      section: Section;
      partial: { start: number; length: number } | null;
      /** The name the answer carries: "BODY[1.2]<0>", "RFC822", "RFC822.HEADER"… */
      label: string;
    };

const SIMPLE = new Set(['FLAGS', 'UID', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODYSTRUCTURE', 'BODY', 'MODSEQ']);
const MACROS: Record<string, string[]> = {
  ALL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'],
  FAST: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
  FULL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'],
};

/** Parses the item argument of FETCH (an atom or a list). */
export function parseFetchItems(token: Token): FetchItem[] {
  if (token.type === 'atom') {
    const macro = MACROS[token.value.toUpperCase()];
    if (macro) return macro.map((name) => ({ kind: name }) as FetchItem);
    return [parseItem(token.value)];
  }
  if (token.type !== 'list' || token.items.length === 0) throw new BadArgs('Invalid fetch items');
  return token.items.map((t) => {
    if (t.type !== 'atom') throw new BadArgs('Invalid fetch item');
    return parseItem(t.value);
  });
}

function parseItem(text: string): FetchItem {
  const upper = text.toUpperCase();
  if (SIMPLE.has(upper)) return { kind: upper } as FetchItem;
  if (upper === 'RFC822') return { kind: 'section', peek: false, section: { part: [], text: null, fields: [] }, partial: null, label: 'RFC822' };
  if (upper === 'RFC822.HEADER')
    return { kind: 'section', peek: true, section: { part: [], text: 'HEADER', fields: [] }, partial: null, label: 'RFC822.HEADER' };
  if (upper === 'RFC822.TEXT') return { kind: 'section', peek: false, section: { part: [], text: 'TEXT', fields: [] }, partial: null, label: 'RFC822.TEXT' };
  const m = /^(BODY|BODY\.PEEK|BINARY|BINARY\.PEEK)\[([^\]]*)\](?:<(\d+)(?:\.(\d+))?>)?$/i.exec(text);
  if (!m || m[1]!.toUpperCase().startsWith('BINARY')) throw new BadArgs(`Unknown fetch item ${text.slice(0, 60)}`);
  const section = parseSection(m[2]!);
  if (m[3] !== undefined && m[4] === undefined) throw new BadArgs('A partial fetch needs <start.length>');
  const partial = m[3] !== undefined ? { start: parseNumber(m[3], 'partial start', 2 ** 32), length: parseNumber(m[4]!, 'partial length', 2 ** 32) } : null;
  if (partial && partial.length === 0) throw new BadArgs('A partial fetch of 0 octets');
  const label = `BODY[${sectionLabel(m[2]!)}]${partial ? `<${partial.start}>` : ''}`;
  return { kind: 'section', peek: m[1]!.toUpperCase() === 'BODY.PEEK', section, partial, label };
}

/** "1.2.HEADER.FIELDS (From To)" → Section. */
export function parseSection(text: string): Section {
  const m = /^([^ (]*)(?: \(([^()]*)\))?$/.exec(text);
  if (!m) throw new BadArgs(`Invalid section ${text.slice(0, 60)}`);
  const pieces = m[1] === '' ? [] : m[1]!.split('.');
  const part: number[] = [];
  while (pieces.length > 0 && /^\d+$/.test(pieces[0]!)) part.push(parseNumber(pieces.shift()!, 'part number', 100_000));
  if (part.some((n) => n === 0)) throw new BadArgs('Invalid part number 0');
  const kind = pieces.length === 0 ? null : pieces.join('.').toUpperCase();
  if (kind !== null && !['HEADER', 'HEADER.FIELDS', 'HEADER.FIELDS.NOT', 'TEXT', 'MIME'].includes(kind))
    throw new BadArgs(`Invalid section ${text.slice(0, 60)}`);
  const fieldsText = m[2];
  if ((kind === 'HEADER.FIELDS' || kind === 'HEADER.FIELDS.NOT') !== (fieldsText !== undefined)) throw new BadArgs('Invalid header field list');
  if (kind === 'MIME' && part.length === 0) throw new BadArgs('MIME needs a part number');
  const fields = fieldsText === undefined ? [] : fieldsText.split(' ').filter(Boolean).map(unquote);
  if (fieldsText !== undefined && fields.length === 0) throw new BadArgs('Empty header field list');
  if (fields.some((f) => !/^[\x21-\x39\x3b-\x7e]+$/.test(f))) throw new BadArgs('Invalid header field name');
  return { part, text: kind as SectionText, fields: fields.map((f) => f.toLowerCase()) };
}

function unquote(s: string): string {
  return s.startsWith('"') && s.endsWith('"') && s.length >= 2 ? s.slice(1, -1) : s;
}

/** The section as echoed in the answer: upper-case keywords, field names as asked. */
function sectionLabel(text: string): string {
  return text.replace(/^((?:\d+\.)*)([a-z.]+)/i, (_, p: string, k: string) => p + k.toUpperCase());
}

/** FETCH modifiers (RFC 7162): (CHANGEDSINCE n) and, for UID FETCH, VANISHED. */
export function parseFetchModifiers(tokens: Token[] | null): { changedSince: number | null; vanished: boolean } {
  const out = { changedSince: null as number | null, vanished: false };
  if (!tokens) return out;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    const name = t.type === 'atom' ? t.value.toUpperCase() : '';
    if (name === 'CHANGEDSINCE') {
      const v = tokens[++i];
      if (v?.type !== 'atom') throw new BadArgs('CHANGEDSINCE needs a number');
      out.changedSince = parseNumber(v.value, 'mod-sequence');
    } else if (name === 'VANISHED') out.vanished = true;
    else throw new BadArgs('Unknown FETCH modifier');
  }
  return out;
}
