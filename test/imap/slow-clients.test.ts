/**
 * Hostile slow clients over real sockets: each is cut off by a limit while a well-behaved
 * client on the same server keeps being served.
 *
 * - POP3: a command dribbled a byte at a time (which keeps the socket from ever idling) has
 *   --idle-timeout to finish its line (src/pop3/session.ts, the line timer in pump()); the
 *   autologout of a silent client stays at RFC 1939's 10 minutes.
 * - IMAP before login: only finished commands restart the fixed 60 s pre-login timer
 *   (PRE_AUTH_TIMEOUT_MS in src/imap/session.ts), so a dribbler is logged out 60 s after its
 *   greeting. That client is started first and checked last, so the other tests run
 *   during its minute.
 * - IMAP literals: a synchronizing literal over the limit is refused before it is sent (BAD
 *   "Literal too large" over 64 KiB before login, NO [TOOBIG] over --max-message-size for
 *   APPEND after it); a LITERAL+ one is read and dropped without being held in memory, then
 *   refused the same way. Lines over 64 KiB get BAD "Command line too long", and a command
 *   whose inline literals pass 1 MiB gets BAD "Command too long".
 * - Connections: 200 idle ones leave the server serving; one past --max-connections-per-ip
 *   is refused with the listener's BYE / -ERR line.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { ImapFlow } from 'imapflow';
import { createSite, freePort, startTern, type Site, type TernServer } from '../helpers/tern.js';
import { deliver, PASSWORD, Pop3Client } from '../pop3/support.js';
import { imapflow, RawImap } from './support.js';
import { openSocket } from '../helpers/line-client.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** --max-message-size 1m, as parseSize reads it. */
const MAX_MESSAGE = 1024 * 1024;
/** DEFAULT_READER_LIMITS.maxLine and maxInlineLiteral (src/imap/proto/command-reader.ts). */
const MAX_LINE = 64 * 1024;
const PER_IP = 50;
/** PRE_AUTH_TIMEOUT_MS (src/imap/session.ts): fixed, no flag sets it. */
const IMAP_PRE_AUTH_MS = 60_000;
/** --idle-timeout 2: the POP3 line deadline. */
const POP3_IDLE_MS = 2000;

const SUBJECT = 'slow clients bystander mail';
const MESSAGE = `From: bob@example.test\r\nTo: alice@example.test\r\nSubject: ${SUBJECT}\r\nMessage-ID: <slow-clients@test>\r\n\r\nHello.\r\n`;

/** A raw IMAP (or POP3) client from a chosen loopback address, that can also send a literal's worth of bytes. */
class Raw extends RawImap {
  static async from(port: number, localAddress = '127.0.0.1'): Promise<Raw> {
    return new Raw(await openSocket(port, { localAddress }));
  }

  /** Sends `n` bytes of `fill`, waiting on 'drain' (never more than 1 MiB queued). */
  async writeBytes(n: number, fill = 0x79): Promise<void> {
    const chunk = Buffer.alloc(1 << 20, fill);
    for (let left = n; left > 0;) {
      const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= piece.length;
      if (this.socket.destroyed) throw new Error('closed while sending');
      if (!this.socket.write(piece)) await new Promise<void>((res) => this.socket.once('drain', () => res()));
      if (this.closed) throw new Error('closed while sending');
    }
  }
}

/** The peak resident memory of a process (VmHWM), in bytes. */
function peakMemory(pid: number): number {
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(kb, 'VmHWM in /proc/<pid>/status');
  return Number(kb[1]) * 1024;
}

/** The well-behaved IMAP client's round: LIST, then FETCH of INBOX, which holds the delivered message. */
async function imapRound(client: ImapFlow): Promise<void> {
  const boxes = await client.list();
  assert.ok(
    boxes.some((b) => b.path === 'INBOX'),
    'LIST shows INBOX',
  );
  const lock = await client.getMailboxLock('INBOX');
  try {
    const subjects: string[] = [];
    for await (const m of client.fetch('1:*', { envelope: true })) subjects.push(m.envelope?.subject ?? '');
    assert.ok(subjects.includes(SUBJECT), `FETCH shows the delivered message: ${JSON.stringify(subjects)}`);
  } finally {
    lock.release();
  }
}

