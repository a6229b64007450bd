/**
 * mbox files in the mboxrd flavour: each message starts with a `From sender date` line
 * (the envelope sender and an asctime date, UTC here); a body line matching `^>*From ` gets
 * one more '>' when written and loses one when read, so any message survives a round trip.
 * Reading also takes mboxo and mboxcl2 files as they come: messages are split at From_
 * lines after an empty line, a Content-Length header is not trusted, and an mboxo
 * `>From ` line loses its '>' (mboxo cannot tell the two apart). Pure: no files here.
 */
import { UserError } from '../errors.js';

export interface MboxMessage {
  /** The From_ line's envelope sender ('' for MAILER-DAEMON). */
  sender: string;
  date: Date | null;
  /** The message with CRLF line ends, unquoted. */
  data: Buffer;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const pad = (n: number) => String(n).padStart(2, '0');

/** asctime(3) in UTC: `Mon Jan  1 00:00:00 2024`. */
export function asctime(d: Date): string {
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

export function fromLine(sender: string, date: Date): string {
  return `From ${sender && !/\s/.test(sender) ? sender : 'MAILER-DAEMON'} ${asctime(date)}\n`;
}

/** A From_ line's sender and date; null when the line is no From_ line. */
export function parseFromLine(line: string): { sender: string; date: Date | null } | null {
  const m = /^From (\S*) +(.*)$/.exec(line.replace(/\r?\n$/, ''));
  if (!m) return null;
  const d = /(\w{3}) +(\d{1,2}) (\d{1,2}):(\d\d)(?::(\d\d))?(?: +[A-Z]{3,4})? +(\d{4})/.exec(m[2]!);
  if (!d) return null;
  const month = MONTHS.indexOf(d[1]!);
  const date = month < 0 ? null : new Date(Date.UTC(Number(d[6]), month, Number(d[2]), Number(d[3]), Number(d[4]), Number(d[5] ?? 0)));
  return { sender: m[1] === 'MAILER-DAEMON' ? '' : m[1]!, date };
}

const QUOTED = /^>*From /;

/**
 * One message as an mboxrd entry: the From_ line, the message with LF line ends and its
 * `>*From ` lines quoted, and the empty line that ends it.
 */
export function mboxEntry(sender: string, date: Date, message: Buffer): Buffer {
  const text = message.toString('latin1').replace(/\r\n/g, '\n');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const body = lines.map((l) => (QUOTED.test(l) ? `>${l}` : l)).join('\n');
  return Buffer.from(`${fromLine(sender, date)}${body}\n\n`, 'latin1');
}

/**
 * Flags that mbox readers (mutt, Pine, Thunderbird) keep in the message's own `Status:` and
 * `X-Status:` header fields: R (read) is \Seen; A, F, D and T are \Answered, \Flagged,
 * \Deleted and \Draft. The fields stay in the message.
 */
export function mboxFlags(data: Buffer): string[] {
  const end = data.indexOf('\r\n\r\n');
  const header = data.subarray(0, end < 0 ? Math.min(data.length, 65536) : end).toString('latin1');
  const flags = new Set<string>();
  for (const m of header.matchAll(/^(X-)?Status:[ \t]*([A-Za-z]*)/gim)) {
    const letters = m[2]!.toUpperCase();
    const table: Array<[string, string]> = m[1]
      ? [
          ['A', '\\Answered'],
          ['F', '\\Flagged'],
          ['D', '\\Deleted'],
          ['T', '\\Draft'],
        ]
      : [['R', '\\Seen']];
    for (const [letter, flag] of table) if (letters.includes(letter)) flags.add(flag);
  }
  return [...flags];
}

/** Undoes mboxrd quoting of one line (without its line end). */
export const unquote = (line: string): string => (/^>+From /.test(line) ? line.slice(1) : line);

/**
 * Splits an mbox file's bytes into messages, one at a time (only the current message is
 * held). UserError when the file does not start with a From_ line: it is not an mbox file.
 */
export async function* readMbox(chunks: AsyncIterable<Buffer>): AsyncGenerator<MboxMessage> {
  let rest = '';
  let current: { sender: string; date: Date | null; lines: string[] } | null = null;
  let previousEmpty = true;
  let sawAny = false;
  const finish = (m: NonNullable<typeof current>): MboxMessage => {
    // The empty line before the next From_ line separates; it is not part of the message.
    if (m.lines.length > 0 && m.lines[m.lines.length - 1] === '') m.lines.pop();
    return { sender: m.sender, date: m.date, data: Buffer.from(m.lines.map((l) => `${unquote(l)}\r\n`).join(''), 'latin1') };
  };
  const take = function* (line: string): Generator<MboxMessage> {
    const from = previousEmpty && line.startsWith('From ') ? parseFromLine(line) : null;
    if (!sawAny) {
      if (line === '' && !current) return;
      if (!from) throw new UserError('not an mbox file (it does not start with a "From " line)');
      sawAny = true;
    }
    if (from) {
      if (current) yield finish(current);
      current = { sender: from.sender, date: from.date, lines: [] };
    } else current!.lines.push(line);
    previousEmpty = line === '';
  };
  for await (const chunk of chunks) {
    rest += chunk.toString('latin1');
    const lines = rest.split('\n');
    rest = lines.pop()!;
    for (const raw of lines) yield* take(raw.replace(/\r$/, ''));
  }
  if (rest !== '') yield* take(rest.replace(/\r$/, ''));
  if (!sawAny) throw new UserError('not an mbox file (it is empty)');
  if (current) yield finish(current);
}
