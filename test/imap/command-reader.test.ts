/** The IMAP command reader and argument parsers, table-driven, without sockets. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDateTime } from '../../src/imap/proto/args.js';
import { CommandReader, type ReaderEvent, type Token } from '../../src/imap/proto/command-reader.js';
import { parseFetchItems, parseSection } from '../../src/imap/proto/fetch-items.js';
import { parseSearch } from '../../src/imap/proto/search-keys.js';
import { formatSequenceSet, parseSequenceSet, resolveRanges } from '../../src/imap/proto/sequence-set.js';

/** Feeds `input` (in pieces of `step` bytes) and collects events, accepting every literal into memory. */
function read(input: string | Buffer, step = Infinity): ReaderEvent[] {
  const reader = new CommandReader();
  const bytes = Buffer.from(input);
  const events: ReaderEvent[] = [];
  for (let i = 0; i < bytes.length; i += step === Infinity ? bytes.length : step) {
    reader.push(bytes.subarray(i, i + (step === Infinity ? bytes.length : step)));
    for (let e = reader.next(); e; e = reader.next()) {
      events.push(e);
      if (e.kind === 'literal') reader.accept('buffer');
    }
  }
  return events;
}

const atom = (value: string): Token => ({ type: 'atom', value });
const str = (value: string): Token => ({ type: 'string', value });

function commands(events: ReaderEvent[]) {
  return events.filter((e) => e.kind === 'command' || e.kind === 'error');
}

describe('IMAP command reader', () => {
  it('reads atoms, quoted strings with escapes, nested lists and sections inside atoms', () => {
    const [cmd] = commands(read('a1 FETCH 1:*,3 (UID BODY.PEEK[HEADER.FIELDS (From "To")]<0.100> (x (y)) "q\\"u\\\\ote")\r\n'));
    assert.ok(cmd?.kind === 'command');
    assert.equal(cmd.tag, 'a1');
    assert.equal(cmd.name, 'FETCH');
    assert.deepEqual(cmd.args, [
      atom('1:*,3'),
      {
        type: 'list',
        items: [
          atom('UID'),
          atom('BODY.PEEK[HEADER.FIELDS (From "To")]<0.100>'),
          { type: 'list', items: [atom('x'), { type: 'list', items: [atom('y')] }] },
          str('q"u\\ote'),
        ],
      },
    ]);
  });

  it('handles synchronizing and non-synchronizing literals, split anywhere', () => {
    for (const step of [1, 2, 7, Infinity]) {
      const events = read('t LOGIN {5}\r\nalice {3+}\r\npw!\r\nt2 NOOP\r\n', step);
      const literalEvents = events.filter((e) => e.kind === 'literal');
      assert.deepEqual(
        literalEvents.map((e) => e.kind === 'literal' && [e.size, e.sync]),
        [
          [5, true],
          [3, false],
        ],
      );
      const cmds = commands(events);
      assert.equal(cmds.length, 2, `step ${step}`);
      const login = cmds[0]!;
      assert.ok(login.kind === 'command');
      assert.deepEqual(
        login.args.map((t) => t.type === 'string' && t.value),
        ['alice', 'pw!'],
      );
      assert.equal(cmds[1]!.kind === 'command' && cmds[1]!.name, 'NOOP');
    }
  });

  it('streams a literal the session asks to stream', () => {
    const reader = new CommandReader();
    reader.push(Buffer.from('a APPEND INBOX (\\Seen) {10}\r\n0123456789\r\n'));
    const first = reader.next();
    assert.equal(first?.kind, 'literal');
    reader.accept('stream');
    const data: Buffer[] = [];
    let done: ReaderEvent | null = null;
    for (let e = reader.next(); e; e = reader.next()) {
      if (e.kind === 'literal-data') data.push(e.data);
      else done = e;
    }
    assert.equal(Buffer.concat(data).toString(), '0123456789');
    assert.ok(done?.kind === 'command');
    assert.deepEqual(done.args[2], { type: 'streamed', size: 0 });
  });

  it('answers malformed commands with an error and keeps reading', () => {
    const cases: Array<[string, RegExp]> = [
      ['a1 FETCH (1\r\n', /Unbalanced/],
      ['a2 FETCH 1 "unterminated\r\n', /Unterminated/],
      ['a3 LOGIN "bad\\escape" x\r\n', /escape/],
      ['a4 FETCH 1 BODY[HEADER\r\n', /Unbalanced brackets/],
      ['+bad NOOP\r\n', /Invalid tag/],
      ['a5\r\n', /Missing command name/],
      ['a6 FETCH 1 ((((((((((((((((((((x))))))))))))))))))))\r\n', /nested/],
    ];
    for (const [input, error] of cases) {
      const events = commands(read(`${input}z NOOP\r\n`));
      assert.equal(events[0]!.kind, 'error', input);
      assert.match(events[0]!.kind === 'error' ? events[0]!.text : '', error, input);
      assert.equal(events[1]!.kind === 'command' && events[1]!.name, 'NOOP', `survives ${input}`);
    }
  });

  it('refuses an over-long line and a refused LITERAL+ is skipped with its command', () => {
    const long = commands(read(`a1 NOOP ${'x'.repeat(70_000)}\r\nb NOOP\r\n`));
    assert.equal(long[0]!.kind, 'error');
    assert.equal(long[1]!.kind === 'command' && long[1]!.tag, 'b');

    const reader = new CommandReader();
    reader.push(Buffer.from('c APPEND INBOX {5+}\r\nHELLO rest of line\r\nd NOOP\r\n'));
    const lit = reader.next();
    assert.equal(lit?.kind, 'literal');
    reader.reject('NO [TOOBIG] too big');
    const refused = reader.next();
    assert.ok(refused?.kind === 'error' && refused.answer === 'NO [TOOBIG] too big' && refused.tag === 'c');
    const next = reader.next();
    assert.ok(next?.kind === 'command' && next.tag === 'd');
  });

  it('counts the literals it holds toward the command limit', () => {
    const reader = new CommandReader({ maxLine: 1024, maxInlineLiteral: 100, maxCommand: 300, maxDepth: 4 });
    reader.push(Buffer.from(`a NOOP {100+}\r\n${'x'.repeat(100)} {100+}\r\n${'y'.repeat(100)} {100+}\r\n`));
    const fits: boolean[] = [];
    for (let e = reader.next(); e; e = reader.next()) {
      assert.equal(e.kind, 'literal');
      fits.push(reader.fitsCommand(e.size));
      if (fits.at(-1)) reader.accept('buffer');
      else reader.reject('BAD Command too long');
    }
    // Line text (about 15 bytes each) plus two held literals leaves no room for a third.
    assert.deepEqual(fits, [true, true, false]);
  });

  it('hands over raw lines when asked (IDLE DONE, AUTHENTICATE responses)', () => {
    const reader = new CommandReader();
    reader.expectLine();
    reader.push(Buffer.from('DONE\r\nx NOOP\r\n'));
    assert.deepEqual(reader.next(), { kind: 'line', text: 'DONE' });
    assert.equal(reader.next()?.kind, 'command');
  });
});

