/**
 * Recipient policy decided by delivery/recipient-resolver.ts and the session: the
 * postmaster, quotas (452 4.2.2 at RCPT, 552 5.2.2 at commit), quoted local parts, accounts deleted mid-transaction,
 * address literals, and the sender's local part kept as written.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openSession } from '../helpers/raw-smtp.js';
import { cli, serveForSuite } from '../helpers/tern.js';
import { storedMessages } from './support.js';

describe('recipient policy', () => {
  const suite = serveForSuite({
    setup: async (site) => {
      await cli(['user', 'add', 'full@example.test', '--password-stdin', '--quota', '6k', ...site.args], 'password123\n');
      await cli(['user', 'add', 'gone@example.test', '--password-stdin', ...site.args], 'password123\n');
      await cli(['user', 'add', 'gone2@example.test', '--password-stdin', ...site.args], 'password123\n');
      await cli(['alias', 'add', 'pair@example.test', 'full@example.test', 'bob@example.test', ...site.args]);
    },
  });

  async function send(rcpts: string[], body: string, from = 'sender@remote.test'): Promise<string[]> {
    const c = await openSession(suite.tern.smtpPort);
    try {
      const replies = [(await c.command(`MAIL FROM:<${from}>`)).text];
      for (const r of rcpts) replies.push((await c.command(`RCPT TO:<${r}>`)).text);
      const data = await c.command('DATA');
      replies.push(data.text);
      if (data.code === 354) replies.push((await c.command(`${body}\r\n.`)).text);
      return replies;
    } finally {
      c.close();
    }
  }

  it('accepts <Postmaster> without a domain and delivers it to the admin', async () => {
    const replies = await send(['Postmaster'], 'Subject: to the postmaster\r\n\r\nhi');
    assert.match(replies[1]!, /^250 2\.1\.5/);
    assert.match(replies.at(-1)!, /^250 2\.0\.0/);
    const admin = await storedMessages(suite.site, 'admin@mx.example.test');
    assert.match(admin.at(-1)!.blob, /Subject: to the postmaster/);
  });

  it('keeps the sender local part as written in Return-Path', async () => {
    await send(['alice@example.test'], 'Subject: case\r\n\r\nx', 'John.Smith@Remote.TEST');
    const alice = await storedMessages(suite.site, 'alice@example.test');
    assert.match(alice.at(-1)!.blob, /^Return-Path: <John\.Smith@remote\.test>\r\n/);
    assert.equal(alice.at(-1)!.envelopeFrom, 'John.Smith@remote.test');
  });

  it('answers 550, not a temporary failure, for quoted local parts that match nobody', async () => {
    const replies = await send(['"a+b c"@example.test'], 'x');
    assert.match(replies[1]!, /^550 5\.1\.1/);
  });

  it('refuses address literals that are not IP addresses', async () => {
    const c = await openSession(suite.tern.smtpPort);
    assert.match((await c.command('MAIL FROM:<a@[1.2.3.4\rX-Evil: 1 ]>')).text, /^553 5\.1\.7/);
    assert.match((await c.command('MAIL FROM:<a@[not an ip]>')).text, /^553 5\.1\.7/);
    assert.match((await c.command('MAIL FROM:<a@[192.0.2.1]>')).text, /^250/);
    c.close();
  });

  it('enforces quotas: 552 5.2.2 at commit, 452 4.2.2 at RCPT with SIZE=, and still delivers an alias to members with room', async () => {
    const body = `Subject: fill\r\n\r\n${'x'.repeat(4000)}`;
    const first = await send(['full@example.test'], body);
    assert.match(first.at(-1)!, /^250/, 'the first message fits');
    const second = await send(['full@example.test'], body);
    assert.match(second.at(-1)!, /^552 5\.2\.2 <full@example\.test> Mailbox full/, 'checked again at commit against the counter');
    const c1 = await openSession(suite.tern.smtpPort);
    await c1.command('MAIL FROM:<s@remote.test> SIZE=4000');
    assert.match((await c1.command('RCPT TO:<full@example.test>')).text, /^452 4\.2\.2 <full@example\.test> Mailbox full/);
    c1.close();
    const bobBefore = (await storedMessages(suite.site, 'bob@example.test')).length;
    const viaAlias = await send(['pair@example.test'], body);
    assert.match(viaAlias.at(-1)!, /^250/);
    assert.equal((await storedMessages(suite.site, 'full@example.test')).length, 1);
    assert.equal((await storedMessages(suite.site, 'bob@example.test')).length, bobBefore + 1);
    const c = await openSession(suite.tern.smtpPort);
    await c.command('MAIL FROM:<s@remote.test> SIZE=100000');
    assert.match((await c.command('RCPT TO:<bob@example.test>')).text, /^250/, 'bob has no quota');
    c.close();
  });

  it('delivers to the remaining recipients when an account is deleted between RCPT and DATA', async () => {
    const c = await openSession(suite.tern.smtpPort);
    try {
      await c.command('MAIL FROM:<s@remote.test>');
      assert.match((await c.command('RCPT TO:<gone@example.test>')).text, /^250/);
      assert.match((await c.command('RCPT TO:<alice@example.test>')).text, /^250/);
      await cli(['user', 'del', 'gone@example.test', ...suite.site.args]);
      assert.equal((await c.command('DATA')).code, 354);
      assert.match((await c.command('Subject: survivor\r\n\r\nx\r\n.')).text, /^250 2\.0\.0/);
      assert.match((await storedMessages(suite.site, 'alice@example.test')).at(-1)!.blob, /Subject: survivor/);

      await c.command('MAIL FROM:<s@remote.test>');
      assert.match((await c.command('RCPT TO:<gone2@example.test>')).text, /^250/);
      await cli(['user', 'del', 'gone2@example.test', ...suite.site.args]);
      await c.command('DATA');
      assert.equal((await c.command('x\r\n.')).text, '550 5.1.1 <gone2@example.test> Recipient mailbox no longer exists');
    } finally {
      c.close();
    }
  });
});
