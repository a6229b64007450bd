// The messages the IMAP bench appends: deterministic for an index (both servers get the
// same bytes), about SIZE bytes each, with realistic headers (Received, Message-ID,
// threading), varied senders and subjects, and some multipart ones (alternative every
// 10th, a base64 attachment every 25th). Known fractions match the bench's searches.

/** Searches the bench runs, and which messages match them. */
export const SEARCH_TERMS = {
  /** SUBJECT: every 8th message's subject carries the word. */
  subject: 'invoice',
  /** FROM: one sender in SENDERS. */
  from: 'alice',
  /** BODY: every 50th message's text carries the word. */
  body: 'kittiwake',
} as const;

const SENDERS = [
  ['Alice Martin', 'alice.martin@example.org'],
  ['Bob Nguyen', 'bob@lists.example.net'],
  ['Carla Rossi', 'c.rossi@example.it'],
  ['Deepak Sharma', 'deepak.sharma@example.in'],
  ['Eve Müller', 'eve.mueller@example.de'],
  ['Frank O’Brien', 'frank@example.ie'],
  ['GitHub', 'noreply@github.example.com'],
  ['Hana Sato', 'hana.sato@example.jp'],
  ['Ivan Petrov', 'ivan@example.ru'],
  ['Julia Santos', 'julia.santos@example.com.br'],
  ['Kofi Mensah', 'kofi@example.gh'],
  ['Monitoring', 'alerts@monitoring.example.com'],
] as const;

const TOPICS = [
  'quarterly report',
  'meeting notes',
  'release 2.4 plan',
  'lunch on Friday',
  'travel booking',
  'build failed on main',
  'contract renewal',
  'weekly digest',
  'server maintenance window',
  'question about the API',
  'holiday schedule',
  'design review',
];

const WORDS = (
  'the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were her ' +
  'all she there would their we him been has when who will more no if out so said what up its about into than them can only ' +
  'other new some could time these two may then do first any my now such like our over man me even most made after also did ' +
  'many before must through back years where much your way well down should because each just those people how too little ' +
  'state good very make world still own see men work long get here between both life being under never day same another know ' +
  'while last might us great old year off come since against go came right used take three mailbox server delivery queue ' +
  'message folder account backup storage network invoice payment order shipment schedule report budget project review'
).split(' ');

/** A small deterministic generator (mulberry32), seeded per message. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(next: () => number, items: readonly T[]): T {
  return items[Math.floor(next() * items.length)]!;
}

/** Text lines of at most 72 characters, about `bytes` long in all. */
function paragraphs(next: () => number, bytes: number, extraWord?: string): string {
  const lines: string[] = [];
  let line = '';
  let total = 0;
  let words = 0;
  while (total + line.length < bytes) {
    let word = pick(next, WORDS);
    if (extraWord && words === 17) word = extraWord;
    words += 1;
    if (line.length + word.length + 1 > 72) {
      lines.push(line);
      total += line.length + 2;
      line = '';
      if (next() < 0.12) lines.push('');
    }
    line = line ? `${line} ${word}` : word.charAt(0).toUpperCase() + word.slice(1);
  }
  if (line) lines.push(`${line}.`);
  return lines.join('\r\n');
}

function base64Lines(next: () => number, bytes: number): string {
  const raw = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) raw[i] = Math.floor(next() * 256);
  return (raw.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
}

const BASE_DATE = Date.UTC(2024, 0, 2, 8, 0, 0);

/** Message number `index` (0-based) of about `size` bytes, CRLF line ends. */
export function benchMessage(index: number, size: number): Buffer {
  const next = random(index * 2654435761 + 12345);
  const [name, address] = SENDERS[index % SENDERS.length]!;
  const topic = pick(next, TOPICS);
  const subject =
    index % 8 === 3 ? `Invoice ${10000 + index} for ${topic}` : `${index % 5 === 0 ? 'Re: ' : ''}${topic[0]!.toUpperCase()}${topic.slice(1)} (#${index})`;
  const date = new Date(BASE_DATE + index * 97_000);
  const messageId = `<${index.toString(36)}.${Math.floor(next() * 1e9).toString(36)}@${address.split('@')[1]}>`;
  const headers = [
    `Return-Path: <${address}>`,
    `Received: from mail.${address.split('@')[1]} (mail.${address.split('@')[1]} [192.0.2.${1 + (index % 250)}])\r\n\tby mx.bench.test with ESMTPS id ${index.toString(16)}\r\n\tfor <bench@bench.test>; ${date.toUTCString().replace('GMT', '+0000')}`,
    `Date: ${date.toUTCString().replace('GMT', '+0000')}`,
    `From: ${/[^\x20-\x7e]/.test(name) ? `=?UTF-8?B?${Buffer.from(name).toString('base64')}?=` : `"${name}"`} <${address}>`,
    `To: Bench User <bench@bench.test>`,
    ...(index % 4 === 1 ? [`Cc: Team <team@bench.test>, ${pick(next, SENDERS)[1]}`] : []),
    `Subject: ${subject}`,
    `Message-ID: ${messageId}`,
    ...(subject.startsWith('Re: ')
      ? [`In-Reply-To: <${(index - 1).toString(36)}.thread@bench.test>`, `References: <${(index - 1).toString(36)}.thread@bench.test>`]
      : []),
    'MIME-Version: 1.0',
    `X-Mailer: BenchMail ${1 + (index % 3)}.${index % 10}`,
  ];
  const extraWord = index % 50 === 7 ? SEARCH_TERMS.body : undefined;
  const headerBytes = headers.join('\r\n').length + 200;
  const textBytes = Math.max(200, size - headerBytes);
  let body: string[];
  if (index % 25 === 4) {
    const boundary = `mixed-${index}`;
    headers.push(`Content-Type: multipart/mixed; boundary="${boundary}"`);
    const text = Math.floor(textBytes * 0.4);
    body = [
      'This is a multi-part message in MIME format.',
      `--${boundary}`,
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 7bit',
      '',
      paragraphs(next, text, extraWord),
      `--${boundary}`,
      `Content-Type: application/pdf; name="report-${index}.pdf"`,
      `Content-Disposition: attachment; filename="report-${index}.pdf"`,
      'Content-Transfer-Encoding: base64',
      '',
      base64Lines(next, Math.floor(((textBytes - text - 300) * 3) / 4)),
      `--${boundary}--`,
      '',
    ];
  } else if (index % 10 === 6) {
    const boundary = `alt-${index}`;
    headers.push(`Content-Type: multipart/alternative; boundary="${boundary}"`);
    const text = paragraphs(next, Math.floor(textBytes * 0.45), extraWord);
    body = [
      `--${boundary}`,
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 7bit',
      '',
      text,
      `--${boundary}`,
      'Content-Type: text/html; charset=utf-8',
      'Content-Transfer-Encoding: 7bit',
      '',
      `<html><body><p>${text.replace(/\r\n\r\n/g, '</p>\r\n<p>')}</p></body></html>`,
      `--${boundary}--`,
      '',
    ];
  } else {
    headers.push('Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 7bit');
    body = [paragraphs(next, textBytes, extraWord), '', '-- ', name, ''];
  }
  return Buffer.from(`${headers.join('\r\n')}\r\n\r\n${body.join('\r\n')}`);
}