/** A whole IMAP session of the well-behaved client: login, a round, logout. */
async function imapBystander(port: number): Promise<void> {
  const client = await imapflow(port);
  try {
    await imapRound(client);
  } finally {
    await client.logout();
  }
}

/** A whole POP3 session of the well-behaved client (INBOX holds the delivered message, and later the one APPENDed at the limit); returns the STAT answer. */
async function pop3Bystander(port: number): Promise<string> {
  const c = await Pop3Client.connect(port);
  try {
    assert.equal(await c.command('USER alice@example.test'), '+OK Send your password');
    const login = await c.command(`PASS ${PASSWORD}`);
    const m = /^\+OK Logged in, (\d+) messages \((\d+) octets\)$/.exec(login);
    assert.ok(m && Number(m[1]) >= 1, login);
    const stat = await c.command('STAT');
    assert.equal(stat, `+OK ${m[1]} ${m[2]}`);
    assert.equal(await c.command('QUIT'), `+OK Tern POP3 server signing off (${m[1]} messages left)`);
    return stat;
  } finally {
    c.close();
  }
}

/** Opens `count` connections from `ip` at once; each must be greeted with a line matching `greeting`. */
async function openIdle(port: number, ip: string, count: number, greeting: RegExp): Promise<Raw[]> {
  const settled = await Promise.allSettled(
    Array.from({ length: count }, async () => {
      const c = await Raw.from(port, ip);
      try {
        assert.match(await c.until(/\r\n/), greeting);
      } catch (err) {
        c.close();
        throw err;
      }
      return c;
    }),
  );
  const open = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) {
    for (const c of open) c.close();
    throw failed.reason;
  }
  return open;
}