describe('IMAP argument parsers', () => {
  it('parses and resolves sequence sets', () => {
    assert.deepEqual(resolveRanges(parseSequenceSet('1:3,2,7:*,9'), 10), [
      [1, 3],
      [7, 10],
    ]);
    assert.deepEqual(resolveRanges(parseSequenceSet('5:*'), 3), [[3, 5]]);
    assert.throws(() => parseSequenceSet('0:3'));
    assert.throws(() => parseSequenceSet('1,,2'));
    assert.equal(formatSequenceSet([1, 2, 3, 5, 7, 8]), '1:3,5,7:8');
  });

  it('parses fetch items, macros and sections', () => {
    assert.deepEqual(
      parseFetchItems(atom('FAST')).map((i) => i.kind),
      ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
    );
    const [item] = parseFetchItems(atom('BODY.PEEK[1.2.HEADER.FIELDS.NOT (Received x-spam)]<10.20>'));
    assert.ok(item?.kind === 'section');
    assert.equal(item.peek, true);
    assert.deepEqual(item.section, { part: [1, 2], text: 'HEADER.FIELDS.NOT', fields: ['received', 'x-spam'] });
    assert.deepEqual(item.partial, { start: 10, length: 20 });
    assert.equal(item.label, 'BODY[1.2.HEADER.FIELDS.NOT (Received x-spam)]<10>');
    assert.deepEqual(parseSection('3.MIME'), { part: [3], text: 'MIME', fields: [] });
    assert.throws(() => parseSection('MIME'));
    assert.throws(() => parseSection('0'));
    assert.throws(() => parseSection('1.HEADERX'));
    assert.throws(() => parseFetchItems(atom('BODY[]<5>')));
  });

  it('parses search criteria', () => {
    const key = parseSearch([
      atom('CHARSET'),
      atom('UTF-8'),
      atom('OR'),
      atom('FROM'),
      str('zoë'),
      atom('NOT'),
      atom('SEEN'),
      atom('SINCE'),
      atom('1-Feb-2026'),
    ]);
    assert.deepEqual(key, {
      op: 'and',
      keys: [
        { op: 'or', a: { op: 'header', field: 'from', value: 'zoë' }, b: { op: 'not', key: { op: 'flag', flag: '\\Seen', set: true } } },
        { op: 'date', field: 'internal', cmp: 'since', day: Date.UTC(2026, 1, 1) },
      ],
    });
    assert.throws(() => parseSearch([atom('CHARSET'), atom('KOI8-R'), atom('ALL')]));
    assert.throws(() => parseSearch([atom('FROB')]));
  });

  it('parses APPEND date-times with zones', () => {
    assert.equal(parseDateTime('17-Jul-1996 02:44:25 -0700').toISOString(), '1996-07-17T09:44:25.000Z');
    assert.equal(parseDateTime(' 2-Feb-2026 08:00:00 +0000').toISOString(), '2026-02-02T08:00:00.000Z');
    assert.throws(() => parseDateTime('2026-02-02'));
  });
});
