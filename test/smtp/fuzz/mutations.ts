/**
 * Mutations that turn a valid conversation into a hostile one: byte flips, inserted
 * NUL/CR/LF/8-bit bytes, truncation, huge lines, huge counts, floods, random verbs,
 * commands in the wrong state, smuggling markers, STARTTLS injection, lines built to make
 * the server echo control characters, and reordering. Expectations are dropped: only the
 * protocol-level checks apply to a mutated conversation.
 */
import type { Prng } from '../../fuzz/prng.js';
import type { ConversationContext, Segment } from './segments.js';

type Mutation = (r: Prng, segs: Segment[], ctx: ConversationContext) => string;

const seg = (bytes: Buffer | string, label: string): Segment => ({ bytes: typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes, label });
const crlf = (text: string, label: string): Segment => seg(Buffer.from(`${text}\r\n`, 'utf8'), label);

/** Bytes that trip parsers: NUL, lone CR/LF, CRLF, DEL, ESC, 8-bit, invalid and control-ish UTF-8. */
const SPECIAL_BYTES: readonly Buffer[] = [
  [0x00],
  [0x0d],
  [0x0a],
  [0x0d, 0x0a],
  [0x7f],
  [0x1b],
  [0x09],
  [0x0c],
  [0xff],
  [0x80],
  [0xc3, 0x28], // invalid UTF-8
  [0xc2, 0x85], // U+0085 NEL, a C1 control
  [0xe2, 0x80, 0xa8], // U+2028 LINE SEPARATOR
  [0xc3, 0xbc], // ü
  [0xed, 0xa0, 0x80], // a UTF-16 surrogate, not valid UTF-8
].map((b) => Buffer.from(b));

function randomControl(r: Prng): Buffer {
  return r.chance(0.7) ? r.pick(SPECIAL_BYTES) : Buffer.from([r.int(0, 31)]);
}

const pickIndex = (r: Prng, segs: Segment[]) => r.int(0, Math.max(0, segs.length - 1));
const insertAt = (r: Prng, segs: Segment[], s: Segment) => segs.splice(r.int(0, segs.length), 0, s);

const flipByte: Mutation = (r, segs) => {
  const i = pickIndex(r, segs);
  const s = segs[i];
  if (!s || s.bytes.length === 0) return 'flip: nothing to flip';
  const bytes = Buffer.from(s.bytes);
  const pos = r.int(0, bytes.length - 1);
  bytes[pos] = r.chance(0.5) ? bytes[pos]! ^ (1 << r.int(0, 7)) : r.int(0, 255);
  segs[i] = { ...s, bytes, label: `${s.label} [byte ${pos} → 0x${bytes[pos].toString(16)}]` };
  return `flip byte ${pos} of segment ${i}`;
};

const insertBytes: Mutation = (r, segs) => {
  const i = pickIndex(r, segs);
  const s = segs[i];
  if (!s) return 'insert: no segment';
  const pos = r.int(0, s.bytes.length);
  const extra = randomControl(r);
  segs[i] = { ...s, bytes: Buffer.concat([s.bytes.subarray(0, pos), extra, s.bytes.subarray(pos)]), label: `${s.label} [+${extra.toString('hex')} at ${pos}]` };
  return `insert ${extra.toString('hex')} into segment ${i}`;
};

const truncate: Mutation = (r, segs) => {
  const i = pickIndex(r, segs);
  const s = segs[i];
  if (!s) return 'truncate: no segment';
  const keep = r.int(0, s.bytes.length);
  segs[i] = { ...s, bytes: s.bytes.subarray(0, keep), label: `${s.label} [cut to ${keep}]` };
  if (r.chance(0.5)) {
    segs.splice(i + 1);
    return `truncate conversation at segment ${i} byte ${keep}`;
  }
  return `truncate segment ${i} to ${keep} bytes`;
};

const hugeLine: Mutation = (r, segs, ctx) => {
  const max = ctx.limits.maxLineLength;
  const length = r.weighted<number>([
    [4, max - 2 + r.int(-3, 3)], // around the limit: CRLF counts or not
    [3, r.int(max, 3 * max)],
    [2, r.int(10_000, 100_000)],
    [1, r.int(200_000, 1_100_000)],
  ]);
  const prefix = r.pick(['', 'EHLO ', 'MAIL FROM:<', 'RCPT TO:<', 'NOOP ', 'VRFY ', 'BDAT ', 'HELO ']);
  const filler = r.weighted<() => Buffer>([
    [3, () => Buffer.alloc(length, r.pick(['a', 'x', '9', '.']))],
    [
      1,
      () => {
        const bytes = r.bytes(length);
        for (let i = 0; i < bytes.length; i++) if (bytes[i] === 10) bytes[i] = 32; // one line: no LF inside
        return bytes;
      },
    ],
    [1, () => Buffer.from(r.text(Math.min(length, 5000), 'abc<>@"\\ :.'), 'latin1')],
  ])();
  // A closed path makes the server parse (and perhaps quote) the huge address.
  const close = prefix.endsWith('<') && r.chance(0.6) ? r.pick(['>', '@example.test>', '@remote.test>']) : '';
  const end = r.weighted([
    [8, '\r\n'],
    [1, '\n'],
    [1, ''],
  ]);
  const bytes = Buffer.concat([Buffer.from(prefix), filler, Buffer.from(close + end)]);
  insertAt(r, segs, seg(bytes, `huge line ${prefix.trim()}+${filler.length}${close}`));
  return `huge line of ${prefix.length + filler.length} bytes${end ? '' : ' without line end'}`;
};

