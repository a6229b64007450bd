/**
 * Reads IMAP server responses from raw bytes and checks their form (RFC 3501 7, 9): every
 * line ends with CRLF (no bare CR or LF, no NUL); a line ending in `{n}` is followed by
 * exactly n bytes of literal, then the response goes on; a response is "+ …", "* …" with a
 * known response name, or "<tag> OK|NO|BAD <text>"; outside literals it is 7-bit text
 * without control characters (a server must not echo a client's NUL, escape or 8-bit bytes);
 * data responses have balanced parentheses and well-formed quoted strings; status
 * responses carry no literal and a closed response code.
 */
import { showBytes } from '../../fuzz/show-bytes.js';
import { validTag } from './framing.js';

export type Status = 'OK' | 'NO' | 'BAD';

export type ImapResponse = { show: string } & (
  | { kind: 'continuation' }
  /** `keyword` is the response name (OK, CAPABILITY, FETCH…); `number` the message number before it, if any. */
  | { kind: 'untagged'; keyword: string; number: number | null; text: string }
  | { kind: 'tagged'; tag: string; status: Status; text: string }
);

/** Bytes without a line end (outside a literal) after which the reader gives up on the server. */
const RUNAWAY_LINE = 1024 * 1024;
/** Literal bytes kept for reports and checks. */
const KEEP_LITERAL = 64;

const STATUS_NAMES = new Set(['OK', 'NO', 'BAD', 'BYE', 'PREAUTH']);
const DATA_NAMES = new Set([
  'CAPABILITY',
  'FLAGS',
  'LIST',
  'LSUB',
  'STATUS',
  'SEARCH',
  'ESEARCH',
  'ENABLED',
  'ID',
  'NAMESPACE',
  'QUOTA',
  'QUOTAROOT',
  'VANISHED',
]);
const NUMBERED_NAMES = new Set(['EXISTS', 'RECENT', 'EXPUNGE', 'FETCH']);

/** The text pieces of one response (between literals) and the literals' sizes. */
interface RawResponse {
  pieces: string[];
  literals: number[];
  literalHeads: Buffer[];
}

/** Problems in the text outside literals: control characters, 8-bit bytes. */
function textProblems(text: string, shown: string): string[] {
  const problems: string[] = [];
  const control = /[\x00-\x1f\x7f]/.exec(text);
  if (control) problems.push(`control character 0x${control[0].charCodeAt(0).toString(16).padStart(2, '0')} outside a literal: ${shown}`);
  if (/[\x80-\xff]/.test(text)) problems.push(`8-bit byte outside a literal (IMAP4rev1 text is 7-bit): ${shown}`);
  return problems;
}

/** Parentheses and quoted strings across the pieces of a data response. */
function structureProblems(raw: RawResponse, shown: string): string[] {
  let depth = 0;
  for (const [i, piece] of raw.pieces.entries()) {
    let quoted = false;
    for (let j = 0; j < piece.length; j++) {
      const c = piece[j];
      if (quoted) {
        if (c === '\\') {
          const nx = piece[j + 1];
          if (nx !== '\\' && nx !== '"') return [`invalid escape in a quoted string: ${shown}`];
          j++;
        } else if (c === '"') quoted = false;
        continue;
      }
      if (c === '"') quoted = true;
      else if (c === '[') {
        // A section spec inside an atom ("BODY[HEADER.FIELDS (A B)]") may hold parentheses; skip it whole.
        const close = piece.indexOf(']', j);
        if (close >= 0) j = close; // otherwise a "[" inside an atom
      } else if (c === '(') depth++;
      else if (c === ')' && --depth < 0) return [`unbalanced ")" in a data response: ${shown}`];
    }
    if (quoted) return [`quoted string ${i < raw.literals.length ? 'runs into a literal' : 'not closed at the end of the line'}: ${shown}`];
  }
  return depth === 0 ? [] : [`${depth} unclosed "(" in a data response: ${shown}`];
}

