/**
 * Regressions for the IMAP bugs the session fuzzer (test/imap/fuzz/) found, pinned down
 * without sockets: each test is the smallest form of a failing fuzz case.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { patternMatcher } from '../../src/imap/commands/list.js';
import { responseText } from '../../src/imap/errors.js';
import { flagsOf } from '../../src/imap/proto/args.js';
import { CommandReader, DEFAULT_READER_LIMITS, type ReaderEvent } from '../../src/imap/proto/command-reader.js';

function events(reader: CommandReader, input: string, onLiteral?: (e: Extract<ReaderEvent, { kind: 'literal' }>) => void): ReaderEvent[] {
  reader.push(Buffer.from(input, 'latin1'));
  const out: ReaderEvent[] = [];
  for (let e = reader.next(); e; e = reader.next()) {
    out.push(e);
    if (e.kind === 'literal') onLiteral?.(e);
  }
  return out;
}

describe('IMAP fuzz findings', () => {
  it('"}" is a tag character (RFC 3501 ASTRING-CHAR): "a}1 NOOP" is answered tagged', () => {
    const [e] = events(new CommandReader(), 'a}1 NOOP\r\n');
    assert.equal(e?.kind, 'command');
    assert.equal(e?.kind === 'command' && e.tag, 'a}1');
  });

  it('the LITERAL+ literals after a refused one are read and dropped, never run as commands', () => {
    const reader = new CommandReader();
    const input = 'ap1 APPEND x {10+}\r\n0123456789 {22+}\r\ninj1 CREATE injected\r\n\r\nb NOOP\r\n';
    const got = events(reader, input, () => reader.reject('NO [TOOBIG] too big'));
    assert.deepEqual(
      got.map((e) => e.kind + (e.kind === 'command' || e.kind === 'error' ? ` ${e.tag}` : '')),
      ['literal', 'error ap1', 'command b'],
    );
    // The same, arriving a byte at a time (the skipped line's "{22+}" must survive being read in pieces).
    const slow = new CommandReader();
    const kinds: string[] = [];
    for (const byte of Buffer.from(input, 'latin1')) {
      for (const e of events(slow, String.fromCharCode(byte), () => slow.reject('NO [TOOBIG] too big'))) kinds.push(e.kind);
    }
    assert.deepEqual(kinds, ['literal', 'error', 'command']);
  });

  it('an over-long tag is never cut, nor a tag ended at a CR: such lines are answered untagged', () => {
    const long = `${'x'.repeat(300)} NOOP ${'y'.repeat(DEFAULT_READER_LIMITS.maxLine)}\r\n`;
    const [e] = events(new CommandReader(), long);
    assert.deepEqual(e?.kind === 'error' && e.tag, null);
    const reader = new CommandReader();
    const [f] = events(reader, 'x.3\r LOGIN a {3+}\r\nabc\r\n');
    assert.deepEqual(f?.kind === 'error' && f.tag, null);
  });

  it('an over-long line sent for a raw line (IDLE DONE, SASL response) does not swallow the next command', () => {
    const reader = new CommandReader();
    reader.expectLine();
    const got = events(reader, `${'1,'.repeat(DEFAULT_READER_LIMITS.maxLine)}\r\nb NOOP\r\n`);
    assert.deepEqual(
      got.map((e) => e.kind),
      ['error', 'command'],
    );
  });

  it('LIST patterns match in linear time ("%%%…x" once stalled the server)', () => {
    const started = Date.now();
    assert.equal(patternMatcher(`${'%'.repeat(50_000)}x`)(`c1-${'a'.repeat(500)}`), false);
    assert.equal(patternMatcher(`${'*a'.repeat(200)}b`)('a'.repeat(510)), false);
    assert.ok(Date.now() - started < 1000);
    const cases: Array<[string, string, boolean]> = [
      ['*', 'a/b', true],
      ['%', 'a/b', false],
      ['a/%', 'a/b', true],
      ['a/%', 'a/b/c', false],
      ['inbox', 'INBOX', true],
      ['INBOX/%', 'INBOX/x', true],
      ['c%/x', 'c5/y/x', false],
      ['a*b%c', 'aX/Xbyc', true],
      ['', '', true],
    ];
    for (const [pattern, name, want] of cases) assert.equal(patternMatcher(pattern)(name), want, `${pattern} ~ ${name}`);
  });

  it('flags are 7-bit atoms (a stored 8-bit flag was echoed in every FETCH)', () => {
    assert.deepEqual(
      flagsOf([
        { type: 'atom', value: '\\Seen' },
        { type: 'atom', value: '$Label' },
      ]),
      ['\\Seen', '$Label'],
    );
    for (const bad of ['\ufffdFlagged', 'a]b', '\\', 'a*']) assert.throws(() => flagsOf([{ type: 'atom', value: bad }]), bad);
  });

  it("status text never carries a client's CR, LF, NUL, escapes or 8-bit bytes, nor ends like a literal", () => {
    assert.equal(responseText('NO Mailbox c1/\r\n* OK x\u001b[31m\u00fc does not exist'), 'NO Mailbox c1/??* OK x?[31m? does not exist');
    assert.equal(responseText('BAD Invalid date {5}'), 'BAD Invalid date {5}.');
  });
});
