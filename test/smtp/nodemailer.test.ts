/**
 * Inbound SMTP with a real client (nodemailer): single and multiple recipients (one
 * blob for many mailboxes), 8BITMIME and SMTPUTF8, aliases, catch-all, plus-addressing
 * and STARTTLS; checks the stored message and its trace headers in the store itself.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type Mail from 'nodemailer/lib/mailer/index.js';
import { cli, runCli, serveForSuite, status, type Site } from '../helpers/tern.js';
import { mailer, sendSimple, storedMessages, type StoredWithBlob } from './support.js';

const UTF8_USER = 'jürgen@example.test';

/** The stored message whose blob contains `marker` (a unique subject). */
async function findStored(site: Site, address: string, marker: string): Promise<StoredWithBlob> {
  const found = (await storedMessages(site, address)).filter((m) => m.blob.includes(marker));
  assert.equal(found.length, 1, `exactly one message with ${marker} in ${address}`);
  return found[0]!;
}

function headerBlock(blob: string): string {
  return blob.slice(0, blob.indexOf('\r\n\r\n') + 2);
}

describe('SMTP with nodemailer', () => {
  const suite = serveForSuite({
    setup: async (site) => {
      const added = await runCli(['user', 'add', UTF8_USER, '--password-stdin', ...site.args], { input: 'password123\n' });
      assert.equal(added.code, 0, `tern user add accepts a UTF-8 local part: ${added.stderr}`);
      await cli(['alias', 'add', 'sales@example.test', 'alice@example.test', 'bob@example.test', ...site.args]);
      await cli(['domain', 'add', 'catchall.test', ...site.args]);
      await cli(['alias', 'add', '@catchall.test', 'bob@example.test', ...site.args]);
    },
  });

  it('delivers to one recipient and stores Return-Path and Received first', async () => {
    const subject = `single ${randomUUID()}`;
    const info = await sendSimple(suite.tern.smtpPort, 'alice@example.test', { subject, text: 'one recipient\n' });
    assert.match(info.response, /^250 2\.0\.0 OK: queued as [0-9A-Z]+$/);
    assert.deepEqual(info.accepted, ['alice@example.test']);

    const m = await findStored(suite.site, 'alice@example.test', subject);
    assert.equal(m.envelopeFrom, 'sender@remote.test');
    assert.equal(m.size, Buffer.byteLength(m.blob));
    const id = /queued as (\S+)/.exec(info.response)![1]!;
    assert.equal(m.ternId, id);
    assert.match(
      m.blob,
      new RegExp(
        '^Return-Path: <sender@remote\\.test>\\r\\n' +
          'Delivered-To: alice@example\\.test\\r\\n' +
          'Received: from client\\.test \\(\\[127\\.0\\.0\\.1\\]\\)\\r\\n' +
          `\\tby mx\\.example\\.test \\(Tern\\) with ESMTP id ${id}\\r\\n` +
          '\\tfor <alice@example\\.test>;\\r\\n' +
          '\\t\\w{3}, \\d{1,2} \\w{3} \\d{4} \\d\\d:\\d\\d:\\d\\d \\+0000\\r\\n',
      ),
    );
    assert.match(headerBlock(m.blob), new RegExp(`\\r\\nSubject: ${subject}\\r\\n`));
    assert.match(m.blob, /\r\n\r\none recipient\r\n$/);
    assert.ok(!/[^\r]\n/.test(m.blob), 'every line ends in CRLF');
  });

  it('stores one blob for several recipients but one message per mailbox', async () => {
    const before = await status(suite.site);
    const subject = `multi ${randomUUID()}`;
    const info = await sendSimple(suite.tern.smtpPort, ['alice@example.test', 'bob@example.test', UTF8_USER], { subject });
    assert.equal(info.accepted.length, 3);
    const after = await status(suite.site);
    assert.equal(after.blobs, before.blobs + 1);
    assert.equal(after.messages, before.messages + 3);

    const a = await findStored(suite.site, 'alice@example.test', subject);
    const b = await findStored(suite.site, 'bob@example.test', subject);
    const j = await findStored(suite.site, UTF8_USER, subject);
    assert.equal(a.hash, b.hash);
    assert.equal(a.hash, j.hash);
    // One shared body; each copy's trace prefix names its own recipient.
    for (const [m, rcpt] of [
      [a, 'alice@example.test'],
      [b, 'bob@example.test'],
      [j, UTF8_USER],
    ] as const) {
      assert.ok(headerBlock(m.blob).includes(`Delivered-To: ${rcpt}\r\n`), `Delivered-To ${rcpt}`);
      assert.ok(headerBlock(m.blob).includes(`\tfor <${rcpt}>;\r\n`), `Received … for <${rcpt}>`);
    }
    // A non-ASCII recipient makes nodemailer use SMTPUTF8, so the protocol is UTF8SMTP (RFC 6531 3.7.3).
    assert.match(
      a.blob,
      /^Return-Path: <sender@remote\.test>\r\nDelivered-To: \S+\r\nReceived: from client\.test .*\r\n\tby mx\.example\.test \(Tern\) with UTF8SMTP id \S+\r\n/,
    );
  });

  it('accepts an 8-bit UTF-8 body with BODY=8BITMIME and stores it byte for byte', async () => {
    const subject = `8bit ${randomUUID()}`;
    const body = 'Grüße aus Köln — ☃ 日本語テキスト\r\nZweite Zeile: ÄÖÜß\r\n';
    const raw =
      `From: sender@remote.test\r\nTo: alice@example.test\r\nSubject: ${subject}\r\n` +
      'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n' +
      body;
    const transcript: string[] = [];
    const transport = mailer(suite.tern.smtpPort, { transcript });
    try {
      const info = await transport.sendMail({
        // use8BitMime (not in the typings) makes nodemailer send BODY=8BITMIME.
        envelope: { from: 'sender@remote.test', to: 'alice@example.test', use8BitMime: true } as Mail.Envelope,
        raw,
      });
      assert.match(info.response, /^250 /);
    } finally {
      transport.close();
    }
    assert.ok(
      transcript.some((l) => l.includes('MAIL FROM:<sender@remote.test> BODY=8BITMIME')),
      transcript.join('\n'),
    );
    const m = await findStored(suite.site, 'alice@example.test', subject);
    assert.ok(m.blob.endsWith(raw), 'the message after the trace headers is exactly what was sent');
    assert.equal(m.size, Buffer.byteLength(m.blob, 'utf8'));
  });

  it('delivers to an SMTPUTF8 address (non-ASCII local part) and records UTF8SMTP', async () => {
    const subject = `utf8 ${randomUUID()}`;
    const transcript: string[] = [];
    const info = await sendSimple(suite.tern.smtpPort, UTF8_USER, { subject, from: 'müller@remote.test', text: 'Hallo Jürgen\n', transcript });
    assert.match(info.response, /^250 /);
    assert.ok(
      transcript.some((l) => /^MAIL FROM:<müller@remote\.test> SMTPUTF8/.test(l)),
      transcript.join('\n'),
    );
    const m = await findStored(suite.site, UTF8_USER, subject);
    assert.equal(m.envelopeFrom, 'müller@remote.test');
    assert.match(
      m.blob,
      /^Return-Path: <müller@remote\.test>\r\nDelivered-To: jürgen@example\.test\r\nReceived: from client\.test \(\[127\.0\.0\.1\]\)\r\n\tby mx\.example\.test \(Tern\) with UTF8SMTP id \S+\r\n\tfor <jürgen@example\.test>;/,
    );
  });

  it('rejects an unknown UTF-8 address with 550 and keeps serving', async () => {
    await assert.rejects(sendSimple(suite.tern.smtpPort, 'niemand-ö@example.test'), (err: { responseCode?: number; response?: string }) => {
      assert.equal(err.responseCode, 550);
      // The reply carries the address in UTF-8 (RFC 6531); nodemailer reads replies as latin1.
      const reply = Buffer.from(err.response ?? '', 'latin1').toString('utf8');
      assert.match(reply, /^550 5\.1\.1 <niemand-ö@example\.test> No such user here/);
      return true;
    });
    const info = await sendSimple(suite.tern.smtpPort, 'alice@example.test');
    assert.match(info.response, /^250 /);
  });

  it('expands an alias to every target account', async () => {
    const subject = `alias ${randomUUID()}`;
    const before = await status(suite.site);
    await sendSimple(suite.tern.smtpPort, 'Sales@Example.TEST', { subject });
    const after = await status(suite.site);
    assert.equal(after.messages, before.messages + 2);
    const a = await findStored(suite.site, 'alice@example.test', subject);
    const b = await findStored(suite.site, 'bob@example.test', subject);
    assert.equal(a.hash, b.hash);
    assert.match(a.blob, /\tfor <sales@example\.test>;/);
  });

  it('delivers anything in a catch-all domain to the catch-all target', async () => {
    const subject = `catchall ${randomUUID()}`;
    await sendSimple(suite.tern.smtpPort, `whoever-${Date.now()}@catchall.test`, { subject });
    await findStored(suite.site, 'bob@example.test', subject);
    assert.equal((await storedMessages(suite.site, 'alice@example.test')).filter((m) => m.blob.includes(subject)).length, 0);
  });

  it('delivers user+tag to user, and rejects +tag of an unknown user', async () => {
    const subject = `plus ${randomUUID()}`;
    const info = await sendSimple(suite.tern.smtpPort, 'alice+newsletters@example.test', { subject });
    assert.match(info.response, /^250 /);
    const m = await findStored(suite.site, 'alice@example.test', subject);
    assert.match(m.blob, /\tfor <alice\+newsletters@example\.test>;/);
    await assert.rejects(sendSimple(suite.tern.smtpPort, 'nobody+tag@example.test'), { responseCode: 550 });
  });

  it('upgrades with STARTTLS and records ESMTPS', async () => {
    const subject = `tls ${randomUUID()}`;
    const info = await sendSimple(suite.tern.smtpPort, 'alice@example.test', { subject, startTls: true });
    assert.match(info.response, /^250 /);
    const m = await findStored(suite.site, 'alice@example.test', subject);
    assert.match(m.blob, /\tby mx\.example\.test \(Tern\) with ESMTPS id /);
  });

  it('reports a partial rejection per recipient and delivers to the valid ones', async () => {
    const subject = `partial ${randomUUID()}`;
    const info = await sendSimple(suite.tern.smtpPort, ['alice@example.test', 'ghost@example.test', 'x@remote.test'], { subject });
    assert.deepEqual(info.accepted, ['alice@example.test']);
    assert.deepEqual([...info.rejected].sort(), ['ghost@example.test', 'x@remote.test']);
    await findStored(suite.site, 'alice@example.test', subject);
  });
});
