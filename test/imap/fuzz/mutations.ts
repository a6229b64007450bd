/**
 * Mutations that turn a valid IMAP conversation into a hostile one: bytes flipped,
 * inserted (NUL, CR, LF, 8-bit, invalid UTF-8) or deleted, segments truncated, swapped,
 * duplicated or dropped, line ends changed, over-long lines, huge numbers (sequence sets,
 * partials, mod-sequences, literal sizes), literals whose announced size lies, clients that
 * do not wait for "+", deep nesting, odd tags, commands in the wrong state, floods, IDLE and
 * APPEND abuse (a refused first message of several), STARTTLS with pipelined bytes, and
 * strings built to make a careless server echo control characters or split its answer.
 * Expectations are dropped: only the protocol-level checks apply to a mutated conversation.
 */
import type { Prng } from '../../fuzz/prng.js';
import { commandSegments, type Part, type Segment } from './segments.js';

export interface MutationContext {
  root: string;
  maxMessageSize: number;
  /** The server's longest command line (a longer one is refused). */
  maxLine: number;
}

type Mutation = (r: Prng, segs: Segment[], ctx: MutationContext) => string;

/** Ids of the commands mutations add (above any a conversation has); reset for each case. */
let extraIds = 1_000_000;

/** A new command (its segments) with a fresh id and a tag of its own. */
function extra(r: Prng, parts: Part[], label: string): Segment[] {
  const id = extraIds++;
  const tag = r.pick(['m', 'M', 'z', 'm.']) + String(r.int(1, 999));
  return commandSegments(id, tag, parts, label);
}

const raw = (bytes: Buffer | string, label: string): Segment => ({
  bytes: typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes,
  label,
  command: extraIds++,
  tag: '',
});

const SPECIAL_BYTES: readonly Buffer[] = [
  [0x00],
  [0x0d],
  [0x0a],
  [0x0d, 0x0a],
  [0x7f],
  [0x1b],
  [0x09],
  [0xff],
  [0x80],
  [0xc3, 0x28],
  [0xc2, 0x85],
  [0xe2, 0x80, 0xa8],
  [0xc3, 0xbc],
  [0x7b], // {
  [0x7d], // }
  [0x28], // (
  [0x29], // )
  [0x22], // "
  [0x5c], // \
  [0x5b], // [
  [0x5d], // ]
  [0x2a], // *
  [0x20],
].map((b) => Buffer.from(b));

const pickIndex = (r: Prng, segs: Segment[]) => r.int(0, Math.max(0, segs.length - 1));
const insertAt = (r: Prng, segs: Segment[], add: Segment[]) => segs.splice(r.int(0, segs.length), 0, ...add);

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
  const add = r.chance(0.8) ? r.pick(SPECIAL_BYTES) : Buffer.from([r.int(0, 255)]);
  segs[i] = { ...s, bytes: Buffer.concat([s.bytes.subarray(0, pos), add, s.bytes.subarray(pos)]), label: `${s.label} [+${add.toString('hex')} at ${pos}]` };
  return `insert ${add.toString('hex')} into segment ${i}`;
};

