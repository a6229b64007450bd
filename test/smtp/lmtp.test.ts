/**
 * LMTP (RFC 2033): bulk delivery from Postfix's smtp-source, one reply per accepted
 * recipient after the final dot, and the LHLO/EHLO split between the LMTP and SMTP ports.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { serveForSuite, status } from '../helpers/tern.js';
import { openSession, RawSmtp } from '../helpers/raw-smtp.js';
import { runProgram, storedMessages } from './support.js';

const SMTP_SOURCE = '/usr/sbin/smtp-source';

describe('LMTP', () => {
  const suite = serveForSuite();

  it("delivers all 100 messages from Postfix's smtp-source -L over 5 sessions", async () => {
    assert.ok(existsSync(SMTP_SOURCE), `${SMTP_SOURCE} is missing: install Postfix (apt-get install postfix) to run this test`);
    const before = await status(suite.site);
    const r = await runProgram(
      SMTP_SOURCE,
      ['-L', '-s', '5', '-m', '100', '-l', '2048', '-f', 'a@remote.test', '-t', 'alice@example.test', `127.0.0.1:${suite.tern.lmtpPort}`],
      25_000,
    );
    assert.equal(r.code, 0, `smtp-source exited ${r.code}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stderr.trim(), '', 'smtp-source reports no errors');
    const after = await status(suite.site);
    assert.equal(after.messages, before.messages + 100);
    assert.equal(after.blobs, before.blobs + 100);
    const alice = (count: typeof after) => count.accounts.find((a) => a.address === 'alice@example.test')!.messages;
    assert.equal(alice(after), alice(before) + 100);
    const stored = await storedMessages(suite.site, 'alice@example.test');
    const last = stored[stored.length - 1]!;
    assert.equal(last.envelopeFrom, 'a@remote.test');
    assert.match(
      last.blob,
      /^Return-Path: <a@remote\.test>\r\nDelivered-To: alice@example\.test\r\nReceived: from \S+ \(\[127\.0\.0\.1\]\)\r\n\tby mx\.example\.test \(Tern\) with LMTP id /,
    );
    assert.ok(last.size >= 2048, `message of ${last.size} bytes holds the 2048-byte body`);
  });

  it('answers once per accepted recipient after the final dot, in RCPT order', async () => {
    const c = await RawSmtp.connect(suite.tern.lmtpPort);
    try {
      assert.match((await c.read()).text, /^220 mx\.example\.test LMTP Tern ready/);
      const lhlo = await c.command('LHLO client.test');
      assert.equal(lhlo.code, 250);
      assert.ok(lhlo.lines.includes('250-PIPELINING') && lhlo.lines.includes('250-ENHANCEDSTATUSCODES'), lhlo.text);
      assert.match((await c.command('MAIL FROM:<sender@remote.test>')).text, /^250 2\.1\.0/);
      assert.match((await c.command('RCPT TO:<bob@example.test>')).text, /^250 2\.1\.5/);
      assert.match((await c.command('RCPT TO:<ghost@example.test>')).text, /^550 5\.1\.1 <ghost@example\.test>/);
      assert.match((await c.command('RCPT TO:<alice@example.test>')).text, /^250 2\.1\.5/);
      assert.equal((await c.command('DATA')).code, 354);
      const subject = `lmtp ${randomUUID()}`;
      c.send(`Subject: ${subject}\r\n\r\nper-recipient replies\r\n.\r\nNOOP\r\n`);
      const first = await c.read();
      const second = await c.read();
      assert.match(first.text, /^250 2\.0\.0 <bob@example\.test> delivered as ([0-9A-Z]+)$/);
      assert.match(second.text, /^250 2\.0\.0 <alice@example\.test> delivered as ([0-9A-Z]+)$/);
      // The pipelined NOOP's reply comes next: there is no third delivery reply.
      assert.equal((await c.read()).text, '250 2.0.0 OK');
      const [bob] = (await storedMessages(suite.site, 'bob@example.test')).filter((m) => m.blob.includes(subject));
      const [alice] = (await storedMessages(suite.site, 'alice@example.test')).filter((m) => m.blob.includes(subject));
      assert.ok(bob && alice, 'stored for both accepted recipients');
      assert.equal(bob.hash, alice.hash);
      assert.equal(bob.ternId, /delivered as (\S+)/.exec(first.text)![1]);
      assert.equal((await c.command('QUIT')).code, 221);
    } finally {
      c.close();
    }
  });

  it('answers every accepted recipient when pipelined in one write', async () => {
    const c = await openSession(suite.tern.lmtpPort, 'LHLO client.test');
    try {
      c.send(
        'MAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<x@remote.test>\r\n' +
          'RCPT TO:<bob@example.test>\r\nRCPT TO:<alice+tag@example.test>\r\nDATA\r\nSubject: pipelined\r\n\r\nhi\r\n.\r\nQUIT\r\n',
      );
      const replies = [];
      for (let i = 0; i < 11; i++) replies.push((await c.read()).text);
      assert.deepEqual(
        replies.map((r) => r.slice(0, 9)),
        ['250 2.1.0', '250 2.1.5', '550 5.1.1', '554 5.7.1', '250 2.1.5', '250 2.1.5', '354 End d', '250 2.0.0', '250 2.0.0', '250 2.0.0', '221 2.0.0'],
      );
      assert.match(replies[7]!, /<alice@example\.test> delivered/);
      assert.match(replies[8]!, /<bob@example\.test> delivered/);
      assert.match(replies[9]!, /<alice\+tag@example\.test> delivered/);
    } finally {
      c.close();
    }
  });

  it('rejects EHLO and HELO on the LMTP port', async () => {
    const c = await RawSmtp.connect(suite.tern.lmtpPort);
    try {
      await c.read();
      assert.match((await c.command('EHLO client.test')).text, /^500 5\.5\.2 .*LHLO/);
      assert.match((await c.command('HELO client.test')).text, /^500 5\.5\.2 /);
      assert.match((await c.command('MAIL FROM:<a@remote.test>')).text, /^503 5\.5\.1 /);
      assert.equal((await c.command('LHLO client.test')).code, 250);
    } finally {
      c.close();
    }
  });

  it('rejects LHLO on the SMTP port', async () => {
    const c = await RawSmtp.connect(suite.tern.smtpPort);
    try {
      assert.match((await c.read()).text, /^220 mx\.example\.test ESMTP/);
      assert.match((await c.command('LHLO client.test')).text, /^500 5\.5\.2 /);
      assert.match((await c.command('MAIL FROM:<a@remote.test>')).text, /^503 5\.5\.1 /);
      assert.equal((await c.command('EHLO client.test')).code, 250);
    } finally {
      c.close();
    }
  });
});