describe('slow and hostile clients are cut off while others are served', { timeout: 88_000 }, () => {
  let site: Site;
  let tern: TernServer;
  let imapPort: number;
  let pop3Port: number;
  const sockets: Array<{ close(): void }> = [];

  /** The pre-login IMAP dribbler, started in before() and checked by the last test. */
  let dribbler: Raw;
  let dribblerGreetedAt = 0;
  let dribbled = 0;
  let dribbling: Promise<void>;

  before(async () => {
    site = await createSite();
    imapPort = await freePort();
    pop3Port = await freePort();
    tern = await startTern(site, [
      '--roles',
      'smtp,imap,pop3',
      '--imap-port',
      String(imapPort),
      '--pop3-port',
      String(pop3Port),
      '--max-message-size',
      '1m',
      '--max-connections-per-ip',
      String(PER_IP),
      '--idle-timeout',
      '2',
    ]);
    await deliver(tern.smtpPort, 'alice@example.test', MESSAGE);

    // The IMAP dribbler (its own address): a LOGIN that never ends, a byte every 500 ms.
    dribbler = await Raw.from(imapPort, '127.0.0.2');
    sockets.push(dribbler);
    assert.match(await dribbler.until(/\r\n/), /^\* OK \[CAPABILITY [^\]]*\] mx\.example\.test Tern IMAP4rev1 ready\r\n$/);
    dribblerGreetedAt = Date.now();
    dribbling = (async () => {
      const text = 'a1 LOGIN alice@example.test "';
      for (let i = 0; !dribbler.closed && Date.now() - dribblerGreetedAt < IMAP_PRE_AUTH_MS + 10_000; i++) {
        dribbler.write(i < text.length ? text[i]! : 'x');
        dribbled++;
        await sleep(500);
      }
    })();
  });

  after(async () => {
    for (const s of sockets) s.close();
    await dribbling?.catch(() => undefined);
    await tern?.stop();
  });

  it('POP3: a USER line dribbled a byte every 300 ms is cut off at the 2 s line deadline; another client logs in and STATs meanwhile', async (t) => {
    const slow = await Pop3Client.connect(pop3Port);
    sockets.push(slow);
    assert.equal(slow.greeting, '+OK mx.example.test POP3 Tern ready');
    const started = Date.now();
    let sent = 0;
    const dribble = (async () => {
      for (const byte of 'USER alice@example.test') {
        if (slow.closed) return;
        slow.send(byte);
        sent++;
        await sleep(300);
      }
    })();
    await sleep(300);
    // The bystander, on the same listener and address, while the line is still being dribbled.
    const stat = await pop3Bystander(pop3Port);
    assert.match(stat, /^\+OK 1 \d+$/, 'only the delivered message so far');
    assert.equal(await slow.line(5000), '-ERR Autologout: idle for too long');
    await slow.waitClosed(3000);
    const took = Date.now() - started;
    t.diagnostic(`cut off after ${took} ms`);
    await dribble;
    assert.ok(took >= POP3_IDLE_MS - 100 && took < POP3_IDLE_MS + 1500, `cut off after ${took} ms (line deadline ${POP3_IDLE_MS} ms)`);
    // A byte every 300 ms never let the socket idle for 2 s: the line deadline did it, mid-line.
    assert.ok(sent >= 6 && sent < 'USER alice@example.test'.length, `${sent} bytes sent before the cut`);
    // And the listener still serves.
    assert.match(await pop3Bystander(pop3Port), /^\+OK 1 \d+$/);
  });

  it('IMAP before login: an APPEND literal over 64 KiB is refused with BAD, the {N} one unsent and the {N+} one read and dropped', async () => {
    const c = await Raw.from(imapPort);
    sockets.push(c);
    try {
      await c.until(/\r\n/);
      // Synchronizing: answered at once, no "+" continuation, the client never sends it.
      c.write('a APPEND INBOX {999999999}\r\n');
      assert.equal(await c.tagged('a'), 'a BAD Literal too large\r\n');
      c.write('b APPEND INBOX {50000000}\r\n');
      assert.equal(await c.tagged('b'), 'b BAD Literal too large\r\n');
      assert.equal(await c.command('c', 'NOOP'), 'c OK NOOP completed\r\n');

      // LITERAL+: the client sends it without waiting; nothing is answered until it is read through.
      c.write('d APPEND INBOX {50000000+}\r\n');
      await sleep(300);
      assert.equal(c.unread(), '');
      await c.writeBytes(50_000_000);
      c.write('\r\n');
      assert.equal(await c.tagged('d', 30_000), 'd BAD Literal too large\r\n');
      assert.equal(await c.command('e', 'NOOP'), 'e OK NOOP completed\r\n');
      await imapBystander(imapPort);
    } finally {
      c.close();
    }
  });

  it('IMAP after login: APPEND over --max-message-size gets NO [TOOBIG] without the server holding the literal; at the limit it is stored', async (t) => {
    const c = await Raw.from(imapPort);
    sockets.push(c);
    const bystander = await imapflow(imapPort);
    try {
      await c.until(/\r\n/);
      assert.match(await c.command('a', 'LOGIN alice@example.test password123'), /^a OK \[CAPABILITY [^\]]*\] Logged in\r\n$/);
      const messages = async (tag: string) => Number(/\* STATUS INBOX \(MESSAGES (\d+)\)/.exec(await c.command(tag, 'STATUS INBOX (MESSAGES)'))![1]);
      const before = await messages('b');
      const tooBig = `NO [TOOBIG] Message larger than ${MAX_MESSAGE} octets`;

      c.write('c APPEND INBOX {50000000}\r\n');
      assert.equal(await c.tagged('c'), `c ${tooBig}\r\n`);
      c.write('d APPEND INBOX {999999999}\r\n');
      assert.equal(await c.tagged('d'), `d ${tooBig}\r\n`);
      c.write(`e APPEND INBOX {${MAX_MESSAGE + 1}}\r\n`);
      assert.equal(await c.tagged('e'), `e ${tooBig}\r\n`);
      await imapRound(bystander);

      const peakBefore = peakMemory(tern.proc.pid!);
      c.write('f APPEND INBOX {50000000+}\r\n');
      await sleep(300);
      assert.equal(c.unread(), '');
      await c.writeBytes(50_000_000);
      c.write('\r\n');
      assert.equal(await c.tagged('f', 30_000), `f ${tooBig}\r\n`);
      await imapRound(bystander);
      c.write('g APPEND INBOX {200000000+}\r\n');
      await c.writeBytes(200_000_000);
      c.write('\r\n');
      assert.equal(await c.tagged('g', 60_000), `g ${tooBig}\r\n`);
      const grew = peakMemory(tern.proc.pid!) - peakBefore;
      t.diagnostic(`peak memory grew ${Math.round(grew / 1048576)} MiB`);
      assert.ok(grew < 100 * 1024 * 1024, `the server's peak memory grew ${Math.round(grew / 1048576)} MiB over 250 MB of refused literals`);

      // Exactly at the limit: "+", then stored.
      const head = `Subject: at the limit\r\n\r\n`;
      const body = head + 'z'.repeat(MAX_MESSAGE - head.length - 2) + '\r\n';
      assert.equal(Buffer.byteLength(body), MAX_MESSAGE);
      c.write(`h APPEND INBOX {${MAX_MESSAGE}}\r\n`);
      assert.equal(await c.until(/\r\n/), '+ Ready for literal data\r\n');
      c.write(`${body}\r\n`);
      assert.match(await c.tagged('h'), /^h OK \[APPENDUID \d+ \d+\] APPEND completed\r\n$/m);
      assert.equal(await messages('i'), before + 1, 'only the message at the limit was stored');
      await imapRound(bystander);
    } finally {
      c.close();
      await bystander.logout();
    }
  });

  it('IMAP: a command line over 64 KiB gets BAD "Command line too long", before and after login; the session goes on', async () => {
    const c = await Raw.from(imapPort);
    sockets.push(c);
    try {
      await c.until(/\r\n/);
      assert.equal(await c.command('a', `NOOP ${'x'.repeat(70_000)}`), 'a BAD Command line too long\r\n');
      assert.equal(await c.command('b', 'NOOP'), 'b OK NOOP completed\r\n');
      await c.command('c', 'LOGIN alice@example.test password123');
      // A 4 MiB line: dropped as it arrives (never buffered whole), answered at its end.
      c.write('d NOOP ');
      await c.writeBytes(4 << 20);
      c.write('\r\n');
      assert.equal(await c.tagged('d'), 'd BAD Command line too long\r\n');
      // The limit itself: 64 KiB before the LF (CR included) is a line; one byte more is not.
      const list = (tag: string, bytes: number) => {
        const start = `${tag} LIST "" "`;
        return `${start}${'p'.repeat(bytes - start.length - 2)}"\r`;
      };
      assert.equal(Buffer.byteLength(list('e', MAX_LINE)), MAX_LINE);
      c.write(`${list('e', MAX_LINE)}\n`);
      assert.equal(await c.tagged('e'), 'e OK LIST completed\r\n');
      c.write(`${list('f', MAX_LINE + 1)}\n`);
      assert.equal(await c.tagged('f'), 'f BAD Command line too long\r\n');
      assert.equal(await c.command('g', 'NOOP'), 'g OK NOOP completed\r\n');
      await imapBystander(imapPort);
    } finally {
      c.close();
    }
  });

  it("IMAP: a command's inline literals count toward its 1 MiB limit", async () => {
    const c = await Raw.from(imapPort);
    sockets.push(c);
    try {
      await c.until(/\r\n/);
      c.write('a NOOP');
      const literal = Buffer.alloc(MAX_LINE, 0x7a);
      for (let i = 0; i < 20; i++) c.write(Buffer.concat([Buffer.from(` {${MAX_LINE}+}\r\n`), literal]));
      c.write('\r\n');
      assert.equal(await c.tagged('a'), 'a BAD Command too long\r\n');
    } finally {
      c.close();
    }
  });

  it(`200 idle connections do not keep others from being served; one past --max-connections-per-ip ${PER_IP} is refused`, async () => {
    const idle: Raw[] = [];
    try {
      // IMAP: 50 from each of four addresses, all greeted.
      for (const ip of ['127.0.0.10', '127.0.0.11', '127.0.0.12', '127.0.0.13'])
        idle.push(...(await openIdle(imapPort, ip, PER_IP, /^\* OK \[CAPABILITY [^\]]*\] mx\.example\.test Tern IMAP4rev1 ready\r\n$/)));
      assert.equal(idle.length, 200);
      const refused = await Raw.from(imapPort, '127.0.0.10');
      sockets.push(refused);
      assert.equal(await refused.until(/\r\n/), '* BYE Too many connections, try later\r\n');
      await refused.waitClosed(3000);
      await imapBystander(imapPort);

      // POP3 (tern serve's listener): the same per-address limit, refused with -ERR [SYS/TEMP].
      idle.push(...(await openIdle(pop3Port, '127.0.0.20', PER_IP, /^\+OK mx\.example\.test POP3 Tern ready\r\n$/)));
      const refusedPop = await Raw.from(pop3Port, '127.0.0.20');
      sockets.push(refusedPop);
      assert.equal(await refusedPop.until(/\r\n/), '-ERR [SYS/TEMP] Too many connections, try later\r\n');
      await refusedPop.waitClosed(3000);
      assert.match(await pop3Bystander(pop3Port), /^\+OK \d+ \d+$/);

      // All the idle ones are still there (nothing was dropped to make room).
      await sleep(200);
      assert.equal(idle.filter((c) => c.closed).length, 0);
    } finally {
      for (const c of idle) c.close();
    }
    // Once they are gone, the address is let in again.
    const deadline = Date.now() + 5000;
    for (;;) {
      const again = await Raw.from(imapPort, '127.0.0.10');
      sockets.push(again);
      const line = await again.until(/\r\n/);
      again.close();
      if (line.startsWith('* OK ')) break;
      assert.ok(Date.now() < deadline, `127.0.0.10 still refused: ${line}`);
      await sleep(50);
    }
  });

  it('IMAP before login: a command dribbled a byte every 500 ms is logged out by the fixed 60 s pre-login timer; a logged-in client is served meanwhile', async (t) => {
    assert.ok(!dribbler.closed, 'the dribbler was still connected when the other tests had finished');
    const client = await imapflow(imapPort);
    let rounds = 0;
    try {
      while (!dribbler.closed && Date.now() - dribblerGreetedAt < IMAP_PRE_AUTH_MS + 5000) {
        await imapRound(client);
        rounds++;
        if (/\r\n/.test(dribbler.unread())) break;
        await sleep(1000);
      }
      assert.equal(await dribbler.until(/\r\n/, 6000), '* BYE Autologout; idle for too long\r\n');
      await dribbler.waitClosed(3000);
      const took = dribbler.closedAt - dribblerGreetedAt;
      t.diagnostic(`BYE after ${took} ms, ${dribbled} bytes dribbled`);
      assert.ok(took >= IMAP_PRE_AUTH_MS - 1000 && took < IMAP_PRE_AUTH_MS + 3000, `logged out ${took} ms after the greeting`);
      assert.ok(dribbled >= 100, `${dribbled} bytes dribbled`);
      assert.ok(rounds >= 5, `${rounds} LIST/FETCH rounds of the logged-in client`);
      await imapRound(client);
    } finally {
      await client.logout();
    }
    await dribbling;
  });
});
