/**
 * The pure POP3 modules, table-driven and without sockets: the command parser, reply
 * formatting, and the streaming dot-stuffer and TOP limiter (each fed every way a message
 * can be split into two chunks, and one byte at a time).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCommand, parseSaslResponse, type Pop3Command } from '../../src/pop3/commands.js';
import { DotStuffer, TopLimiter } from '../../src/pop3/multiline.js';
import { formatMultiline, formatReply, Replies } from '../../src/pop3/replies.js';

describe('POP3 parseCommand', () => {
  const ok: Array<[string, Pop3Command]> = [
    ['USER alice@example.test', { verb: 'USER', user: 'alice@example.test' }],
    ['user Alice Smith', { verb: 'USER', user: 'Alice Smith' }],
    ['PASS secret', { verb: 'PASS', password: 'secret' }],
    ['PASS  two  spaces ', { verb: 'PASS', password: ' two  spaces ' }],
    ['pass pässwörd', { verb: 'PASS', password: 'pässwörd' }],
    ['AUTH', { verb: 'AUTH', mechanism: null, initialResponse: null }],
    ['AUTH plain', { verb: 'AUTH', mechanism: 'PLAIN', initialResponse: null }],
    ['AUTH PLAIN AGFsaWNlAHB3', { verb: 'AUTH', mechanism: 'PLAIN', initialResponse: 'AGFsaWNlAHB3' }],
    ['AUTH PLAIN =', { verb: 'AUTH', mechanism: 'PLAIN', initialResponse: '=' }],
    ['CAPA', { verb: 'CAPA' }],
    ['stls', { verb: 'STLS' }],
    ['STAT', { verb: 'STAT' }],
    ['STAT ', { verb: 'STAT' }],
    ['RSET', { verb: 'RSET' }],
    ['NOOP', { verb: 'NOOP' }],
    ['QUIT', { verb: 'QUIT' }],
    ['LIST', { verb: 'LIST', msg: null }],
    ['LIST 3', { verb: 'LIST', msg: 3 }],
    ['list 007', { verb: 'LIST', msg: 7 }],
    ['LIST 0', { verb: 'LIST', msg: 0 }],
    ['LIST 99999999999999', { verb: 'LIST', msg: Infinity }],
    ['UIDL', { verb: 'UIDL', msg: null }],
    ['UIDL 12', { verb: 'UIDL', msg: 12 }],
    ['RETR 1', { verb: 'RETR', msg: 1 }],
    ['DELE 2', { verb: 'DELE', msg: 2 }],
    ['TOP 1 0', { verb: 'TOP', msg: 1, lines: 0 }],
    ['top 2  10', { verb: 'TOP', msg: 2, lines: 10 }],
    ['TOP 1 99999999999999999', { verb: 'TOP', msg: 1, lines: 2 ** 31 - 1 }],
  ];
  for (const [line, expected] of ok) it(`parses ${JSON.stringify(line)}`, () => assert.deepEqual(parseCommand(line), expected));

  const errors: Array<[string, 'unknown' | 'syntax']> = [
    ['', 'unknown'],
    ['FROB', 'unknown'],
    ['APOP alice 0123456789abcdef', 'unknown'],
    ['\x00\x01binary', 'unknown'],
    ['USER', 'syntax'],
    ['USER   ', 'syntax'],
    ['PASS', 'syntax'],
    ['AUTH PLAIN a b', 'syntax'],
    ['CAPA now', 'syntax'],
    ['QUIT please', 'syntax'],
    ['STAT 1', 'syntax'],
    ['LIST x', 'syntax'],
    ['LIST -1', 'syntax'],
    ['LIST +1', 'syntax'],
    ['LIST 1 2', 'syntax'],
    ['RETR', 'syntax'],
    ['RETR 1.5', 'syntax'],
    ['RETR 1 2', 'syntax'],
    ['DELE', 'syntax'],
    ['TOP 1', 'syntax'],
    ['TOP 1 -1', 'syntax'],
    ['TOP x 1', 'syntax'],
    ['TOP 1 2 3', 'syntax'],
  ];
  for (const [line, reason] of errors) {
    it(`rejects ${JSON.stringify(line)} (${reason})`, () => {
      const cmd = parseCommand(line);
      assert.equal(cmd.verb, 'ERROR');
      if (cmd.verb === 'ERROR') assert.equal(cmd.reason, reason);
    });
  }

  it('parses SASL continuation responses', () => {
    assert.deepEqual(parseSaslResponse('*'), { kind: 'cancel' });
    assert.deepEqual(parseSaslResponse('AGFsaWNlAHB3 '), { kind: 'response', base64: 'AGFsaWNlAHB3' });
    assert.deepEqual(parseSaslResponse(''), { kind: 'response', base64: '' });
  });
});

describe('POP3 replies', () => {
  const cases: Array<[string, string]> = [
    [formatReply(Replies.noop), '+OK OK\r\n'],
    [formatReply(Replies.stat(2, 320)), '+OK 2 320\r\n'],
    [formatReply(Replies.badCredentials), '-ERR [AUTH] Invalid user name or password\r\n'],
    [formatReply(Replies.shuttingDown), '-ERR [SYS/TEMP] Server shutting down, try again later\r\n'],
    [formatReply(Replies.unknownCommand), '-ERR Unknown command\r\n'],
    [formatReply(Replies.syntax('bad\r\nINJECT')), '-ERR bad??INJECT\r\n'],
    [formatMultiline(Replies.capaFollows, ['TOP', '.hidden']), '+OK Capability list follows\r\nTOP\r\n..hidden\r\n.\r\n'],
    [formatMultiline(Replies.mechanismsFollow, []), '+OK Supported SASL mechanisms follow\r\n.\r\n'],
  ];
  for (const [actual, expected] of cases) it(`formats ${JSON.stringify(expected)}`, () => assert.equal(actual, expected));

  it('cuts over-long reply lines to 512 octets', () => {
    const line = formatReply(Replies.syntax('x'.repeat(2000)));
    assert.equal(line.length, 512);
    assert.ok(line.endsWith('...\r\n'));
  });
});

/** Runs a streaming transform over `input` split at every point, and one byte at a time; all must agree. */
function splits(input: Buffer): Buffer[][] {
  const out: Buffer[][] = [[input]];
  for (let i = 1; i < input.length; i++) out.push([input.subarray(0, i), input.subarray(i)]);
  out.push([...input].map((b) => Buffer.from([b])));
  return out;
}

