/**
 * Regression tests for the protocol-level defects of issue 5, each through the real
 * `tern serve` over real sockets: LMTP replies for a recipient deleted mid-transaction,
 * quota checks that block the event loop and 452s that cost nothing, memory held by
 * unfinished DATA, quota overshoot by parallel transactions, <Postmaster> under a
 * hostname that is not a local domain, quoted senders in Return-Path, and ESMTP
 * parameters after HELO and control characters echoed in replies.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { openStore } from '../../src/store/open.js';
import type { NewDelivery } from '../../src/store/store.js';
import { openSession, RawSmtp, type SmtpReply } from '../helpers/raw-smtp.js';
import { cli, runCli, serveForSuite, status, type Site } from '../helpers/tern.js';
import { sendSimple, sleep, storedMessages, within } from './support.js';

/** Resident memory of a process in bytes (Linux /proc). */
function rssOf(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(kb![1]) * 1024;
}

const MB = 1024 * 1024;

/** Bytes stored in `address`'s INBOX, read from the store. */
async function storedBytes(site: Site, address: string): Promise<number> {
  return (await storedMessages(site, address)).reduce((sum, m) => sum + m.size, 0);
}

/** Puts `count` small messages into `address`'s INBOX through the store API (concurrent batches, one shared blob). */
async function fillMailbox(site: Site, address: string, count: number): Promise<void> {
  const store = await openStore({ dataDir: site.dataDir });
  try {
    const account = await store.getAccount(address);
    assert.ok(account, `${address} exists`);
    const blob = Buffer.from(`Subject: filler\r\n\r\n${'x'.repeat(900)}\r\n`);
    const hash = createHash('sha256').update(blob).digest('hex');
    const one = (i: number): NewDelivery => ({
      ternId: `FILL${i}`,
      blob,
      hash,
      envelopeFrom: 'filler@remote.test',
      accountIds: [account.id],
      internalDate: new Date(),
    });
    for (let start = 0; start < count; start += 2000) {
      const batch = Array.from({ length: Math.min(2000, count - start) }, (_, i) => store.deliver(one(start + i)));
      await Promise.all(batch);
    }
  } finally {
    await store.close();
  }
}

/** One whole transaction on an open session; returns the reply to the final dot. */
async function sendOn(c: RawSmtp, from: string, to: string, body: string): Promise<SmtpReply> {
  assert.equal((await c.command(`MAIL FROM:${from}`)).code, 250);
  assert.equal((await c.command(`RCPT TO:${to}`)).code, 250);
  assert.equal((await c.command('DATA')).code, 354);
  c.send(`${body}\r\n.\r\n`);
  return c.read();
}

/** Client bytes a reply must never carry: C0 controls except the final CRLF, DEL, C1, Unicode line separators. */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]/;

describe('LMTP: a recipient deleted between RCPT and the end of DATA', () => {
  const suite = serveForSuite({
    setup: async (site) => {
      await cli(['user', 'add', 'carol@example.test', '--password-stdin', ...site.args], 'password123\n');
    },
  });

  it('gets 550 5.1.1 for the vanished recipient and 250 for the others, and nothing is stored for it', async () => {
    const before = await status(suite.site);
    const subject = `vanish ${randomUUID()}`;
    const c = await openSession(suite.tern.lmtpPort, 'LHLO client.test');
    try {
      assert.equal((await c.command('MAIL FROM:<sender@remote.test>')).code, 250);
      for (const rcpt of ['alice', 'carol', 'bob']) assert.match((await c.command(`RCPT TO:<${rcpt}@example.test>`)).text, /^250 2\.1\.5 /);
      assert.equal((await c.command('DATA')).code, 354);
      c.send(`Subject: ${subject}\r\n\r\nfirst half\r\n`);
      const del = await runCli(['user', 'del', 'carol@example.test', ...suite.site.args]);
      assert.equal(del.code, 0, del.stderr);
      c.send('second half\r\n.\r\n');
      const replies = [(await c.read()).text, (await c.read()).text, (await c.read()).text];
      assert.match(replies[0]!, /^250 2\.0\.0 <alice@example\.test> /);
      assert.match(replies[1]!, /^550 5\.1\.1 /, `carol's reply: ${replies[1]}`);
      assert.match(replies[2]!, /^250 2\.0\.0 <bob@example\.test> /);
      assert.equal((await c.command('QUIT')).code, 221);
    } finally {
      c.close();
    }
    for (const who of ['alice', 'bob']) {
      const got = (await storedMessages(suite.site, `${who}@example.test`)).filter((m) => m.blob.includes(subject));
      assert.equal(got.length, 1, `${who} has the message once`);
    }
    const after = await status(suite.site);
    assert.equal(after.messages, before.messages + 2, 'two mailbox entries were added, none for carol');
    assert.ok(!after.accounts.some((a) => a.address === 'carol@example.test'));
  });
});

