/**
 * Hostile and broken input on the SMTP port: garbage and NUL bytes, a 1 MB line, 1 MB
 * of random binary, a pipelined NOOP flood (and one that never reads its replies),
 * early talkers, SMTP smuggling and STARTTLS command injection. Each gets a protocol
 * reply, never a crash, and afterwards a normal client still delivers.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { serveForSuite, status } from '../helpers/tern.js';
import { openSession, RawSmtp } from '../helpers/raw-smtp.js';
import { sendSimple, sleep, storedMessages, waitFor } from './support.js';

/** Resident memory of a process in bytes (Linux /proc). */
function rssOf(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(kb![1]) * 1024;
}

/** Collects everything a socket receives as latin1 text. */
function collect(socket: Socket | TLSSocket): { text: () => string; bytes: () => number } {
  let text = '';
  let bytes = 0;
  socket.on('data', (d: Buffer) => {
    bytes += d.length;
    text += d.toString('latin1');
  });
  return { text: () => text, bytes: () => bytes };
}

describe('SMTP bad input', () => {
  const suite = serveForSuite();

  /** The server process is alive and a real client can still deliver. */
  async function stillServes(): Promise<void> {
    assert.equal(suite.tern.proc.exitCode, null, `server exited:\n${suite.tern.output()}`);
    const info = await sendSimple(suite.tern.smtpPort, 'alice@example.test', { subject: `after abuse ${randomUUID()}` });
    assert.match(info.response, /^250 2\.0\.0 /);
  }

  it('answers garbage commands with 500 5.5.2 and valid ones normally', async () => {
    const c = await openSession(suite.tern.smtpPort);
    try {
      for (const junk of ['HELLO', 'GET / HTTP/1.1', 'MAIL', 'X'.repeat(100), '   ', '', '\x1b[31mred', 'MAILFROM:<a@b.test>', 'DATA!']) {
        assert.match((await c.command(junk)).text, /^5\d\d 5\.5\.\d /, JSON.stringify(junk));
      }
      assert.match((await c.command('MAIL FROM:')).text, /^501 5\.5\.4 /);
      assert.match((await c.command('RCPT TO:<alice@example.test>')).text, /^503 5\.5\.1 /);
      assert.match((await c.command('DATA')).text, /^503 5\.5\.1 /);
      assert.match((await c.command('VRFY alice')).text, /^252 /);
      assert.match((await c.command('EXPN staff')).text, /^502 5\.5\.1 /);
      assert.equal((await c.command('noop')).text, '250 2.0.0 OK');
      assert.equal((await c.command('QUIT')).code, 221);
    } finally {
      c.close();
    }
    await stillServes();
  });

  it('answers a 1 MB line without CRLF with 500 5.5.2 Line too long, then goes on', async () => {
    const c = await openSession(suite.tern.smtpPort);
    try {
      c.send(Buffer.alloc(1024 * 1024, 'A'));
      await sleep(50);
      c.send('\r\nNOOP\r\n');
      assert.equal((await c.read()).text, '500 5.5.2 Line too long');
      assert.equal((await c.read()).text, '250 2.0.0 OK');
      assert.equal((await c.command('MAIL FROM:<a@remote.test>')).code, 250);
      assert.equal((await c.command('QUIT')).code, 221);
    } finally {
      c.close();
    }
    await stillServes();
  });

  it('survives 1 MB of random binary as commands (500s, then 421 and close)', async () => {
    const c = await openSession(suite.tern.smtpPort);
    try {
      c.send(randomBytes(1024 * 1024));
      await c.waitClosed(10_000);
      const replies: string[] = [];
      for (;;) {
        try {
          replies.push((await c.read(100)).text);
        } catch {
          break;
        }
      }
      assert.ok(replies.length >= 2, `replies: ${replies.join(' | ')}`);
      assert.equal(replies[replies.length - 1], '421 4.7.0 Too many errors, closing connection');
      for (const r of replies.slice(0, -1)) assert.match(r, /^5\d\d /);
    } finally {
      c.close();
    }
    await stillServes();
  });

  it('stores 1 MB of binary inside DATA byte for byte (bare LF normalised)', async () => {
    // Random bytes without dots, so no line can look like an end-of-data marker.
    const payload = randomBytes(1024 * 1024).map((b) => (b === 0x2e ? 0x78 : b));
    const marker = `binary-${randomUUID()}`;
    const message = Buffer.concat([Buffer.from(`Subject: ${marker}\r\n\r\n`), payload, Buffer.from('\r\n')]);
    const c = await openSession(suite.tern.smtpPort);
    try {
      assert.equal((await c.command('MAIL FROM:<a@remote.test> BODY=8BITMIME')).code, 250);
      assert.equal((await c.command('RCPT TO:<bob@example.test>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      c.send(Buffer.concat([message, Buffer.from('.\r\n')]));
      assert.match((await c.read()).text, /^250 2\.0\.0 /);
    } finally {
      c.close();
    }
    const expected = Buffer.from(message.toString('latin1').replace(/(?<!\r)\n/g, '\r\n'), 'latin1');
    const [m] = (await storedMessages(suite.site, 'bob@example.test')).filter((x) => x.blob.includes(marker));
    assert.ok(m, 'stored');
    assert.ok(m.raw.subarray(m.raw.length - expected.length).equals(expected), 'stored bytes equal the sent bytes');
    await stillServes();
  });

  it('answers NUL bytes with protocol errors', async () => {
    const c = await openSession(suite.tern.smtpPort);
    try {
      assert.match((await c.command('\0\0\0')).text, /^500 5\.5\.2 /);
      assert.match((await c.command('NOOP\0')).text, /^500 5\.5\.2 /);
      assert.match((await c.command('MA\0IL FROM:<a@remote.test>')).text, /^500 5\.5\.2 /);
      assert.match((await c.command('MAIL FROM:<a\0b@remote.test>')).text, /^553 /);
      assert.match((await c.command('MAIL FROM:<a@remote.test>')).text, /^250 /);
      assert.match((await c.command('RCPT TO:<ali\0ce@example.test>')).text, /^553 /);
      assert.match((await c.command('RCPT TO:<alice@exam\0ple.test>')).text, /^553 /);
      assert.equal((await c.command('RSET')).code, 250);
    } finally {
      c.close();
    }
    await stillServes();
  });

  it('refuses a non-ASCII address without SMTPUTF8 with 553 5.6.7', async () => {
    const c = await openSession(suite.tern.smtpPort);
    try {
      c.send('MAIL FROM:<jürgen@remote.test>\r\n');
      assert.match((await c.read()).text, /^553 5\.6\.7 /);
      assert.equal((await c.command('MAIL FROM:<a@remote.test>')).code, 250);
      c.send('RCPT TO:<jürgen@example.test>\r\n');
      assert.match((await c.read()).text, /^553 5\.6\.7 /);
    } finally {
      c.close();
    }
  });

  it('answers pipelined NOOPs in order, then cuts a flood off after the junk-command limit', async () => {
    const socket = netConnect(suite.tern.smtpPort, '127.0.0.1');
    const got = collect(socket);
    try {
      await waitFor(() => got.text().includes('\r\n'), 'greeting');
      socket.write(`EHLO client.test\r\n${'NOOP\r\n'.repeat(10_000)}QUIT\r\n`);
      await new Promise((res) => socket.once('close', res));
      const lines = got.text().split('\r\n').filter(Boolean);
      assert.match(lines[0]!, /^220 /);
      const ehloEnd = lines.findIndex((l) => l.startsWith('250 ') && !l.startsWith('250 2'));
      const noops = lines.slice(ehloEnd + 1, -1);
      // 100 free NOOPs, then each counts as an error; the 20th error (--max-errors default) closes.
      assert.equal(noops.length, 120);
      assert.ok(noops.every((l) => l === '250 2.0.0 OK'));
      assert.equal(lines[lines.length - 1], '421 4.7.0 Too many errors, closing connection');
    } finally {
      socket.destroy();
    }
    await stillServes();
  });

  it('keeps memory bounded for an EHLO flood whose replies are never read, and answers every EHLO later', async () => {
    const pid = suite.tern.proc.pid!;
    const socket = netConnect(suite.tern.smtpPort, '127.0.0.1');
    socket.on('error', () => undefined);
    let received = 0;
    socket.on('data', (d: Buffer) => (received += d.length));
    await waitFor(() => received > 0, 'greeting');
    const greetingBytes = received;
    socket.pause(); // read nothing more until the end
    const rssBefore = rssOf(pid);
    const batch = Buffer.from('EHLO c\r\n'.repeat(100_000)); // 800 kB
    const batches = 10; // 8 MB in, over 100 MB of replies out
    for (let i = 0; i < batches; i++) socket.write(batch);
    // Let the server take what it will; a bounded server stops reading long before the end.
    await sleep(1500);
    const grown = rssOf(pid) - rssBefore;
    assert.ok(grown < 24 * 1024 * 1024, `server grew by ${(grown / 1048576).toFixed(1)} MB while the client did not read`);
    assert.ok(socket.writableLength > 0, 'the server applies back-pressure: the client still has unsent input');

    socket.resume();
    const probe = await openSession(suite.tern.smtpPort, 'EHLO c');
    const replyBytes = (await probe.command('EHLO c')).lines.join('\r\n').length + 2;
    probe.close();
    const expected = greetingBytes + batches * 100_000 * replyBytes;
    await waitFor(() => received >= expected, `all ${batches * 100_000} EHLOs answered (got ${received} of ${expected} bytes)`, 60_000);
    socket.destroy();
    await stillServes();
  });

  it('rejects smuggled end-of-data markers and never runs the smuggled commands', async () => {
    const before = await status(suite.site);
    const c = await openSession(suite.tern.smtpPort);
    try {
      const attempts = [
        'hello\n.\r\n', // <LF>.<CRLF>
        'hello\r\n.\n', // <CRLF>.<LF>
        'hello\n.\n', //   <LF>.<LF>
      ];
      for (const trick of attempts) {
        const smuggled = `smuggled ${randomUUID()}`;
        assert.equal((await c.command('MAIL FROM:<a@remote.test>')).code, 250);
        assert.equal((await c.command('RCPT TO:<alice@example.test>')).code, 250);
        assert.equal((await c.command('DATA')).code, 354);
        c.send(
          `Subject: cover\r\n\r\n${trick}` +
            `MAIL FROM:<evil@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nSubject: ${smuggled}\r\n\r\nevil\r\n.\r\nNOOP\r\n`,
        );
        assert.equal((await c.read()).text, '554 5.5.2 Bare LF around the end-of-data marker; message rejected', JSON.stringify(trick));
        // The next reply belongs to the real NOOP: no 250s for the smuggled MAIL/RCPT/DATA.
        assert.equal((await c.read()).text, '250 2.0.0 OK');
        assert.equal((await storedMessages(suite.site, 'bob@example.test')).filter((m) => m.blob.includes(smuggled)).length, 0);
      }
      assert.equal((await status(suite.site)).messages, before.messages);
      // The session is still in a clean state.
      assert.match((await c.command('RCPT TO:<alice@example.test>')).text, /^503 /);
      assert.equal((await c.command('MAIL FROM:<a@remote.test>')).code, 250);
      assert.equal((await c.command('RCPT TO:<alice@example.test>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      c.send('Subject: honest\r\n\r\nplain\r\n.\r\n');
      assert.match((await c.read()).text, /^250 2\.0\.0 /);
    } finally {
      c.close();
    }
    assert.equal((await status(suite.site)).messages, before.messages + 1);
    await stillServes();
  });

  it('discards commands pipelined after STARTTLS (no plaintext injection)', async () => {
    const plain = netConnect(suite.tern.smtpPort, '127.0.0.1');
    plain.on('error', () => undefined);
    const clear = collect(plain);
    let secure: TLSSocket | undefined;
    try {
      await waitFor(() => clear.text().includes('\r\n'), 'greeting');
      plain.write('EHLO client.test\r\n');
      await waitFor(() => /\r\n250 [^\r]*\r\n$/.test(clear.text()), 'EHLO reply');
      const before = clear.text().length;
      plain.write('STARTTLS\r\nMAIL FROM:<evil@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n');
      await waitFor(() => clear.text().length > before, 'STARTTLS reply');
      await sleep(100);
      // Exactly one plaintext reply: nothing pipelined after STARTTLS was answered.
      assert.equal(clear.text().slice(before), '220 2.0.0 Ready to start TLS\r\n');
      plain.removeAllListeners('data');

      secure = tlsConnect({ socket: plain, rejectUnauthorized: false, servername: 'mx.example.test' });
      await new Promise<void>((res, rej) => {
        secure!.once('secureConnect', res);
        secure!.once('error', rej);
      });
      const enc = collect(secure);
      const ask = async (line: string) => {
        const start = enc.text().length;
        secure!.write(`${line}\r\n`);
        await waitFor(() => /(^|\r\n)\d{3} [^\r]*\r\n$/.test(enc.text().slice(start)), `reply to ${line}`);
        return enc.text().slice(start);
      };
      const ehlo = await ask('EHLO client.test');
      assert.match(ehlo, /^250-mx\.example\.test/);
      assert.doesNotMatch(ehlo, /STARTTLS/);
      // MAIL was discarded, so there is no transaction to add a recipient to.
      assert.match(await ask('RCPT TO:<bob@example.test>'), /^503 5\.5\.1 /);
      assert.match(await ask('STARTTLS'), /^503 5\.5\.1 /);
      assert.match(await ask('QUIT'), /^221 /);
    } finally {
      secure?.destroy();
      plain.destroy();
    }
    await stillServes();
  });
});

describe('SMTP early talkers (--greeting-delay)', () => {
  const suite = serveForSuite({ args: ['--greeting-delay', '300'] });

  it('refuses a client that sends commands before the greeting with 554', async () => {
    const before = await status(suite.site);
    const c = await RawSmtp.connect(suite.tern.smtpPort);
    try {
      c.send('EHLO spam.test\r\nMAIL FROM:<spam@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: spam\r\n\r\nspam\r\n.\r\n');
      const reply = await c.read();
      assert.equal(reply.text, '554 5.5.1 Protocol error: data sent before greeting');
      await c.waitClosed(3000);
    } finally {
      c.close();
    }
    assert.equal((await status(suite.site)).messages, before.messages);
  });

  it('greets a patient client after the delay, and nodemailer delivers', async () => {
    const started = Date.now();
    const c = await RawSmtp.connect(suite.tern.smtpPort);
    try {
      assert.match((await c.read()).text, /^220 mx\.example\.test ESMTP/);
      assert.ok(Date.now() - started >= 250, 'the greeting waited for the delay');
      assert.equal((await c.command('EHLO client.test')).code, 250);
    } finally {
      c.close();
    }
    const info = await sendSimple(suite.tern.smtpPort, 'alice@example.test');
    assert.match(info.response, /^250 /);
  });
});
