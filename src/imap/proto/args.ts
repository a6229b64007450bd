/**
 * Reading command arguments out of tokens: an ArgReader walks one command's tokens and
 * throws BadArgs (answered BAD) when one is missing or of the wrong kind. Pure.
 */
import type { Token } from './command-reader.js';

export class BadArgs extends Error {}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

export class ArgReader {
  private i = 0;
  constructor(private readonly tokens: Token[]) {}

  get done(): boolean {
    return this.i >= this.tokens.length;
  }

  peek(): Token | undefined {
    return this.tokens[this.i];
  }

  /** Throws unless every argument was used. */
  end(): void {
    if (!this.done) throw new BadArgs('Too many arguments');
  }

  token(what: string): Token {
    const t = this.tokens[this.i++];
    if (!t) throw new BadArgs(`Missing ${what}`);
    return t;
  }

  atom(what: string): string {
    const t = this.token(what);
    if (t.type !== 'atom') throw new BadArgs(`Expected ${what}`);
    return t.value;
  }

  /** astring: an atom, quoted string or literal. */
  astring(what: string): string {
    const t = this.token(what);
    if (t.type === 'atom' || t.type === 'string') return t.value;
    throw new BadArgs(`Expected ${what}`);
  }

  /** A mailbox name: INBOX in any case means INBOX; other names as given (hierarchy "/"). */
  mailbox(): string {
    return mailboxName(this.astring('mailbox name'));
  }

  list(what: string): Token[] {
    const t = this.token(what);
    if (t.type !== 'list') throw new BadArgs(`Expected a parenthesized ${what}`);
    return t.items;
  }

  optionalList(): Token[] | null {
    const t = this.peek();
    if (t?.type !== 'list') return null;
    this.i++;
    return t.items;
  }

  number(what: string): number {
    return parseNumber(this.atom(what), what);
  }
}

export function parseNumber(text: string, what: string, max = 2 ** 63): number {
  if (!/^\d{1,20}$/.test(text)) throw new BadArgs(`Invalid ${what}`);
  const n = Number(text);
  if (n > max) throw new BadArgs(`Invalid ${what}`);
  return n;
}

export function mailboxName(name: string): string {
  const trimmed = name.replace(/\/+$/, '');
  return trimmed.toUpperCase() === 'INBOX' ? 'INBOX' : trimmed.toUpperCase().startsWith('INBOX/') ? `INBOX${trimmed.slice(5)}` : trimmed;
}

/** The flag names in a flag list (atoms such as \Seen or $Label). */
export function flagsOf(tokens: Token[]): string[] {
  return tokens.map((t) => {
    if (t.type !== 'atom') throw new BadArgs('Flags must be atoms');
    // flag-keyword = atom, or "\" atom (RFC 3501 9): 7-bit, no specials; stored flags are echoed in every FETCH.
    if (!/^\\?[^\x00-\x20\x7f-\uffff(){%*"\\\]]+$/.test(t.value)) throw new BadArgs('Invalid flag name');
    return t.value;
  });
}

/** RFC 3501 date: "1-Feb-1994" (SEARCH). Returns the UTC midnight of that day. */
export function parseSearchDate(text: string): Date {
  const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(text);
  const month = m ? MONTHS.indexOf(m[2]!.toLowerCase()) : -1;
  if (!m || month < 0) throw new BadArgs(`Invalid date ${text}`);
  return new Date(Date.UTC(Number(m[3]), month, Number(m[1])));
}

/** RFC 3501 date-time: "17-Jul-1996 02:44:25 -0700" (APPEND). */
export function parseDateTime(text: string): Date {
  const m = /^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$/.exec(text);
  const month = m ? MONTHS.indexOf(m[2]!.toLowerCase()) : -1;
  if (!m || month < 0) throw new BadArgs(`Invalid date-time ${text}`);
  const offset = (m[7] === '-' ? -1 : 1) * (Number(m[8]) * 60 + Number(m[9]));
  const utc = Date.UTC(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6])) - offset * 60_000;
  return new Date(utc);
}

/** Formats a date-time for INTERNALDATE: "17-Jul-1996 02:44:25 +0000". */
export function formatDateTime(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const month = MONTHS[d.getUTCMonth()]!;
  return `${pad(d.getUTCDate())}-${month[0]!.toUpperCase()}${month.slice(1)}-${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}