/** Checks one complete response; returns it classified with its problems. */
export function checkResponse(raw: RawResponse): { response: ImapResponse | null; problems: string[] } {
  const joined = raw.pieces.map((p, i) => (i < raw.literals.length ? `${p}{${raw.literals[i]}}\r\n${raw.literalHeads[i]!.toString('latin1')}…` : p)).join('');
  const show = showBytes(Buffer.from(joined, 'latin1'), 300);
  const first = raw.pieces[0]!;
  const outside = raw.pieces.join(' ');
  const problems = textProblems(outside, show);
  if (first === '+' || first.startsWith('+ ')) {
    if (raw.literals.length) problems.push(`literal in a continuation request: ${show}`);
    return { response: { kind: 'continuation', show }, problems };
  }
  if (first.startsWith('* ')) {
    const m = /^\* (?:(\d+) )?([A-Za-z][A-Za-z0-9-]*)(?: (.*))?$/s.exec(first);
    if (!m) return { response: null, problems: [...problems, `malformed untagged response: ${show}`] };
    const number = m[1] === undefined ? null : Number(m[1]);
    const keyword = m[2]!.toUpperCase();
    const text = m[3] ?? '';
    if (number !== null ? !NUMBERED_NAMES.has(keyword) : !STATUS_NAMES.has(keyword) && !DATA_NAMES.has(keyword)) {
      problems.push(`unknown untagged response ${JSON.stringify(keyword)}: ${show}`);
    }
    if (number === 0 && (keyword === 'FETCH' || keyword === 'EXPUNGE')) problems.push(`message number 0: ${show}`);
    if (keyword === 'FETCH' && !text.startsWith('(')) problems.push(`FETCH without a parenthesized list: ${show}`);
    if (STATUS_NAMES.has(keyword) && number === null) problems.push(...statusTextProblems(raw, text, show));
    else problems.push(...structureProblems(raw, show));
    return { response: { kind: 'untagged', keyword, number, text, show }, problems };
  }
  const m = /^(\S+) (OK|NO|BAD)(?: (.*))?$/is.exec(first);
  if (!m || !validTag(m[1]!)) return { response: null, problems: [...problems, `malformed response (neither "+", "*" nor a tag and OK/NO/BAD): ${show}`] };
  const status = m[2]!.toUpperCase() as Status;
  if (m[2] !== status) problems.push(`status in lower case: ${show}`);
  const text = m[3] ?? '';
  problems.push(...statusTextProblems(raw, text, show));
  return { response: { kind: 'tagged', tag: m[1]!, status, text, show }, problems };
}

/** resp-text: an optional "[code]" with balanced parentheses, then text; no literal. */
function statusTextProblems(raw: RawResponse, text: string, show: string): string[] {
  const problems: string[] = [];
  if (raw.literals.length) problems.push(`literal in a status response (its text ends like "{n}"): ${show}`);
  if (text.trim() === '') problems.push(`status response without text: ${show}`);
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) problems.push(`response code without "]": ${show}`);
    else {
      const code = text.slice(1, close);
      let depth = 0;
      for (const c of code) if ((depth += c === '(' ? 1 : c === ')' ? -1 : 0) < 0) break;
      if (depth !== 0 || !/^[A-Z][A-Z0-9.-]*(?: |$)/i.test(code)) problems.push(`malformed response code [${code.slice(0, 60)}]: ${show}`);
    }
  }
  return problems;
}

/** Incremental response parser: feed it what the socket delivers, take complete responses out. */
export class ResponseReader {
  private buffer: Buffer = Buffer.alloc(0);
  private raw: RawResponse = { pieces: [], literals: [], literalHeads: [] };
  private literalLeft = 0;
  readonly problems: string[] = [];

  push(chunk: Buffer): ImapResponse[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const out: ImapResponse[] = [];
    for (;;) {
      if (this.literalLeft > 0) {
        const n = Math.min(this.literalLeft, this.buffer.length);
        const heads = this.raw.literalHeads;
        const head = heads[heads.length - 1]!;
        if (head.length < KEEP_LITERAL) heads[heads.length - 1] = Buffer.concat([head, this.buffer.subarray(0, Math.min(n, KEEP_LITERAL - head.length))]);
        this.buffer = this.buffer.subarray(n);
        this.literalLeft -= n;
        if (this.literalLeft > 0) break;
      }
      const nl = this.buffer.indexOf(10);
      if (nl < 0) {
        if (this.buffer.length > RUNAWAY_LINE) {
          this.problems.push(`over ${RUNAWAY_LINE} bytes without a line end: ${showBytes(this.buffer)}`);
          this.buffer = Buffer.alloc(0);
        }
        break;
      }
      const line = this.buffer.subarray(0, nl + 1);
      this.buffer = this.buffer.subarray(nl + 1);
      if (nl === 0 || line[nl - 1] !== 13) this.problems.push(`line not ended by CRLF (bare LF): ${showBytes(line)}`);
      const body = line.subarray(0, Math.max(0, line.length - 2));
      if (body.includes(13)) this.problems.push(`bare CR inside a response line: ${showBytes(line)}`);
      const text = line.subarray(0, line[nl - 1] === 13 ? nl - 1 : nl).toString('latin1');
      const literal = /\{(\d{1,10})\}$/.exec(text);
      if (literal) {
        this.raw.pieces.push(text.slice(0, literal.index));
        this.raw.literals.push(Number(literal[1]));
        this.raw.literalHeads.push(Buffer.alloc(0));
        this.literalLeft = Number(literal[1]);
        continue;
      }
      this.raw.pieces.push(text);
      const { response, problems } = checkResponse(this.raw);
      this.problems.push(...problems);
      this.raw = { pieces: [], literals: [], literalHeads: [] };
      if (response) out.push(response);
    }
    return out;
  }

  /** Bytes received that do not (yet) make a complete response. */
  unfinished(): string | null {
    if (this.literalLeft > 0) return `a literal still ${this.literalLeft} bytes short`;
    if (this.raw.pieces.length > 0) return `a response cut after a literal (${showBytes(Buffer.from(this.raw.pieces.join(''), 'latin1'))})`;
    if (this.buffer.length > 0) return `incomplete response line ${showBytes(this.buffer)}`;
    return null;
  }
}
