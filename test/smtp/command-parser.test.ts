import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCommand, parsePath } from '../../src/smtp/command-parser.js';
import { formatMultiline, formatReply, Replies } from '../../src/smtp/replies.js';

describe('parseCommand', () => {
  const ok: Array<[string, unknown]> = [
    ['EHLO client.test', { verb: 'EHLO', domain: 'client.test' }],
    ['ehlo [127.0.0.1]', { verb: 'EHLO', domain: '[127.0.0.1]' }],
    ['LHLO mta', { verb: 'LHLO', domain: 'mta' }],
    ['MAIL FROM:<a@b.test>', { verb: 'MAIL', address: 'a@b.test', params: {} }],
    ['mail from: <a@b.test> SIZE=100 BODY=8bitmime SMTPUTF8', { verb: 'MAIL', address: 'a@b.test', params: { size: 100, body: '8BITMIME', smtputf8: true } }],
    ['MAIL FROM:<>', { verb: 'MAIL', address: '', params: {} }],
    ['MAIL FROM:<a@b.test> RET=hdrs ENVID=QQ+2B1', { verb: 'MAIL', address: 'a@b.test', params: { ret: 'HDRS', envid: 'QQ+1' } }],
    ['RCPT TO:<@relay.test,@other.test:u@d.test>', { verb: 'RCPT', address: 'u@d.test', params: {} }],
    ['RCPT TO:<"john doe"@d.test>', { verb: 'RCPT', address: '"john doe"@d.test', params: {} }],
    ['RCPT TO:<"a>b"@d.test>', { verb: 'RCPT', address: '"a>b"@d.test', params: {} }],
    ['RCPT TO:<a@b> NOTIFY=never', { verb: 'RCPT', address: 'a@b', params: { notify: 'NEVER' } }],
    [
      'RCPT TO:<a@b> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+2By@c',
      { verb: 'RCPT', address: 'a@b', params: { notify: 'SUCCESS,FAILURE', orcpt: 'rfc822;x+y@c' } },
    ],
    ['DATA', { verb: 'DATA' }],
    ['rset', { verb: 'RSET' }],
    ['NOOP anything', { verb: 'NOOP' }],
    ['QUIT', { verb: 'QUIT' }],
    ['STARTTLS', { verb: 'STARTTLS' }],
    ['VRFY bob', { verb: 'VRFY', arg: 'bob' }],
  ];
  for (const [line, expected] of ok) it(`parses ${JSON.stringify(line)}`, () => assert.deepEqual(parseCommand(line), expected));

  const errors: Array<[string, number]> = [
    ['', 500],
    ['FROB', 500],
    ['\x00\x01binary', 500],
    ['EHLO', 501],
    ['EHLO a b', 501],
    ['MAIL TO:<a@b>', 501],
    ['MAIL FROM:<a@b', 501],
    ['MAIL FROM:<a@b> SIZE=abc', 501],
    ['MAIL FROM:<a@b> BODY=BINARYMIME', 555],
    ['MAIL FROM:<a@b> FOO=1', 555],
    ['RCPT TO:<>', 501],
    ['RCPT TO:<a@b> FOO=1', 555],
    ['RCPT TO:<a@b> NOTIFY=NEVER,SUCCESS', 501],
    ['RCPT TO:<a@b> NOTIFY=SOMETIMES', 501],
    ['RCPT TO:<a@b> ORCPT=nosemicolon', 501],
    ['RCPT TO:<a@b> ORCPT=rfc822;bad+zz', 501],
    ['MAIL FROM:<a@b> RET=ALL', 501],
    ['MAIL FROM:<a@b> ENVID=has+2', 501],
    ['DATA now', 501],
  ];
  for (const [line, code] of errors) {
    it(`rejects ${JSON.stringify(line)} with ${code}`, () => {
      const cmd = parseCommand(line);
      assert.equal(cmd.verb, 'ERROR');
      if (cmd.verb === 'ERROR') assert.equal(cmd.reply.code, code);
    });
  }

  it('parsePath keeps what follows the path', () => {
    assert.deepEqual(parsePath('<a@b> SIZE=1'), { address: 'a@b', rest: ' SIZE=1' });
  });
});

describe('parseCommand fuzz', () => {
  it('never throws on random bytes', () => {
    let seed = 42;
    for (let i = 0; i < 5000; i++) {
      let s = '';
      const len = (seed = (seed * 48271) % 2147483647) % 80;
      for (let j = 0; j < len; j++) s += String.fromCharCode((seed = (seed * 48271) % 2147483647) % 256);
      const verbs = ['MAIL FROM:', 'RCPT TO:', 'EHLO ', ''];
      assert.doesNotThrow(() => parseCommand(verbs[i % verbs.length] + s));
    }
  });
});

describe('parseCommand BDAT', () => {
  it('parses size and LAST', () => {
    assert.deepEqual(parseCommand('BDAT 100'), { verb: 'BDAT', size: 100, last: false });
    assert.deepEqual(parseCommand('bdat 0 last'), { verb: 'BDAT', size: 0, last: true });
    for (const bad of ['BDAT', 'BDAT x', 'BDAT 1 FIRST', 'BDAT -1', 'BDAT 1234567890123456']) assert.equal(parseCommand(bad).verb, 'ERROR', bad);
  });
});

/** Control characters a reply must never carry (CR and LF only as the line end). */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]/;

describe('replies never echo control characters', () => {
  const hostile = ['MAIL FROM:<a@b.test> \x00=1', 'MAIL FROM:<a@b.test> X\x1b[31m=1', 'MAIL FROM:<a@b.test> A\rB=1', 'MAIL FROM:<a@b.test> \x7f\x85\u2028'];
  for (const line of hostile) {
    it(`the reply to ${JSON.stringify(line)} is one clean line`, () => {
      const cmd = parseCommand(line);
      assert.equal(cmd.verb, 'ERROR');
      if (cmd.verb !== 'ERROR') return;
      assert.equal(cmd.reply.code, 555);
      const wire = formatReply(cmd.reply);
      assert.ok(wire.endsWith('\r\n'));
      assert.doesNotMatch(wire.slice(0, -2), CONTROL, JSON.stringify(wire));
    });
  }

  it('formatReply and formatMultiline clean any client text they are given', () => {
    const wire = formatReply(Replies.noSuchUser('a\x00b\r\n250 fake@x'));
    assert.doesNotMatch(wire.slice(0, -2), CONTROL, JSON.stringify(wire));
    assert.match(wire, /^550 5\.1\.1 <a\?b\?\?250 fake@x> No such user here\r\n$/);
    const multi = formatMultiline(250, ['mx.test greets a\x00\r\nb', 'PIPELINING']);
    assert.equal(multi, '250-mx.test greets a???b\r\n250 PIPELINING\r\n');
  });

  it('keeps printable non-ASCII (SMTPUTF8 addresses) as it is', () => {
    assert.equal(formatReply(Replies.noSuchUser('jörg@example.test')), '550 5.1.1 <jörg@example.test> No such user here\r\n');
  });
});