describe('POP3 DotStuffer', () => {
  const cases: Array<[string, string, string]> = [
    ['plain lines', 'a\r\nb\r\n', 'a\r\nb\r\n.\r\n'],
    ['a leading dot', '.a\r\n', '..a\r\n.\r\n'],
    ['dots at line starts', 'x\r\n.\r\n..y\r\nz.\r\n', 'x\r\n..\r\n...y\r\nz.\r\n.\r\n'],
    ['no final CRLF', 'a\r\nb', 'a\r\nb\r\n.\r\n'],
    ['a final lone CR', 'a\r', 'a\r\n.\r\n'],
    ['bare LFs', 'a\nb\n.c\n', 'a\r\nb\r\n..c\r\n.\r\n'],
    ['an empty message', '', '.\r\n'],
    ['8-bit bytes', 'caf\xe9 \xff\r\n', 'caf\xe9 \xff\r\n.\r\n'],
  ];
  for (const [name, input, expected] of cases) {
    it(`stuffs ${name} however it is chunked`, () => {
      for (const chunks of splits(Buffer.from(input, 'latin1'))) {
        const s = new DotStuffer();
        const out = Buffer.concat([...chunks.map((c) => s.push(c)), s.end()]).toString('latin1');
        assert.equal(out, expected, JSON.stringify(chunks.map((c) => c.toString('latin1'))));
      }
    });
  }
});

describe('POP3 TopLimiter', () => {
  const message = 'Subject: x\r\nFrom: a@b\r\n\r\nline 1\r\nline 2\r\nline 3\r\n';
  const cases: Array<[string, string, number, string]> = [
    ['headers only', message, 0, 'Subject: x\r\nFrom: a@b\r\n\r\n'],
    ['one body line', message, 1, 'Subject: x\r\nFrom: a@b\r\n\r\nline 1\r\n'],
    ['all body lines', message, 3, message],
    ['more lines than there are', message, 50, message],
    ['no body at all', 'Subject: x\r\nFrom: a@b\r\n', 0, 'Subject: x\r\nFrom: a@b\r\n'],
    ['bare LF line ends', 'A: b\n\nl1\nl2\n', 1, 'A: b\n\nl1\n'],
    ['a last line without CRLF', 'A: b\r\n\r\nonly', 5, 'A: b\r\n\r\nonly'],
    ['a header line that is just "\\r" text', 'A: \r\nB: c\r\n\r\nbody\r\n', 0, 'A: \r\nB: c\r\n\r\n'],
  ];
  for (const [name, input, lines, expected] of cases) {
    it(`passes ${name} (TOP n ${lines}) however it is chunked`, () => {
      for (const chunks of splits(Buffer.from(input, 'latin1'))) {
        const t = new TopLimiter(lines);
        const parts: Buffer[] = [];
        for (const c of chunks) {
          if (t.done) break;
          parts.push(t.push(c));
        }
        assert.equal(Buffer.concat(parts).toString('latin1'), expected, JSON.stringify(chunks.map((c) => c.toString('latin1'))));
      }
    });
  }

  it('says when it is done, so the rest of a large message is never read', () => {
    const t = new TopLimiter(0);
    assert.equal(t.push(Buffer.from('A: b\r\n')).toString(), 'A: b\r\n');
    assert.equal(t.done, false);
    assert.equal(t.push(Buffer.from('\r\nbody\r\n')).toString(), '\r\n');
    assert.equal(t.done, true);
    assert.equal(t.push(Buffer.from('more\r\n')).length, 0);
  });
});