const hugeCount: Mutation = (r, segs, ctx) => {
  const big = ctx.limits.maxMessageSize;
  const choice = r.pick([
    'BDAT 999999999999999',
    'BDAT 999999999999999 LAST',
    'BDAT 9999999999999999',
    'BDAT 00000000000000000001 LAST',
    'BDAT -1',
    'BDAT 1 LAST LAST',
    'MAIL FROM:<a@remote.test> SIZE=999999999999999',
    'MAIL FROM:<a@remote.test> SIZE=9999999999999999999999',
    'MAIL FROM:<a@remote.test> SIZE=-5',
    'MAIL FROM:<a@remote.test> SIZE=0 SIZE=1 BODY=8BITMIME BODY=7BIT SMTPUTF8 SMTPUTF8',
    `BDAT ${big + 1} LAST`,
    `BDAT ${2 * big}`,
  ]);
  const withChunk = /^BDAT \d+/.test(choice) && r.chance(0.5);
  const bytes = withChunk ? Buffer.concat([Buffer.from(`${choice}\r\n`), Buffer.alloc(r.int(0, 2 * big), 'q')]) : Buffer.from(`${choice}\r\n`);
  insertAt(r, segs, seg(bytes, `${choice}${withChunk ? ` + ${bytes.length} bytes` : ''}`));
  return `huge count: ${choice}`;
};

const flood: Mutation = (r, segs, ctx) => {
  const kind = r.pick(['RCPT', 'NOOP', 'junk', 'MAIL', 'EHLO']);
  const n = kind === 'RCPT' ? r.int(ctx.limits.maxRecipients, ctx.limits.maxRecipients * 5) : kind === 'NOOP' ? r.int(90, 160) : r.int(15, 40);
  const text: Record<string, string> = {
    RCPT: `RCPT TO:<alice@${ctx.domain}>`,
    NOOP: 'NOOP',
    junk: 'XYZZY plugh',
    MAIL: 'MAIL FROM:<a@remote.test>',
    EHLO: 'EHLO again.test',
  };
  insertAt(r, segs, seg(Buffer.from(`${text[kind]}\r\n`.repeat(n)), `${n} × ${kind}`));
  return `flood of ${n} ${kind}`;
};

/** Tens of thousands of pipelined RCPTs (each answered, none counted as an error) while the client reads nothing for a while. */
const pipelineFlood: Mutation = (r, segs, ctx) => {
  const n = r.int(5_000, 30_000);
  const bytes = Buffer.from(`MAIL FROM:<flood@remote.test>\r\n${`RCPT TO:<alice@${ctx.domain}>\r\n`.repeat(n)}`);
  const stall = r.chance(0.6) ? r.int(100, 1500) : 0;
  insertAt(r, segs, { ...seg(bytes, `MAIL + ${n} × RCPT${stall ? `, replies unread for ${stall} ms` : ''}`), ...(stall ? { stallReading: stall } : {}) });
  return `pipelined flood of ${n} RCPT${stall ? ` (not reading for ${stall} ms)` : ''}`;
};