describe('RCPTs answered 452 for a full mailbox', () => {
  const suite = serveForSuite({
    args: ['--max-errors', '3', '--max-recipients', '2'],
    setup: async (site) => {
      await cli(['user', 'add', 'full@example.test', '--quota', '1K', '--password-stdin', ...site.args], 'password123\n');
      await fillMailbox(site, 'full@example.test', 2); // 2 × ~920 bytes: over its 1 KB quota
    },
  });

  it('count as errors: the connection is closed with 421 after max-errors', async () => {
    const c = await openSession(suite.tern.smtpPort);
    try {
      assert.equal((await c.command('MAIL FROM:<s@remote.test>')).code, 250);
      assert.match((await c.command('RCPT TO:<full@example.test>')).text, /^452 4\.2\.2 /);
      assert.match((await c.command('RCPT TO:<full@example.test>')).text, /^452 4\.2\.2 /);
      assert.equal((await c.command('RSET')).code, 250);
      assert.equal((await c.command('MAIL FROM:<s@remote.test>')).code, 250);
      assert.match((await c.command('RCPT TO:<full@example.test>')).text, /^452 4\.2\.2 /);
      const next = await c.read(3000).catch((err: Error) => ({ code: 0, text: err.message, lines: [] }));
      assert.match(next.text, /^421 4\.7\.0 /, 'the third error closes the connection');
      await c.waitClosed();
    } finally {
      c.close();
    }
  });

  it('count against the recipient limit', async () => {
    const c = await openSession(suite.tern.smtpPort);
    try {
      assert.equal((await c.command('MAIL FROM:<s@remote.test>')).code, 250);
      assert.match((await c.command('RCPT TO:<full@example.test>')).text, /^452 4\.2\.2 /);
      assert.match((await c.command('RCPT TO:<full@example.test>')).text, /^452 4\.2\.2 /);
      // Two recipients tried with --max-recipients 2: a third is over the limit, whatever it is.
      assert.match((await c.command('RCPT TO:<alice@example.test>')).text, /^452 4\.5\.3 /);
    } finally {
      c.close();
    }
  });
});

describe('event loop: RCPT floods to an account with a quota and many messages', () => {
  const MESSAGES = 30_000;
  const suite = serveForSuite({
    setup: async (site) => {
      await cli(['user', 'add', 'big@example.test', '--quota', '10G', '--password-stdin', ...site.args], 'password123\n');
      await fillMailbox(site, 'big@example.test', MESSAGES);
    },
  });

  it(`keeps another client's EHLO under 500 ms while 4 connections pipeline 100 RCPTs each (${MESSAGES} messages stored)`, async () => {
    const probe = await RawSmtp.connect(suite.tern.smtpPort);
    const flooders = await Promise.all(Array.from({ length: 4 }, () => openSession(suite.tern.smtpPort)));
    try {
      assert.equal((await probe.read()).code, 220);
      for (const f of flooders) assert.equal((await f.command('MAIL FROM:<s@remote.test>')).code, 250);
      const flood = 'RCPT TO:<big@example.test>\r\n'.repeat(100);
      for (const f of flooders) f.send(flood);
      const roundTrips: number[] = [];
      const floodDone = Promise.all(
        flooders.map(async (f) => {
          for (let i = 0; i < 100; i++) assert.match((await f.read(60_000)).text, /^250 2\.1\.5 /);
        }),
      );
      let done = false;
      void floodDone.finally(() => (done = true));
      do {
        const t0 = performance.now();
        assert.equal((await probe.command('EHLO probe.test')).code, 250);
        roundTrips.push(performance.now() - t0);
        await sleep(5);
      } while (!done);
      await floodDone;
      const worst = Math.max(...roundTrips);
      console.log(`EHLO round trips during the flood: ${roundTrips.length}, worst ${worst.toFixed(1)} ms`);
      assert.ok(worst < 500, `EHLO took ${worst.toFixed(0)} ms while the RCPT floods ran`);
    } finally {
      probe.close();
      for (const f of flooders) f.close();
    }
  });
});

