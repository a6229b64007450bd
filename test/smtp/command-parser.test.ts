import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCommand, parsePath } from '../../src/smtp/command-parser.js';

describe('parseCommand', () => {
  const ok: Array<[string, unknown]> = [
    ['EHLO client.test', { verb: 'EHLO', domain: 'client.test' }],
    ['ehlo [127.0.0.1]', { verb: 'EHLO', domain: '[127.0.0.1]' }],
    ['LHLO mta', { verb: 'LHLO', domain: 'mta' }],
    ['MAIL FROM:<a@b.test>', { verb: 'MAIL', address: 'a@b.test', params: {} }],
    ['mail from: <a@b.test> SIZE=100 BODY=8bitmime SMTPUTF8', { verb: 'MAIL', address: 'a@b.test', params: { size: 100, body: '8BITMIME', smtputf8: true } }],
    ['MAIL FROM:<>', { verb: 'MAIL', address: '', params: {} }],
    ['RCPT TO:<@relay.test,@other.test:u@d.test>', { verb: 'RCPT', address: 'u@d.test' }],
    ['RCPT TO:<"john doe"@d.test>', { verb: 'RCPT', address: '"john doe"@d.test' }],
    ['RCPT TO:<"a>b"@d.test>', { verb: 'RCPT', address: '"a>b"@d.test' }],
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
    ['RCPT TO:<a@b> NOTIFY=NEVER', 555],
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
