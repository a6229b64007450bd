/**
 * The ENVELOPE of a message (RFC 3501 7.4.2) from its raw header fields, including a
 * tolerant RFC 5322 address-list reader: display names, quoted strings, comments, source
 * routes and groups, and whatever junk real mail has. This reads header syntax only;
 * validating an address for routing is mail/address.ts's job.
 */
import { first, type RawField } from './header-block.js';
import type { Envelope, EnvelopeAddress } from './structure.js';

/** Most addresses kept from one header field. */
const MAX_ADDRESSES = 5000;

interface Token {
  kind: 'atom' | 'quoted' | 'comment' | 'special';
  value: string;
  /** White space or a comment came before it. */
  spaced: boolean;
}

const SPECIALS = '()<>@,;:\\"[]';

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let spaced = false;
  let i = 0;
  const n = input.length;
  while (i < n) {
    const c = input[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      spaced = true;
      i++;
    } else if (c === '"') {
      let v = '';
      i++;
      while (i < n && input[i] !== '"') {
        if (input[i] === '\\' && i + 1 < n) i++;
        v += input[i++];
      }
      i++;
      tokens.push({ kind: 'quoted', value: v, spaced });
      spaced = false;
    } else if (c === '(') {
      let depth = 1;
      let v = '';
      i++;
      while (i < n && depth > 0) {
        const d = input[i]!;
        if (d === '\\' && i + 1 < n) {
          v += input[i + 1];
          i += 2;
          continue;
        }
        if (d === '(') depth++;
        else if (d === ')' && --depth === 0) break;
        v += d;
        i++;
      }
      i++;
      tokens.push({ kind: 'comment', value: v.trim(), spaced });
      spaced = true;
    } else if (c === '[') {
      const end = input.indexOf(']', i);
      const stop = end === -1 ? n : end + 1;
      tokens.push({ kind: 'atom', value: input.slice(i, stop), spaced });
      spaced = false;
      i = stop;
    } else if (SPECIALS.includes(c)) {
      tokens.push({ kind: 'special', value: c, spaced });
      spaced = false;
      i++;
    } else {
      let j = i;
      while (j < n && !SPECIALS.includes(input[j]!) && !' \t\r\n'.includes(input[j]!)) j++;
      tokens.push({ kind: 'atom', value: input.slice(i, j), spaced });
      spaced = false;
      i = j;
    }
  }
  return tokens;
}

const isSpecial = (t: Token | undefined, c: string) => t?.kind === 'special' && t.value === c;

/** Words joined as written: a space where the source had white space. */
function join(tokens: Token[], keepSpaces: boolean): string {
  let out = '';
  for (const t of tokens) {
    if (t.kind === 'comment') continue;
    if (out && t.spaced && keepSpaces) out += ' ';
    out += t.value;
  }
  return out;
}

function mailboxAndHost(spec: Token[]): { mailbox: string; host: string } {
  let at = -1;
  for (let i = spec.length - 1; i >= 0; i--) {
    if (isSpecial(spec[i], '@')) {
      at = i;
      break;
    }
  }
  const local = join(at === -1 ? spec : spec.slice(0, at), true);
  const domain = at === -1 ? '' : join(spec.slice(at + 1), false);
  return { mailbox: local || 'MISSING_MAILBOX', host: domain || 'MISSING_DOMAIN' };
}

/** One address from its tokens (no top-level comma), or null when there is nothing in it. */
function address(tokens: Token[]): EnvelopeAddress | null {
  const words = tokens.filter((t) => t.kind !== 'comment');
  if (words.length === 0) return null;
  const comment = tokens.find((t) => t.kind === 'comment' && t.value)?.value ?? null;
  const open = words.findIndex((t) => isSpecial(t, '<'));
  if (open === -1) {
    return { name: comment, adl: null, ...mailboxAndHost(words) };
  }
  let close = words.findIndex((t, i) => i > open && isSpecial(t, '>'));
  if (close === -1) close = words.length;
  let inner = words.slice(open + 1, close);
  let adl: string | null = null;
  if (isSpecial(inner[0], '@')) {
    const colon = inner.findIndex((t) => isSpecial(t, ':'));
    if (colon !== -1) {
      adl = join(inner.slice(0, colon), false);
      inner = inner.slice(colon + 1);
    }
  }
  const name = join(words.slice(0, open), true) || comment;
  if (inner.length === 0 && !name) return null;
  return { name: name || null, adl, ...mailboxAndHost(inner) };
}

/** An address-list header value (raw) as RFC 3501 address structures; null when it holds none. */
export function parseAddressList(value: string | null): EnvelopeAddress[] | null {
  if (value === null) return null;
  const out: EnvelopeAddress[] = [];
  let current: Token[] = [];
  let angle = 0;
  let inGroup = false;
  const flush = () => {
    const a = address(current);
    if (a && out.length < MAX_ADDRESSES) out.push(a);
    current = [];
  };
  for (const t of tokenize(value)) {
    if (t.kind === 'special' && angle === 0) {
      if (t.value === ',') {
        flush();
        continue;
      }
      if (t.value === ':' && !inGroup && !current.some((c) => isSpecial(c, '@'))) {
        out.push({ name: null, adl: null, mailbox: join(current, true), host: null });
        current = [];
        inGroup = true;
        continue;
      }
      if (t.value === ';') {
        flush();
        if (inGroup) out.push({ name: null, adl: null, mailbox: null, host: null });
        inGroup = false;
        continue;
      }
    }
    if (isSpecial(t, '<')) angle++;
    else if (isSpecial(t, '>')) angle = Math.max(0, angle - 1);
    current.push(t);
  }
  flush();
  if (inGroup) out.push({ name: null, adl: null, mailbox: null, host: null });
  return out.length > 0 ? out : null;
}

/** The envelope of a message from its header fields (first occurrence of each). */
export function envelopeOf(fields: RawField[]): Envelope {
  const list = (name: string) => parseAddressList(first(fields, name));
  return {
    date: first(fields, 'date'),
    subject: first(fields, 'subject'),
    from: list('from'),
    sender: list('sender'),
    replyTo: list('reply-to'),
    to: list('to'),
    cc: list('cc'),
    bcc: list('bcc'),
    inReplyTo: first(fields, 'in-reply-to'),
    messageId: first(fields, 'message-id'),
  };
}