describe('memory budget: connections parking large unfinished DATA', () => {
  const suite = serveForSuite();

  it('keeps the server under 300 MB RSS with 20 × 20 MB unfinished, and a one-line message gets its 250 within 1 s', async () => {
    const parked = await Promise.all(Array.from({ length: 20 }, () => openSession(suite.tern.smtpPort)));
    let peak = rssOf(suite.tern.proc.pid!);
    const sampler = setInterval(() => (peak = Math.max(peak, rssOf(suite.tern.proc.pid!))), 50);
    try {
      for (const c of parked) {
        assert.equal((await c.command('MAIL FROM:<big@remote.test>')).code, 250);
        assert.equal((await c.command('RCPT TO:<alice@example.test>')).code, 250);
        assert.equal((await c.command('DATA')).code, 354);
      }
      const line = Buffer.from(`${'y'.repeat(998)}\r\n`);
      const chunk = Buffer.concat(Array.from({ length: 1024 }, () => line)); // ~1 MB
      await Promise.all(
        parked.map(async (c) => {
          for (let i = 0; i < 20; i++) {
            if (!c.socket.write(chunk)) await new Promise((r) => c.socket.once('drain', r));
          }
        }),
      );
      await sleep(1000); // let the server read what the kernel still buffers
      const t0 = performance.now();
      const sent = await within(sendSimple(suite.tern.smtpPort, 'bob@example.test', { subject: `small ${randomUUID()}` }), 10_000);
      const ms = performance.now() - t0;
      assert.notEqual(sent, 'timeout', 'the one-line message got an answer');
      console.log(`peak RSS ${(peak / MB).toFixed(0)} MB; one-line message answered in ${ms.toFixed(0)} ms`);
      assert.ok(ms < 1000, `one-line message took ${ms.toFixed(0)} ms`);
      assert.ok(peak < 300 * MB, `peak RSS ${(peak / MB).toFixed(0)} MB with 20 × 20 MB of unfinished DATA`);
    } finally {
      clearInterval(sampler);
      for (const c of parked) c.close();
    }
  });
});

describe('quota: parallel transactions without SIZE=', () => {
  const suite = serveForSuite({
    setup: async (site) => {
      await cli(['user', 'add', 'q1@example.test', '--quota', '1M', '--password-stdin', ...site.args], 'password123\n');
      await cli(['user', 'add', 'q12@example.test', '--quota', '12M', '--password-stdin', ...site.args], 'password123\n');
    },
  });

  /** 20 parallel 5 MB messages to `rcpt`, every RCPT accepted first; returns the replies to the final dots. */
  async function parallelBigMessages(rcpt: string): Promise<SmtpReply[]> {
    const clients = await Promise.all(Array.from({ length: 20 }, () => openSession(suite.tern.smtpPort)));
    try {
      for (const c of clients) {
        assert.equal((await c.command('MAIL FROM:<s@remote.test>')).code, 250);
        assert.match((await c.command(`RCPT TO:<${rcpt}>`)).text, /^250 /, 'nothing is stored yet: every RCPT fits');
        assert.equal((await c.command('DATA')).code, 354);
      }
      const body = Buffer.from(`Subject: big\r\n\r\n${`${'z'.repeat(998)}\r\n`.repeat(5 * 1024)}.\r\n`);
      for (const c of clients) c.send(body);
      return await Promise.all(clients.map((c) => c.read(60_000)));
    } finally {
      for (const c of clients) c.close();
    }
  }

  it('stores nothing over a 1 MB quota; every 5 MB message gets 552 5.2.2 at the end of data', async () => {
    const replies = await parallelBigMessages('q1@example.test');
    const used = await storedBytes(suite.site, 'q1@example.test');
    const codes = replies.map((r) => r.text.slice(0, 9));
    assert.ok(used <= 1 * MB, `${(used / MB).toFixed(1)} MB stored for a 1 MB quota; replies ${codes.join(', ')}`);
    for (const r of replies) if (r.code !== 250) assert.match(r.text, /^552 5\.2\.2 /);
  });

  it('stores at most what fits a 12 MB quota (two 5 MB messages); the rest get 552 5.2.2', async () => {
    const replies = await parallelBigMessages('q12@example.test');
    const stored = await storedMessages(suite.site, 'q12@example.test');
    const used = stored.reduce((sum, m) => sum + m.size, 0);
    const accepted = replies.filter((r) => r.code === 250).length;
    assert.ok(used <= 12 * MB, `${(used / MB).toFixed(1)} MB stored for a 12 MB quota (${accepted} accepted)`);
    assert.equal(stored.length, accepted, 'exactly the accepted messages are stored');
    assert.ok(accepted >= 1, 'a message that fits is accepted');
    for (const r of replies) if (r.code !== 250) assert.match(r.text, /^552 5\.2\.2 /);
  });
});

