/**
 * CHUNKING (RFC 3030): BDAT chunks are binary-clean (no dot-stuffing), the message is
 * committed after BDAT LAST, chunks are always read even when refused, and size limits
 * apply across chunks. Also through LMTP with one reply per recipient.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openSession } from '../helpers/raw-smtp.js';
import { serveForSuite } from '../helpers/tern.js';
import { storedMessages } from './support.js';

describe('CHUNKING / BDAT', () => {
  const suite = serveForSuite({ args: ['--max-message-size', '2k'] });

  it('is advertised and stores chunks byte for byte', async () => {
    const c = await openSession(suite.tern.smtpPort);
    c.send('NOOP\r\n');
    assert.equal((await c.read()).code, 250);
    assert.equal((await c.command('MAIL FROM:<s@remote.test>')).code, 250);
    assert.equal((await c.command('RCPT TO:<alice@example.test>')).code, 250);
    const part1 = 'Subject: chunked\r\n\r\n.leading dot stays\r\n';
    const part2 = 'bare\nLF stays\r\n.\r\nnot an end\r\n';
    c.send(`BDAT ${part1.length}\r\n${part1}`);
    assert.match((await c.read()).text, /^250 2\.0\.0 \d+ octets received/);
    c.send(`BDAT ${part2.length} LAST\r\n${part2}`);
    assert.match((await c.read()).text, /^250 2\.0\.0 OK: queued as/);
    const blob = (await storedMessages(suite.site, 'alice@example.test')).at(-1)!.blob;
    assert.ok(blob.endsWith(part1 + part2), 'chunks stored exactly, no unstuffing');
    c.close();
  });

  it('refuses BDAT without a transaction but still reads the chunk', async () => {
    const c = await openSession(suite.tern.smtpPort);
    c.send('BDAT 10 LAST\r\nVRFY abc\r\n'); // the 10 bytes look like a command (252 if run): they must not run
    assert.match((await c.read()).text, /^503 5\.5\.1/);
    assert.equal((await c.command('NOOP')).code, 250);
    c.close();
  });

  it('rejects DATA after BDAT, and a message over the size limit across chunks', async () => {
    const c = await openSession(suite.tern.smtpPort);
    await c.command('MAIL FROM:<s@remote.test>');
    await c.command('RCPT TO:<alice@example.test>');
    c.send('BDAT 3\r\nabc');
    assert.equal((await c.read()).code, 250);
    assert.match((await c.command('DATA')).text, /^503/);
    const big = 'x'.repeat(1500);
    c.send(`BDAT ${big.length}\r\n${big}`);
    assert.equal((await c.read()).code, 250);
    c.send(`BDAT ${big.length} LAST\r\n${big}`);
    assert.match((await c.read()).text, /^552 5\.3\.4/);
    c.send('BDAT 1 LAST\r\nz');
    assert.match((await c.read()).text, /^503/, 'the failed transaction is over');
    c.close();
  });

  it('LMTP: one reply per recipient after BDAT LAST', async () => {
    const c = await openSession(suite.tern.lmtpPort, 'LHLO client.test');
    await c.command('MAIL FROM:<s@remote.test>');
    await c.command('RCPT TO:<alice@example.test>');
    await c.command('RCPT TO:<bob@example.test>');
    c.send('BDAT 14 LAST\r\nSubject: x\r\n\r\n');
    assert.match((await c.read()).text, /^250 2\.0\.0 <alice@example\.test> delivered/);
    assert.match((await c.read()).text, /^250 2\.0\.0 <bob@example\.test> delivered/);
    c.close();
  });
});

describe('LMTP transaction errors', () => {
  const suite = serveForSuite({ args: ['--max-message-size', '1k'] });

  it('answers DATA without accepted recipients with 503 (RFC 2033 4.2)', async () => {
    const c = await openSession(suite.tern.lmtpPort, 'LHLO client.test');
    await c.command('MAIL FROM:<s@remote.test>');
    await c.command('RCPT TO:<nobody@example.test>');
    assert.match((await c.command('DATA')).text, /^503 5\.5\.1/);
    c.close();
  });

  it('answers a failed BDAT chunk that is not LAST once, not per recipient', async () => {
    const c = await openSession(suite.tern.lmtpPort, 'LHLO client.test');
    await c.command('MAIL FROM:<s@remote.test>');
    await c.command('RCPT TO:<alice@example.test>');
    await c.command('RCPT TO:<bob@example.test>');
    const big = 'x'.repeat(2000);
    c.send(`BDAT ${big.length}\r\n${big}`);
    assert.match((await c.read()).text, /^552 5\.3\.4/);
    assert.equal((await c.command('NOOP')).text, '250 2.0.0 OK', 'exactly one reply for the chunk');
    c.close();
  });
});
