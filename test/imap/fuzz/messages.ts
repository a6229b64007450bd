/**
 * Random messages for IMAP APPEND and for the mailboxes a run starts with: plain text,
 * quoted-printable, base64 attachments, multipart/alternative and /mixed nested a few
 * levels, message/rfc822 parts, encoded words and raw UTF-8, and broken ones (a boundary
 * that never ends, header lines without a colon, bare LF line ends, no body, a very long
 * header line), padded to a chosen size. Derived from the PRNG only.
 */
import type { Prng } from '../../fuzz/prng.js';

const WORDS = ['tern', 'fuzz', 'hello', 'world', 'message', 'mailbox', 'quota', 'idle', 'fetch', 'search', 'Grüße', 'naïve', '日本', 'résumé'];

function words(r: Prng, n: number, ascii: boolean): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(ascii ? r.pick(WORDS.slice(0, 10)) : r.pick(WORDS));
  return out.join(' ');
}

function date(r: Prng): string {
  const days = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${r.pick(days)}, ${r.int(1, 28)} ${r.pick(months)} ${r.int(1995, 2030)} ${pad(r.int(0, 23))}:${pad(r.int(0, 59))}:${pad(r.int(0, 59))} ${r.pick(['+0000', '-0700', '+0530'])}`;
}

function headers(r: Prng, eightBit: boolean): string[] {
  const subject = r.weighted<() => string>([
    [5, () => `fuzz ${words(r, r.int(1, 6), true)}`],
    [2, () => `=?UTF-8?B?${Buffer.from(words(r, 3, false)).toString('base64')}?= tail`],
    [1, () => `=?ISO-8859-1?Q?caf=E9_=3F?=`],
    [eightBit ? 2 : 0, () => words(r, 4, false)],
    [1, () => ''],
  ])();
  const lines = [
    `From: ${r.pick(['Alice <alice@example.test>', '"Bob, Jr." <bob@example.test>', 'sender@remote.test', '=?UTF-8?Q?J=C3=B6rg?= <j@remote.test>', 'undisclosed-recipients:;'])}`,
    `To: ${r.pick(['alice@example.test', 'Group: a@x.test, b@y.test;', '<bob@example.test>, "C" <c@remote.test>'])}`,
    `Subject: ${subject}`,
    `Date: ${r.chance(0.9) ? date(r) : 'not a date'}`,
    `Message-ID: <${r.text(12)}@remote.test>`,
  ];
  if (r.chance(0.3)) lines.push(`Cc: carol@remote.test`);
  if (r.chance(0.2)) lines.push(`In-Reply-To: <${r.text(8)}@remote.test>`);
  if (r.chance(0.2)) lines.push(`X-Folded: first part\r\n\tsecond part\r\n  third`);
  if (r.chance(0.1)) lines.push(`X-Long: ${'h'.repeat(r.int(900, 5000))}`);
  if (r.chance(0.05)) lines.push('this line has no colon');
  return lines;
}

function textBody(r: Prng, eightBit: boolean): { head: string[]; body: string } {
  const lines: string[] = [];
  for (let i = r.int(0, 12); i > 0; i--) lines.push(words(r, r.int(0, 12), !eightBit));
  switch (r.int(0, 3)) {
    case 0:
      return { head: ['Content-Type: text/plain; charset=us-ascii'], body: lines.join('\r\n') };
    case 1:
      return {
        head: ['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable'],
        body: `caf=C3=A9 soft=\r\nbreak ${lines.join('=0D=0A')}`,
      };
    case 2:
      return { head: ['Content-Type: text/html; charset=utf-8'], body: `<p>${lines.join('<br>')}</p>` };
    default:
      return { head: ['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit'], body: lines.join('\r\n') };
  }
}

function attachment(r: Prng): { head: string[]; body: string } {
  const data = r.bytes(r.int(0, 3000)).toString('base64');
  return {
    head: [`Content-Type: application/octet-stream; name="f${r.text(4)}.bin"`, 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment'],
    body: data.replace(/.{76}/g, '$&\r\n'),
  };
}

/** One MIME entity: its header lines and body, nested up to `depth`. */
function entity(r: Prng, depth: number, eightBit: boolean): { head: string[]; body: string } {
  const kind =
    depth <= 0
      ? r.pick(['text', 'text', 'attachment'])
      : r.weighted<string>([
          [4, 'text'],
          [2, 'attachment'],
          [3, 'multipart'],
          [1, 'message'],
        ]);
  if (kind === 'text') return textBody(r, eightBit);
  if (kind === 'attachment') return attachment(r);
  if (kind === 'message') {
    const inner = entity(r, depth - 1, eightBit);
    return { head: ['Content-Type: message/rfc822'], body: [...headers(r, eightBit), ...inner.head, '', inner.body].join('\r\n') };
  }
  const boundary = `b${r.text(10)}`;
  const parts: string[] = [];
  for (let i = r.int(1, 3); i > 0; i--) {
    const p = entity(r, depth - 1, eightBit);
    parts.push(`--${boundary}\r\n${[...p.head, '', p.body].join('\r\n')}\r\n`);
  }
  const broken = r.chance(0.05);
  const subtype = r.pick(['mixed', 'alternative', 'related']);
  return {
    head: [`Content-Type: multipart/${subtype}; boundary="${boundary}"`],
    body: `preamble\r\n${parts.join('')}${broken ? '' : `--${boundary}--\r\n`}epilogue`,
  };
}

/** A message of roughly `size` bytes or more (padding lines are added to reach it). */
export function randomMessage(r: Prng, size = 0): Buffer {
  const eightBit = r.chance(0.3);
  const top = entity(r, r.int(0, 3), eightBit);
  const head = [...headers(r, eightBit), 'MIME-Version: 1.0', ...top.head];
  let text: string;
  if (r.chance(0.03))
    text = `${head.join('\r\n')}\r\n`; // no body, no blank line
  else text = `${head.join('\r\n')}\r\n\r\n${top.body}\r\n`;
  if (r.chance(0.05)) text = text.replace(/\r\n/g, '\n');
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length >= size) return bytes;
  const line = `${'p'.repeat(70)}\r\n`;
  return Buffer.concat([bytes, Buffer.from(line.repeat(Math.ceil((size - bytes.length) / line.length)), 'latin1')]);
}

/** A size for a message to append: mostly small, sometimes tens of kB, rarely over `maxSize`. */
export function messageSize(r: Prng, maxSize: number): number {
  return r.weighted<() => number>([
    [20, () => 0],
    [6, () => r.int(1000, 8000)],
    [2, () => r.int(8000, maxSize - 2000)],
    [1, () => r.int(maxSize + 1, maxSize + 30_000)],
  ])();
}
