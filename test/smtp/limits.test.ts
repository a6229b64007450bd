/**
 * Every SMTP input has a bound, set by `tern serve` flags: message size (SIZE= and the
 * body itself), recipients, connections (total and per IP), idle time, bad commands and
 * line length. Each limit answers with its reply code and never disturbs other clients:
 * a separate client (another loopback source address) keeps delivering meanwhile.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { cli, serveForSuite, status } from '../helpers/tern.js';
import { openSession, RawSmtp } from '../helpers/raw-smtp.js';
import { connectFrom, sendSimple, storedMessages, waitFor, type HeldConnection } from './support.js';

const MAX_SIZE = 10 * 1024;
const LIMIT_FLAGS = [
  '--max-message-size',
  '10k',
  '--max-recipients',
  '3',
  '--max-connections',
  '5',
  '--max-connections-per-ip',
  '3',
  '--idle-timeout',
  '2',
  '--max-errors',
  '5',
  '--max-line-length',
  '1000',
];

/** The bystander: a well-behaved client on its own source address. */
const BYSTANDER_IP = '127.0.0.2';

describe('SMTP limits', () => {
  const suite = serveForSuite({
    args: LIMIT_FLAGS,
    setup: async (site) => {
      await cli(['user', 'add', 'carol@example.test', '--password-stdin', ...site.args], 'password123\n');
    },
  });
  let bystanderSends = 0;

  /** One normal delivery from the bystander; resolves once it is stored. */
  async function bystander(): Promise<void> {
    const subject = `bystander ${randomUUID()}`;
    const info = await sendSimple(suite.tern.smtpPort, 'carol@example.test', { subject, localAddress: BYSTANDER_IP });
    assert.match(info.response, /^250 2\.0\.0 /);
    bystanderSends++;
  }

  /** A message body of exactly `bytes` bytes (CRLF line ends, last line included). */
  function bodyOf(bytes: number, subject: string): string {
    const head = `Subject: ${subject}\r\n\r\n`;
    let rest = bytes - head.length;
    const lines: string[] = [];
    while (rest > 0) {
      const n = Math.min(rest, 78);
      lines.push(`${'x'.repeat(n - 2)}\r\n`);
      rest -= n;
    }
    const body = head + lines.join('');
    assert.equal(Buffer.byteLength(body), bytes);
    return body;
  }

  it('advertises SIZE and refuses SIZE= over the limit at MAIL with 552', async () => {
    const c = await RawSmtp.connect(suite.tern.smtpPort);
    try {
      await c.read();
      const ehlo = await c.command('EHLO client.test');
      assert.ok(ehlo.lines.includes(`250-SIZE ${MAX_SIZE}`), ehlo.text);
      const normal = bystander();
      assert.match((await c.command(`MAIL FROM:<a@remote.test> SIZE=${MAX_SIZE + 1}`)).text, /^552 5\.3\.4 Message size exceeds fixed maximum of 10240 bytes$/);
      assert.match((await c.command(`MAIL FROM:<a@remote.test> SIZE=${MAX_SIZE}`)).text, /^250 2\.1\.0/);
      await normal;
    } finally {
      c.close();
    }
  });

  it('rejects a body over the limit with 552 after the dot; the session goes on', async () => {
    const c = await openSession(suite.tern.smtpPort);
    try {
      const big = `too big ${randomUUID()}`;
      const exact = `exactly at the limit ${randomUUID()}`;
      const normal = bystander();
      assert.equal((await c.command('MAIL FROM:<a@remote.test>')).code, 250);
      assert.equal((await c.command('RCPT TO:<alice@example.test>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      c.send(`${bodyOf(MAX_SIZE + 1, big)}.\r\n`);
      assert.match((await c.read()).text, /^552 5\.3\.4 /);

      assert.equal((await c.command('MAIL FROM:<a@remote.test>')).code, 250);
      assert.equal((await c.command('RCPT TO:<alice@example.test>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      c.send(`${bodyOf(MAX_SIZE, exact)}.\r\n`);
      assert.match((await c.read()).text, /^250 2\.0\.0 OK: queued as /);
      assert.equal((await c.command('QUIT')).code, 221);
      await normal;

      const alice = await storedMessages(suite.site, 'alice@example.test');
      assert.equal(alice.filter((m) => m.blob.includes(big)).length, 0);
      assert.equal(alice.filter((m) => m.blob.includes(exact)).length, 1);
    } finally {
      c.close();
    }
  });

  it('accepts 3 recipients and answers the 4th with 452 4.5.3', async () => {
    const c = await openSession(suite.tern.smtpPort);
    try {
      const subject = `recipients ${randomUUID()}`;
      const before = await status(suite.site);
      const normal = bystander();
      assert.equal((await c.command('MAIL FROM:<a@remote.test>')).code, 250);
      for (const r of ['alice', 'bob', 'carol']) assert.match((await c.command(`RCPT TO:<${r}@example.test>`)).text, /^250 2\.1\.5/);
      assert.equal((await c.command('RCPT TO:<admin@mx.example.test>')).text, '452 4.5.3 Too many recipients');
      assert.equal((await c.command('RCPT TO:<alice+again@example.test>')).text, '452 4.5.3 Too many recipients');
      assert.equal((await c.command('DATA')).code, 354);
      c.send(`Subject: ${subject}\r\n\r\nthree\r\n.\r\n`);
      assert.match((await c.read()).text, /^250 2\.0\.0 /);
      await normal;
      const after = await status(suite.site);
      // 3 for this message, 1 for the bystander
      assert.equal(after.messages, before.messages + 4);
      assert.equal((await storedMessages(suite.site, 'admin@mx.example.test')).length, 0);
    } finally {
      c.close();
    }
  });

  it('refuses a 4th connection from the same IP with 421 while other IPs are served', async () => {
    const held: HeldConnection[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const h = await connectFrom(suite.tern.smtpPort, '127.0.0.1');
        assert.match(h.received(), /^220 /);
        held.push(h);
      }
      const fourth = await connectFrom(suite.tern.smtpPort, '127.0.0.1');
      assert.match(fourth.received(), /^421 4\.7\.0 Too many connections from your address/);
      await fourth.closed;
      await bystander();

      // A slot frees up when one of the three leaves.
      held.pop()!.socket.destroy();
      let again: HeldConnection | undefined;
      await waitFor(
        async () => {
          const h = await connectFrom(suite.tern.smtpPort, '127.0.0.1');
          if (h.received().startsWith('220 ')) again = h;
          else h.socket.destroy();
          return again !== undefined;
        },
        'a connection from 127.0.0.1 is accepted again',
        3000,
      );
      held.push(again!);
    } finally {
      for (const h of held) h.socket.destroy();
    }
  });

  it('refuses connections over the listener total with 421', async () => {
    const held: HeldConnection[] = [];
    try {
      // Connections of earlier tests may take a moment to leave the server's count: retry.
      for (const ip of ['127.0.0.3', '127.0.0.3', '127.0.0.3', '127.0.0.4', '127.0.0.4']) {
        await waitFor(
          async () => {
            const h = await connectFrom(suite.tern.smtpPort, ip);
            if (h.received().startsWith('220 ')) held.push(h);
            else h.socket.destroy();
            return h.received().startsWith('220 ');
          },
          `a connection from ${ip} is accepted`,
          3000,
        );
      }
      assert.equal(held.length, 5);
      const sixth = await connectFrom(suite.tern.smtpPort, '127.0.0.5');
      assert.match(sixth.received(), /^421 4\.7\.0 Too many connections, try again later/);
      await sixth.closed;
    } finally {
      for (const h of held) h.socket.destroy();
    }
    // Once they are gone, a normal client gets through again.
    await waitFor(
      async () => {
        try {
          await bystander();
          return true;
        } catch {
          return false;
        }
      },
      'bystander delivers after the connection flood',
      5000,
    );
  });

  it('closes an idle client with 421 4.4.2', async () => {
    const c = await openSession(suite.tern.smtpPort);
    try {
      const started = Date.now();
      const normal = bystander();
      const reply = await c.read(6000);
      assert.equal(reply.text, '421 4.4.2 Idle timeout, closing connection');
      await c.waitClosed(3000);
      const waited = Date.now() - started;
      assert.ok(waited >= 1500 && waited < 5000, `closed after ${waited} ms (idle timeout 2 s)`);
      await normal;
    } finally {
      c.close();
    }
  });

  it('closes an idle client in the middle of DATA and stores nothing', async () => {
    const before = await status(suite.site);
    const c = await openSession(suite.tern.smtpPort);
    try {
      assert.equal((await c.command('MAIL FROM:<a@remote.test>')).code, 250);
      assert.equal((await c.command('RCPT TO:<alice@example.test>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      c.send('Subject: half\r\n\r\nhalf a message');
      assert.match((await c.read(6000)).text, /^421 4\.4\.2 /);
      await c.waitClosed(3000);
    } finally {
      c.close();
    }
    assert.equal((await status(suite.site)).messages, before.messages);
  });

  it('closes the connection after too many bad commands with 421', async () => {
    const c = await openSession(suite.tern.smtpPort);
    try {
      const normal = bystander();
      for (let i = 1; i <= 4; i++) assert.match((await c.command(`BOGUS${i}`)).text, /^500 5\.5\.2 /);
      assert.match((await c.command('RCPT TO:<alice@example.test>')).text, /^503 5\.5\.1 /);
      assert.equal((await c.read()).text, '421 4.7.0 Too many errors, closing connection');
      await c.waitClosed(3000);
      await normal;
    } finally {
      c.close();
    }
  });

  it('answers 500 5.5.2 to a command line over --max-line-length and goes on', async () => {
    const c = await openSession(suite.tern.smtpPort);
    try {
      assert.equal((await c.command(`NOOP ${'a'.repeat(990)}`)).code, 250);
      assert.equal((await c.command(`NOOP ${'a'.repeat(2000)}`)).text, '500 5.5.2 Line too long');
      c.send(`NOOP ${'b'.repeat(5000)}`);
      c.send(`${'b'.repeat(5000)}\r\nNOOP\r\n`);
      assert.equal((await c.read()).text, '500 5.5.2 Line too long');
      assert.equal((await c.read()).text, '250 2.0.0 OK');
      assert.equal((await c.command('QUIT')).code, 221);
    } finally {
      c.close();
    }
  });

  it('kept delivering for the bystander throughout', async () => {
    assert.ok(bystanderSends >= 7, `bystander sent ${bystanderSends}`);
    const carol = await storedMessages(suite.site, 'carol@example.test');
    assert.equal(carol.filter((m) => m.blob.includes('Subject: bystander ')).length, bystanderSends);
  });
});
