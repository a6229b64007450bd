/**
 * Never an open relay: every way of naming a remote recipient (plain, source route,
 * quoted local part, percent hack, bang path, address literal, sub-domain) is refused
 * at RCPT, while local recipients in any letter case and the null sender are accepted.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { serveForSuite, status } from '../helpers/tern.js';
import { openSession, type RawSmtp } from '../helpers/raw-smtp.js';
import { sendSimple, storedMessages } from './support.js';

describe('SMTP relay policy', () => {
  const suite = serveForSuite();

  /** Opens a session with MAIL FROM done, runs `body`, and closes. */
  async function inTransaction(body: (c: RawSmtp) => Promise<void>, from = '<sender@remote.test>'): Promise<void> {
    const c = await openSession(suite.tern.smtpPort);
    try {
      assert.match((await c.command(`MAIL FROM:${from}`)).text, /^250 2\.1\.0/);
      await body(c);
    } finally {
      c.close();
    }
  }

  async function expectRcpt(c: RawSmtp, address: string, reply: RegExp): Promise<void> {
    const r = await c.command(`RCPT TO:${address}`);
    assert.match(r.text, reply, `RCPT TO:${address}`);
  }

  const RELAY_DENIED = /^554 5\.7\.1 <.*> Relay access denied$/;
  const NO_SUCH_USER = /^550 5\.1\.1 <.*> No such user here$/;

  it('refuses a recipient in a remote domain with 554 5.7.1', async () => {
    await inTransaction(async (c) => {
      await expectRcpt(c, '<someone@remote.test>', /^554 5\.7\.1 <someone@remote\.test> Relay access denied$/);
      await expectRcpt(c, '<someone@REMOTE.test.>', RELAY_DENIED);
      await expectRcpt(c, '<alice@sub.example.test>', RELAY_DENIED);
      await expectRcpt(c, '<alice@example.test.remote.test>', RELAY_DENIED);
      await expectRcpt(c, 'someone@remote.test', RELAY_DENIED); // without brackets
      assert.match((await c.command('DATA')).text, /^554 5\.5\.1 No valid recipients/);
    });
  });

  it('ignores source routes and judges only the final mailbox', async () => {
    await inTransaction(async (c) => {
      await expectRcpt(c, '<@a.test:x@remote.test>', /^554 5\.7\.1 <x@remote\.test> Relay access denied$/);
      await expectRcpt(c, '<@example.test,@mx.example.test:x@remote.test>', RELAY_DENIED);
      await expectRcpt(c, '<@remote.test:alice@example.test>', /^250 2\.1\.5/);
    });
  });

  it('treats quoted local parts as local parts, never as routes', async () => {
    await inTransaction(async (c) => {
      await expectRcpt(c, '<"x@remote.test"@example.test>', NO_SUCH_USER);
      await expectRcpt(c, '<"x@remote.test">', /^5\d\d /);
      await expectRcpt(c, '<"alice"@remote.test>', RELAY_DENIED);
      await expectRcpt(c, '<"a b>c"@remote.test>', RELAY_DENIED);
      await expectRcpt(c, '<"user%remote.test"@example.test>', /^550 5\.1\.1 <user%remote\.test@example\.test> No such user here$/);
      // Quotes are not part of the name: "alice" is alice (RFC 5322 3.2.4).
      await expectRcpt(c, '<"alice"@example.test>', /^250 2\.1\.5/);
      await expectRcpt(c, '<"b\\ob"@Example.Test>', /^250 2\.1\.5/);
      await expectRcpt(c, '<"alice bob"@example.test>', /^550 5\.1\.1 <"alice bob"@example\.test> No such user here$/);
    });
  });

  it('does not relay the percent hack, bang paths or double @', async () => {
    const before = await status(suite.site);
    await inTransaction(async (c) => {
      await expectRcpt(c, '<user%remote.test@example.test>', /^550 5\.1\.1 <user%remote\.test@example\.test> No such user here$/);
      await expectRcpt(c, '<alice%remote.test@example.test>', NO_SUCH_USER);
      await expectRcpt(c, '<remote.test!user@example.test>', NO_SUCH_USER);
      await expectRcpt(c, '<user@remote.test@example.test>', /^5\d\d /);
      assert.match((await c.command('DATA')).text, /^554 5\.5\.1 /);
    });
    assert.equal((await status(suite.site)).messages, before.messages);
  });

  it('refuses address literals', async () => {
    await inTransaction(async (c) => {
      await expectRcpt(c, '<user@[127.0.0.1]>', /^554 5\.7\.1 <user@\[127\.0\.0\.1\]> Relay access denied$/);
      await expectRcpt(c, '<alice@[127.0.0.1]>', RELAY_DENIED);
      await expectRcpt(c, '<user@[IPv6:::1]>', RELAY_DENIED);
      await expectRcpt(c, '<user@[10.0.0.1]>', RELAY_DENIED);
    });
  });

  it('refuses internationalised remote domains', async () => {
    await inTransaction(async (c) => {
      c.send('RCPT TO:<user@bücher.test>\r\n');
      assert.match((await c.read()).text, /^554 5\.7\.1 <user@xn--bcher-kva\.test> Relay access denied$/);
    }, '<sender@remote.test> SMTPUTF8');
  });

  it('accepts local recipients in any letter case, rejects unknown local users', async () => {
    await inTransaction(async (c) => {
      await expectRcpt(c, '<alice@EXAMPLE.TEST>', /^250 2\.1\.5/);
      await expectRcpt(c, '<Bob@Example.Test.>', /^250 2\.1\.5/);
      await expectRcpt(c, '<ghost@example.test>', /^550 5\.1\.1 <ghost@example\.test> No such user here$/);
      await expectRcpt(c, '<ghost@EXAMPLE.test>', NO_SUCH_USER);
    });
  });

  it('accepts the null sender MAIL FROM:<> and stores Return-Path: <>', async () => {
    const subject = `bounce ${randomUUID()}`;
    await inTransaction(async (c) => {
      await expectRcpt(c, '<alice@example.test>', /^250 2\.1\.5/);
      assert.equal((await c.command('DATA')).code, 354);
      c.send(`From: MAILER-DAEMON@remote.test\r\nSubject: ${subject}\r\n\r\nDelivery report\r\n.\r\n`);
      assert.match((await c.read()).text, /^250 2\.0\.0 OK: queued as /);
    }, '<>');
    const [m] = (await storedMessages(suite.site, 'alice@example.test')).filter((x) => x.blob.includes(subject));
    assert.ok(m, 'bounce stored');
    assert.equal(m.envelopeFrom, '');
    assert.match(m.blob, /^Return-Path: <>\r\nDelivered-To: \S+\r\nReceived: /);
  });

  it('refuses a relay attempt from a real client and still delivers locally', async () => {
    await assert.rejects(sendSimple(suite.tern.smtpPort, 'victim@remote.test'), (err: { responseCode?: number; response?: string }) => {
      assert.equal(err.responseCode, 554);
      assert.match(err.response ?? '', /5\.7\.1/);
      return true;
    });
    const info = await sendSimple(suite.tern.smtpPort, 'alice@example.test');
    assert.match(info.response, /^250 /);
  });
});
