/**
 * One header block: its raw bytes collected (up to HEADER_BLOCK_CAP), split into unfolded
 * fields, and the Content-* fields read into a MimePart's description. Tolerant: lines
 * that are no header field are skipped, 8-bit bytes are read as UTF-8 when they are valid
 * UTF-8 and as Windows-1252 otherwise, and nothing here throws on bad input.
 */
import iconv from 'iconv-lite';
import libmime from 'libmime';
import { HEADER_BLOCK_CAP, type MimePart } from './structure.js';

/** A header field: lower-case name, raw value (unfolded, trimmed, encoded words kept). */
export type RawField = [name: string, value: string];

/** Collects one header block's bytes, lines separated by a bare LF, up to the cap. */
export class HeaderCollector {
  private readonly chunks: Buffer[] = [];
  private size = 0;

  add(buf: Buffer, from: number, end: number): void {
    const n = Math.min(end - from, HEADER_BLOCK_CAP - this.size);
    if (n <= 0) return;
    this.chunks.push(Buffer.from(buf.subarray(from, from + n))); // a copy: the caller may reuse its buffer
    this.size += n;
  }

  newline(): void {
    if (this.size < HEADER_BLOCK_CAP) this.add(LF, 0, 1);
  }

  fields(): RawField[] {
    return parseFields(Buffer.concat(this.chunks, this.size));
  }
}

const LF = Buffer.from('\n');
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Header bytes as text: UTF-8 when valid (RFC 6532), else Windows-1252; control characters other than tab dropped. */
export function headerText(bytes: Buffer): string {
  let text: string;
  if (!bytes.some((b) => b >= 0x80)) text = bytes.toString('latin1');
  else {
    try {
      text = utf8.decode(bytes);
    } catch {
      text = iconv.decode(bytes, 'win1252');
    }
  }
  return text.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '');
}

/** A field name: printable ASCII but the colon (RFC 5322 2.2), optionally followed by white space (obsolete syntax). */
const FIELD_START = /^([\x21-\x39\x3b-\x7e]+)[ \t]*:/;

/** Whether a line (its first bytes, latin1) starts like a header field. */
export const looksLikeField = (line: string): boolean => FIELD_START.test(line);

function parseFields(block: Buffer): RawField[] {
  const out: RawField[] = [];
  let name: string | null = null;
  let value: Buffer[] = [];
  const flush = () => {
    if (name !== null) out.push([name, headerText(Buffer.concat(value)).trim()]);
    name = null;
    value = [];
  };
  let start = 0;
  while (start < block.length) {
    let end = block.indexOf(10, start);
    if (end === -1) end = block.length;
    const line = block.subarray(start, end);
    start = end + 1;
    if (line.length === 0) continue;
    if (line[0] === 0x20 || line[0] === 0x09) {
      if (name !== null) value.push(line); // unfolding: the line break goes, the white space stays
      continue;
    }
    flush();
    const m = FIELD_START.exec(line.subarray(0, 200).toString('latin1'));
    if (!m) continue; // not a header field: skipped
    name = m[1]!.toLowerCase();
    value.push(line.subarray(m[0].length));
  }
  flush();
  return out;
}

/** The first value of a field, or null. */
export function first(fields: RawField[], name: string): string | null {
  for (const [n, v] of fields) if (n === name) return v;
  return null;
}

/** `value; a=b; …` with RFC 2231 parameters decoded; never throws. */
function structured(value: string): { value: string; params: Array<[string, string]> } {
  try {
    const parsed = libmime.parseHeaderValue(value);
    const params = Object.entries(parsed.params)
      .filter(([k]) => k !== '')
      .map(([k, v]): [string, string] => [k.toLowerCase(), String(v)]);
    return { value: String(parsed.value), params };
  } catch {
    return { value: value.split(';')[0]!, params: [] };
  }
}

const TOKEN = /^\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)\s*\/\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)/;

/** The part's description from its header fields (defaults when absent); `inDigest` makes message/rfc822 the default type. */
export function describePart(fields: RawField[], inDigest: boolean): Omit<MimePart, 'headerStart' | 'bodyStart' | 'bodyEnd' | 'lines'> {
  const ct = first(fields, 'content-type');
  const parsed = ct === null ? null : structured(ct);
  const typeMatch = parsed ? TOKEN.exec(parsed.value) : null;
  let type: string;
  let subtype: string;
  let params = parsed?.params ?? [];
  if (typeMatch) {
    type = typeMatch[1]!.toLowerCase();
    subtype = typeMatch[2]!.toLowerCase();
  } else if (inDigest) {
    type = 'message';
    subtype = 'rfc822';
  } else {
    type = 'text';
    subtype = 'plain';
    if (!params.some(([k]) => k === 'charset')) params = [['charset', 'us-ascii'], ...params];
  }
  const cte = first(fields, 'content-transfer-encoding');
  const encoding = cte === null ? '' : (/^[^\s;(]*/.exec(cte)?.[0] ?? '').toUpperCase();
  const cd = first(fields, 'content-disposition');
  const disp = cd === null ? null : structured(cd);
  const dispType = disp ? /^\s*([^\s;(]+)/.exec(disp.value)?.[1] : undefined;
  const lang = first(fields, 'content-language');
  const languages = lang === null ? [] : lang.split(',').flatMap((l) => (l.trim() ? [l.trim()] : []));
  return {
    type,
    subtype,
    params,
    id: first(fields, 'content-id'),
    description: first(fields, 'content-description'),
    encoding: encoding || '7BIT',
    md5: first(fields, 'content-md5'),
    disposition: disp && dispType ? { type: dispType.toLowerCase(), params: disp.params } : null,
    language: languages.length > 0 ? languages : null,
    location: first(fields, 'content-location'),
  };
}

/** The value of a parameter (first occurrence), or null. */
export function param(params: Array<[string, string]>, name: string): string | null {
  for (const [k, v] of params) if (k === name) return v;
  return null;
}