const randomVerb: Mutation = (r, segs) => {
  const verb = r.text(r.int(1, 12), 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz');
  const arg = r.chance(0.5) ? ` ${r.text(r.int(0, 40), 'abc:<>@. =\t"\\')}` : '';
  insertAt(r, segs, crlf(`${verb}${arg}`, 'random verb'));
  return `random verb ${verb}`;
};

const garbage: Mutation = (r, segs) => {
  const bytes = r.bytes(r.int(1, 3000));
  insertAt(r, segs, seg(bytes, `${bytes.length} random bytes`));
  return `${bytes.length} random bytes`;
};

const wrongState: Mutation = (r, segs, ctx) => {
  const command = r.pick([
    'DATA',
    'BDAT 10',
    'BDAT 0 LAST',
    `RCPT TO:<alice@${ctx.domain}>`,
    'MAIL FROM:<>',
    'STARTTLS',
    'EHLO wrong.test',
    'HELO wrong.test',
    'LHLO wrong.test',
    'RSET',
    'QUIT',
    'EXPN staff',
    '.',
    '',
    'DATA extra',
    'STARTTLS now',
  ]);
  insertAt(r, segs, crlf(command, `out of order: ${command}`));
  return `command out of order: ${JSON.stringify(command)}`;
};

/** Lines that would make a careless server echo control characters back. */
const echoProbe: Mutation = (r, segs, ctx) => {
  const bad = Buffer.concat([randomControl(r), r.chance(0.5) ? randomControl(r) : Buffer.alloc(0)]).toString('latin1');
  const template = r.pick([
    'EHLO a#b',
    'HELO #',
    'LHLO x#y',
    'MAIL FROM:<a@remote.test> #=1',
    'MAIL FROM:<a@remote.test> X#Y',
    'MAIL FROM:<a@remote.test> BODY=#',
    'MAIL FROM:<a#b@remote.test>',
    'MAIL FROM:<a@re#mote.test>',
    `RCPT TO:<a#b@${ctx.domain}>`,
    'RCPT TO:<#>',
    'RCPT TO:<a@b.test> NOTIFY=#',
    'VRFY #',
    'BDAT #',
    '#',
  ]);
  const text = Buffer.from(template.replace('#', bad), 'latin1');
  insertAt(r, segs, seg(Buffer.concat([text, Buffer.from('\r\n')]), `echo probe ${JSON.stringify(text.toString('latin1'))}`));
  return `echo probe ${JSON.stringify(text.toString('latin1'))}`;
};

const smuggleMarker: Mutation = (r, segs) => {
  const marker = r.pick(['\r\n.\r\n', '\n.\n', '\r\n.\n', '\n.\r\n', '\r.\r', '.\r\n', '\r\n..\r\n']);
  const i = pickIndex(r, segs);
  const s = segs[i];
  if (!s) return 'smuggle: no segment';
  const pos = r.int(0, s.bytes.length);
  const tail = r.chance(0.5) ? 'MAIL FROM:<evil@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n' : '';
  const bytes = Buffer.concat([s.bytes.subarray(0, pos), Buffer.from(marker + tail), s.bytes.subarray(pos)]);
  segs[i] = { ...s, bytes, label: `${s.label} [+${JSON.stringify(marker)}${tail ? ' + smuggled commands' : ''}]` };
  return `smuggling marker ${JSON.stringify(marker)} in segment ${i}`;
};

const startTlsInjection: Mutation = (r, segs) => {
  const after = r.pick(['NOOP\r\n', 'RSET\r\nMAIL FROM:<evil@remote.test>\r\n', '\x16\x03\x01garbage', 'EHLO injected.test\r\n']);
  insertAt(r, segs, seg(Buffer.from(`STARTTLS\r\n${after}`, 'latin1'), `STARTTLS + pipelined ${JSON.stringify(after)}`));
  return `STARTTLS with pipelined ${JSON.stringify(after)}`;
};

const lineEnds: Mutation = (r, segs) => {
  const i = pickIndex(r, segs);
  const s = segs[i];
  if (!s) return 'line ends: no segment';
  const to = r.pick(['\n', '\r', '\r\r\n', '\n\r']);
  const bytes = Buffer.from(s.bytes.toString('latin1').replaceAll('\r\n', to), 'latin1');
  segs[i] = { ...s, bytes, label: `${s.label} [CRLF → ${JSON.stringify(to)}]` };
  return `line ends of segment ${i} → ${JSON.stringify(to)}`;
};

const reorder: Mutation = (r, segs) => {
  if (segs.length < 2) return 'reorder: too few segments';
  const i = pickIndex(r, segs);
  const j = pickIndex(r, segs);
  const how = r.pick(['swap', 'duplicate', 'delete']);
  if (how === 'swap') [segs[i], segs[j]] = [segs[j]!, segs[i]!];
  else if (how === 'duplicate') segs.splice(j, 0, { ...segs[i]! });
  else segs.splice(i, 1);
  return `${how} segment ${i}${how === 'delete' ? '' : ` / ${j}`}`;
};

const MUTATIONS: ReadonlyArray<readonly [number, Mutation]> = [
  [6, flipByte],
  [5, insertBytes],
  [4, truncate],
  [3, hugeLine],
  [3, hugeCount],
  [2, flood],
  [0.3, pipelineFlood],
  [3, randomVerb],
  [2, garbage],
  [4, wrongState],
  [5, echoProbe],
  [3, smuggleMarker],
  [2, startTlsInjection],
  [2, lineEnds],
  [3, reorder],
];

/** Applies 1–5 mutations in place; returns what was done. */
export function mutate(r: Prng, segs: Segment[], ctx: ConversationContext): string[] {
  const done: string[] = [];
  const n = r.weighted([
    [5, 1],
    [3, 2],
    [2, 3],
    [1, 5],
  ]);
  for (let i = 0; i < n; i++) done.push(r.weighted(MUTATIONS)(r, segs, ctx));
  for (const s of segs) {
    delete s.expect;
    if (r.chance(0.2)) delete s.syncAfter;
  }
  return done;
}