describe('serve --hostname with a name that is not a local domain', () => {
  const suite = serveForSuite({ args: ['--hostname', 'mail.other.example'] });

  it('accepts RCPT TO:<Postmaster> and delivers it to the admin (RFC 5321 4.5.1)', async () => {
    const subject = `postmaster ${randomUUID()}`;
    const c = await openSession(suite.tern.smtpPort);
    try {
      assert.equal((await c.command('MAIL FROM:<s@remote.test>')).code, 250);
      assert.match((await c.command('RCPT TO:<Postmaster>')).text, /^250 /);
      assert.equal((await c.command('DATA')).code, 354);
      c.send(`Subject: ${subject}\r\n\r\nhello postmaster\r\n.\r\n`);
      assert.match((await c.read()).text, /^250 2\.0\.0 /);
    } finally {
      c.close();
    }
    const got = (await storedMessages(suite.site, 'admin@mx.example.test')).filter((m) => m.blob.includes(subject));
    assert.equal(got.length, 1, 'the admin has it');
  });
});

describe('envelope and reply hygiene', () => {
  const suite = serveForSuite();

  it('writes a quoted sender into Return-Path exactly: <"a b\\"c"@r.test>', async () => {
    const subject = `quoted ${randomUUID()}`;
    const c = await openSession(suite.tern.smtpPort);
    try {
      assert.match((await sendOn(c, '<"a b\\"c"@r.test>', '<alice@example.test>', `Subject: ${subject}\r\n\r\nhi`)).text, /^250 /);
    } finally {
      c.close();
    }
    const [m] = (await storedMessages(suite.site, 'alice@example.test')).filter((x) => x.blob.includes(subject));
    assert.ok(m, 'stored');
    assert.equal(m.envelopeFrom, '"a b\\"c"@r.test');
    assert.equal(/^Return-Path: (.*)\r\n/.exec(m.blob)?.[1], '<"a b\\"c"@r.test>');
  });

  for (const param of ['SIZE=100', 'BODY=8BITMIME', 'SMTPUTF8']) {
    it(`refuses MAIL FROM … ${param} after HELO (parameters need EHLO)`, async () => {
      const c = await openSession(suite.tern.smtpPort, 'HELO client.test');
      try {
        assert.match((await c.command(`MAIL FROM:<s@remote.test> ${param}`)).text, /^(555|501) 5\.5\.4 /);
        assert.equal((await c.command('MAIL FROM:<s@remote.test>')).code, 250, 'without parameters MAIL works after HELO');
      } finally {
        c.close();
      }
    });
  }

  it('never echoes control characters in a reply', async () => {
    const c = await openSession(suite.tern.smtpPort);
    try {
      const hostile = ['MAIL FROM:<s@remote.test> \x00=1', 'MAIL FROM:<s@remote.test> X\x1b[2J\x07=1', 'MAIL FROM:<s@remote.test> A\rB', 'EHLO a\x00\x1bb'];
      for (const line of hostile) {
        const r = await c.command(line);
        for (const l of r.lines) assert.doesNotMatch(l, CONTROL, `reply to ${JSON.stringify(line)}: ${JSON.stringify(r.text)}`);
      }
    } finally {
      c.close();
    }
  });
});