const deleteBytes: Mutation = (r, segs) => {
  const i = pickIndex(r, segs);
  const s = segs[i];
  if (!s || s.bytes.length === 0) return 'delete: nothing to delete';
  const pos = r.int(0, s.bytes.length - 1);
  const n = r.weighted([
    [5, 1],
    [2, r.int(2, 8)],
    [1, r.int(1, s.bytes.length - pos)],
  ]);
  segs[i] = { ...s, bytes: Buffer.concat([s.bytes.subarray(0, pos), s.bytes.subarray(pos + n)]), label: `${s.label} [-${n} at ${pos}]` };
  return `delete ${n} byte(s) at ${pos} of segment ${i}`;
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

const lineEnds: Mutation = (r, segs) => {
  const i = pickIndex(r, segs);
  const s = segs[i];
  if (!s) return 'line ends: no segment';
  const to = r.pick(['\n', '\n', '\r', '\r\r\n', '\n\r']);
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

const hugeLine: Mutation = (r, segs, ctx) => {
  const length = r.weighted<number>([
    [3, r.int(1000, 9000)],
    [3, ctx.maxLine + r.int(-40, 40)],
    [2, r.int(ctx.maxLine + 100, 3 * ctx.maxLine)],
    [1, r.int(300_000, 1_200_000)],
  ]);
  const prefix = r.pick(['h1 ', 'h1 NOOP ', 'h1 LOGIN ', 'h1 SELECT ', 'h1 FETCH 1 ', 'h1 SEARCH TEXT ', 'h1 LIST "" ', 'h1 x', '', '* ']);
  const filler = r.weighted<() => Buffer>([
    [3, () => Buffer.alloc(length, r.pick(['a', '9', '(', '"', '1,', '%']))],
    [
      1,
      () => {
        const bytes = r.bytes(length);
        for (let i = 0; i < bytes.length; i++) if (bytes[i] === 10 || bytes[i] === 0x7d) bytes[i] = 32; // one line, no literal marker
        return bytes;
      },
    ],
    [1, () => Buffer.from(r.text(length, 'abc ()"\\[]<>.*:,'), 'latin1')],
  ])();
  const end = r.weighted([
    [8, '\r\n'],
    [1, '\n'],
    [1, ''],
  ]);
  insertAt(r, segs, [raw(Buffer.concat([Buffer.from(prefix), filler, Buffer.from(end)]), `huge line ${prefix.trim()}+${filler.length}`)]);
  return `huge line of ${prefix.length + filler.length} bytes${end ? '' : ' without line end'}`;
};

const hugeNumbers: Mutation = (r, segs) => {
  const big = () =>
    r.pick(['0', '4294967295', '4294967296', '18446744073709551615', '18446744073709551616', '99999999999999999999999', '-1', '00000000000000000001']);
  const text = r.pick([
    `FETCH ${big()} FLAGS`,
    `FETCH 1:${big()} UID`,
    `UID FETCH ${big()}:* (FLAGS)`,
    `FETCH 1 BODY[]<${big()}.${big()}>`,
    `FETCH 1 BODY[${big()}.${big()}]`,
    `FETCH 1 BODY.PEEK[1.${big()}.MIME]`,
    `STORE 1 (UNCHANGEDSINCE ${big()}) +FLAGS (\\Seen)`,
    `UID STORE ${big()} FLAGS ()`,
    `SEARCH LARGER ${big()}`,
    `SEARCH MODSEQ ${big()}`,
    `SEARCH UID 1:${big()}`,
    `FETCH 1:* (FLAGS) (CHANGEDSINCE ${big()})`,
    `SELECT INBOX (QRESYNC (${big()} ${big()} 1:${big()}))`,
    `COPY ${big()} INBOX`,
    `UID EXPUNGE ${big()}`,
    `APPEND INBOX {${big()}}`,
    `APPEND INBOX {${big()}+}`,
    `LOGIN {${big()}}`,
    `FETCH ${'1,'.repeat(r.int(1000, 60_000))}2 UID`,
    `SEARCH ${'NOT '.repeat(r.int(30, 5000))}ALL`,
    `SEARCH ${'OR ALL '.repeat(r.int(30, 3000))}ALL`,
  ]);
  insertAt(r, segs, extra(r, [text], `huge numbers: ${text.slice(0, 60)}`));
  return `huge numbers: ${text.slice(0, 80)}`;
};

/** A literal whose announced size is not the size of what follows. */
const lyingLiteral: Mutation = (r, segs) => {
  const candidates = segs.map((s, i) => [s, i] as const).filter(([s]) => /\{\d+\+?\}\r\n/.test(s.bytes.toString('latin1')));
  if (candidates.length === 0) {
    const announced = r.int(0, 200);
    const sent = Math.max(0, announced + r.pick([-5, -1, 1, 5, 100]));
    const sync = r.chance(0.5);
    insertAt(r, segs, [raw(`l1 LOGIN {${announced}${sync ? '' : '+'}}\r\n${'u'.repeat(sent)} pw\r\n`, `literal announced ${announced}, ${sent} sent`)]);
    return `lying literal (announced ${announced}, sent ${sent})`;
  }
  const [s, i] = r.pick(candidates);
  const text = s.bytes.toString('latin1');
  const matches = [...text.matchAll(/\{(\d+)(\+?)\}\r\n/g)];
  const m = r.pick(matches);
  const n = Number(m[1]);
  const lie = r.pick([0, 1, n - 1, n + 1, n + r.int(2, 500), Math.floor(n / 2), n * 2, 4294967295]);
  const replaced = `${text.slice(0, m.index)}{${lie}${m[2]}}\r\n${text.slice(m.index + m[0].length)}`;
  segs[i] = { ...s, bytes: Buffer.from(replaced, 'latin1'), label: `${s.label} [literal {${n}} announced as {${lie}}]` };
  return `literal of ${n} announced as ${lie} in segment ${i}`;
};

/** Synchronizing literals made LITERAL+ (or the reverse), or sent without waiting for "+". */
const literalFlavour: Mutation = (r, segs) => {
  const hasLiteral = (s: Segment) => s.awaitContinuation || /\{\d+\+\}\r\n/.test(s.bytes.toString('latin1'));
  const start = pickIndex(r, segs);
  let i = segs.findIndex((s, j) => j >= start && hasLiteral(s));
  if (i < 0) i = segs.findIndex(hasLiteral);
  const s = segs[i];
  if (!s) return 'literal flavour: no literal';
  const how = r.pick(['no wait', 'to LITERAL+', 'to sync']);
  if (how === 'no wait') {
    segs[i] = { ...s, awaitContinuation: false, label: `${s.label} [client does not wait for "+"]` };
    return `segment ${i}: client does not wait for "+"`;
  }
  const text = s.bytes.toString('latin1');
  const replaced = how === 'to LITERAL+' ? text.replace(/\{(\d+)\}\r\n$/, '{$1+}\r\n') : text.replace(/\{(\d+)\+\}\r\n/, '{$1}\r\n');
  segs[i] = { ...s, bytes: Buffer.from(replaced, 'latin1'), label: `${s.label} [${how}]` };
  return `segment ${i}: literal ${how}`;
};

const garbage: Mutation = (r, segs) => {
  const bytes = r.bytes(r.int(1, 3000));
  insertAt(r, segs, [raw(bytes, `${bytes.length} random bytes`)]);
  return `${bytes.length} random bytes`;
};

const randomCommand: Mutation = (r, segs) => {
  const verb = r.chance(0.5)
    ? r.pick([
        'FETCH',
        'STORE',
        'SEARCH',
        'LIST',
        'STATUS',
        'APPEND',
        'SELECT',
        'UID',
        'LOGIN',
        'AUTHENTICATE',
        'ENABLE',
        'ID',
        'IDLE',
        'COPY',
        'MOVE',
        'RENAME',
        'XYZZY',
      ])
    : r.text(r.int(1, 12), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ.-');
  const tokens: string[] = [];
  for (let i = r.int(0, 6); i > 0; i--) {
    tokens.push(
      r.pick([
        '()',
        '(',
        ')',
        '""',
        '"a b"',
        'NIL',
        '*',
        '1:*',
        '[',
        ']',
        'BODY[',
        'BODY[]<',
        '\\Seen',
        'INBOX',
        '{',
        '}',
        '%',
        '"\\x"',
        'UID',
        r.text(r.int(1, 10)),
      ]),
    );
  }
  insertAt(r, segs, extra(r, [`${verb}${tokens.length ? ' ' : ''}${tokens.join(r.pick([' ', ' ', '']))}`], `random command ${verb}`));
  return `random command ${verb}`;
};

const wrongState: Mutation = (r, segs) => {
  const text = r.pick([
    'FETCH 1:* ALL',
    'STORE 1 +FLAGS (\\Deleted)',
    'EXPUNGE',
    'CLOSE',
    'UNSELECT',
    'SELECT INBOX',
    'LOGIN alice@example.test password123',
    'AUTHENTICATE PLAIN',
    'AUTHENTICATE PLAIN =',
    'AUTHENTICATE PLAIN *',
    'AUTHENTICATE XOAUTH2 abc',
    'STARTTLS',
    'IDLE',
    'UID FETCH 1:* FLAGS',
    'ENABLE QRESYNC',
    'LOGOUT',
    'NOOP extra',
    'CHECK',
    'DELETE INBOX',
    'RENAME INBOX INBOX',
    'SETQUOTA "" (STORAGE 1)',
    'GETQUOTA ""',
    'UID NOOP',
    'UID',
    '',
  ]);
  insertAt(r, segs, extra(r, [text], `out of order: ${text || '(no command)'}`));
  return `command out of order: ${JSON.stringify(text)}`;
};

const oddTag: Mutation = (r, segs) => {
  const tag = r.pick([
    '*',
    '+',
    '',
    ' ',
    'a+b',
    'a"b',
    'a(b',
    'a{b',
    'a}b',
    'a]b',
    'a%b',
    'a\\b',
    'ñ',
    'x'.repeat(r.int(200, 3000)),
    'DONE',
    'a\x01b',
    'a\x7fb',
  ]);
  const command = r.pick(['NOOP', 'CAPABILITY', 'LOGIN {5}', 'LOGIN {5+}\r\nalice x', 'FETCH 1 UID', '']);
  insertAt(r, segs, [raw(`${tag} ${command}\r\n`, `odd tag ${JSON.stringify(tag.slice(0, 20))}`)]);
  return `odd tag ${JSON.stringify(tag.slice(0, 20))}${tag.length > 20 ? `… (${tag.length})` : ''}`;
};

const nesting: Mutation = (r, segs) => {
  const depth = r.pick([15, 16, 17, 33, 100, 3000]);
  const balanced = r.chance(0.7);
  const open = '('.repeat(depth);
  const close = balanced ? ')'.repeat(depth) : ')'.repeat(r.int(0, depth - 1));
  const text = r.pick([
    `SEARCH ${open}ALL${close}`,
    `FETCH 1 ${open}FLAGS${close}`,
    `ID ${open}${close}`,
    `STATUS INBOX ${open}MESSAGES${close}`,
    `LIST ${open}${close} "" *`,
  ]);
  insertAt(r, segs, extra(r, [text], `nesting ${depth}${balanced ? '' : ' (unbalanced)'}`));
  return `nesting of ${depth}${balanced ? '' : ', unbalanced'}`;
};

/** Strings that would make a careless server echo control characters, 8-bit bytes or whole lines. */
const echoProbe: Mutation = (r, segs, ctx) => {
  const bad = r.pick(['\r\n* OK injected\r\nz9 OK', '\x00', '\x1b[31m', '\r', '\n', '\x7f', '\xff\xfe', 'ü', '\u2028', '"', '\\', ')', '{5}', '}']);
  const name = `${ctx.root}/${bad}x`;
  const literal: Part = { literal: Buffer.from(name, r.chance(0.5) ? 'utf8' : 'latin1'), sync: r.chance(0.5) };
  const verb = r.pick([
    'SELECT ',
    'EXAMINE ',
    'STATUS ',
    'CREATE ',
    'DELETE ',
    'SUBSCRIBE ',
    'GETQUOTAROOT ',
    'RENAME ',
    'APPEND ',
    'LIST "" ',
    'COPY 1 ',
    'LOGIN ',
    'SEARCH CHARSET ',
  ]);
  const after =
    verb === 'STATUS '
      ? ' (MESSAGES)'
      : verb === 'RENAME '
        ? ` ${ctx.root}/y`
        : verb === 'APPEND '
          ? ' {3+}\r\nabc'
          : verb === 'LOGIN '
            ? ' pw'
            : verb === 'SEARCH CHARSET '
              ? ' ALL'
              : '';
  insertAt(r, segs, extra(r, [verb, literal, after], `echo probe ${verb.trim()} ${JSON.stringify(bad)}`));
  return `echo probe ${verb.trim()} ${JSON.stringify(bad)}`;
};

const idleAbuse: Mutation = (r, segs) => {
  const text = r.pick([
    'i1 IDLE\r\nNOT DONE\r\n',
    'i1 IDLE\r\nDONE\r\nDONE\r\n',
    'DONE\r\n',
    'i1 IDLE extra\r\nDONE\r\n',
    'i1 IDLE\r\n\r\n',
    'i1 IDLE\r\ni2 NOOP\r\n',
    'i1 IDLE\r\nDO',
    'i1 IDLE\r\nDONE',
    'i1 IDLE\r\nD\x00ONE\r\n',
    `i1 IDLE\r\n${'x'.repeat(70_000)}\r\n`,
  ]);
  insertAt(r, segs, [raw(text, `IDLE abuse ${JSON.stringify(text.slice(0, 30))}`)]);
  return `IDLE abuse ${JSON.stringify(text.slice(0, 40))}`;
};

const appendAbuse: Mutation = (r, segs, ctx) => {
  const big = ctx.maxMessageSize + r.int(1, 5000);
  const mailbox = r.pick(['INBOX', ctx.root, `${ctx.root}/none`]);
  const sync = r.chance(0.5) ? '' : '+';
  const body = (n: number) => Buffer.alloc(n, 'y');
  const injected = 'inj1 CREATE injected\r\n';
  const choice = r.pick(['too big', 'too big first of two', 'empty', 'over inline limit', 'lines as commands', 'no literal', 'two, second too big']);
  let bytes: Buffer;
  switch (choice) {
    case 'too big':
      bytes = Buffer.concat([Buffer.from(`ap1 APPEND ${mailbox} {${big}${sync}}\r\n`), ...(sync ? [body(big), Buffer.from('\r\n')] : [])]);
      break;
    case 'too big first of two':
      // LITERAL+: the refused first message is read and dropped; the second literal must be read too, never run as commands.
      bytes = Buffer.concat([Buffer.from(`ap1 APPEND ${mailbox} {${big}+}\r\n`), body(big), Buffer.from(` {${injected.length}+}\r\n${injected}\r\n`)]);
      break;
    case 'two, second too big':
      bytes = Buffer.concat([Buffer.from(`ap1 APPEND ${mailbox} {5+}\r\nhello {${big}+}\r\n`), body(big), Buffer.from('\r\n')]);
      break;
    case 'empty':
      bytes = Buffer.from(`ap1 APPEND ${mailbox} {0${sync}}\r\n\r\n`);
      break;
    case 'over inline limit':
      bytes = Buffer.concat([Buffer.from(`ap1 LOGIN {70000+}\r\n`), body(70_000), Buffer.from(' pw\r\n')]);
      break;
    case 'lines as commands':
      bytes = Buffer.from(`ap1 APPEND ${mailbox} {${injected.length + 10}+}\r\n0123456789${injected}\r\n`);
      break;
    default:
      bytes = Buffer.from(`ap1 APPEND ${mailbox} (\\Seen) "1-Jan-2020 00:00:00 +0000" hello\r\n`);
  }
  insertAt(r, segs, [raw(bytes, `APPEND abuse: ${choice}`)]);
  return `APPEND abuse: ${choice}`;
};

const startTlsInjection: Mutation = (r, segs) => {
  const after = r.pick(['s2 NOOP\r\n', 's2 LOGIN alice@example.test password123\r\n', '\x16\x03\x01garbage', 's2 CAPABILITY\r\n']);
  insertAt(r, segs, [raw(`s1 STARTTLS\r\n${after}`, `STARTTLS + pipelined ${JSON.stringify(after)}`)]);
  return `STARTTLS with pipelined ${JSON.stringify(after)}`;
};

const flood: Mutation = (r, segs) => {
  const kind = r.pick(['NOOP', 'bad', 'FETCH', 'empty']);
  const n = kind === 'bad' ? r.int(30, 80) : r.int(50, 400);
  const line: Record<string, (i: number) => string> = {
    NOOP: (i) => `f${i} NOOP\r\n`,
    bad: (i) => `f${i} BOGUS\r\n`,
    FETCH: (i) => `f${i} FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n`,
    empty: () => '\r\n',
  };
  const stall = r.chance(0.3) ? r.int(100, 1500) : 0;
  const bytes = Buffer.from(Array.from({ length: n }, (_, i) => line[kind]!(i)).join(''));
  insertAt(r, segs, [{ ...raw(bytes, `${n} × ${kind}${stall ? `, answers unread for ${stall} ms` : ''}`), ...(stall ? { stallReading: stall } : {}) }]);
  return `flood of ${n} ${kind}${stall ? ` (not reading for ${stall} ms)` : ''}`;
};

const MUTATIONS: ReadonlyArray<readonly [number, Mutation]> = [
  [6, flipByte],
  [5, insertBytes],
  [3, deleteBytes],
  [4, truncate],
  [2, lineEnds],
  [3, reorder],
  [2, hugeLine],
  [3, hugeNumbers],
  [3, lyingLiteral],
  [3, literalFlavour],
  [1, garbage],
  [3, randomCommand],
  [3, wrongState],
  [2, oddTag],
  [2, nesting],
  [3, echoProbe],
  [2, idleAbuse],
  [2, appendAbuse],
  [1, startTlsInjection],
  [1, flood],
];

/** Applies 1–5 mutations in place; returns what was done. */
export function mutate(r: Prng, segs: Segment[], ctx: MutationContext): string[] {
  extraIds = 1_000_000;
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
    if (r.chance(0.1)) delete s.syncAfter;
  }
  return done;
}
