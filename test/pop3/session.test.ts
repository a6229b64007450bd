/**
 * The POP3 session in-process, over real sockets, with a scripted store and authenticator:
 * what needs control over the server side — a client address that is not loopback (the
 * RFC 2595 plaintext rule, then STLS), a short autologout, shutdown(), store failures, a
 * message expunged by another client, back-pressure on a large RETR, login and error limits.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { Authenticator } from '../../src/auth/authenticate.js';
import { createTlsProvider, defaultTlsPaths, ensureSelfSignedCertificate, type TlsProvider } from '../../src/config/tls.js';
import { NotFoundError, StoreUnavailableError } from '../../src/errors.js';
import { ByteBudget } from '../../src/mail/byte-budget.js';
import { Pop3Session, type Pop3Config } from '../../src/pop3/session.js';
import type { Account, Mailbox, Store, StoredMessage } from '../../src/store/store.js';
import { tempDir } from '../helpers/tern.js';
import { Pop3Client } from './support.js';

interface FakeMessage {
  uid: number;
  flags: string[];
  /** The stored bytes, or a generator of chunks (large messages). */
  body: Buffer | (() => AsyncIterable<Buffer>);
  size: number;
}

/** The parts of the Store that POP3 uses, over an in-memory INBOX, with switches to make each call fail. */
class FakeStore {
  inbox: FakeMessage[] = [];
  nextUid = 1;
  fail: { messages?: Error; read?: Error; readMidway?: Error; setFlags?: Error; expunge?: Error } = {};
  calls: string[] = [];

  add(body: string | Buffer | { size: number; chunks: () => AsyncIterable<Buffer> }): FakeMessage {
    const m =
      typeof body === 'string' || Buffer.isBuffer(body)
        ? { uid: this.nextUid++, flags: [], body: Buffer.from(body), size: Buffer.byteLength(body) }
        : { uid: this.nextUid++, flags: [], body: body.chunks, size: body.size };
    this.inbox.push(m);
    return m;
  }

  asStore(): Store {
    const mailbox = (): Mailbox => ({
      id: 7,
      accountId: 1,
      name: 'INBOX',
      specialUse: null,
      uidValidity: 42,
      uidNext: this.nextUid,
      highestModseq: 1,
      messages: this.inbox.length,
      unseen: 0,
      bytes: 0,
    });
    const stored = (m: FakeMessage): StoredMessage => ({
      id: 1000 + m.uid,
      mailboxId: 7,
      mailbox: 'INBOX',
      uid: m.uid,
      modseq: 1,
      flags: [...m.flags],
      internalDate: new Date(),
      size: m.size,
      hash: 'h',
      ternId: 't',
      envelopeFrom: '',
    });
    const mailboxes = {
      get: async (_accountId: number, name: string) => (name === 'INBOX' ? mailbox() : null),
      messages: async () => {
        this.calls.push('messages');
        if (this.fail.messages) throw this.fail.messages;
        return this.inbox.map(stored);
      },
      read: (id: number): AsyncIterable<Buffer> => {
        const fail = this.fail;
        const m = this.inbox.find((x) => 1000 + x.uid === id);
        return (async function* () {
          if (fail.read) throw fail.read;
          if (!m) throw new NotFoundError(`message ${id} does not exist`);
          if (Buffer.isBuffer(m.body)) {
            // Two chunks, so the stuffer sees a split.
            yield m.body.subarray(0, m.body.length >> 1);
            if (fail.readMidway) throw fail.readMidway;
            yield m.body.subarray(m.body.length >> 1);
          } else {
            yield* m.body();
          }
        })();
      },
      setFlags: async (_mailboxId: number, uids: number[], mode: string, flags: string[]) => {
        this.calls.push(`setFlags ${uids.join(',')} ${mode} ${flags.join(' ')}`);
        if (this.fail.setFlags) throw this.fail.setFlags;
        for (const m of this.inbox) if (uids.includes(m.uid) && !m.flags.includes(flags[0]!)) m.flags.push(...flags);
        return [];
      },
      expunge: async (_mailboxId: number, uids: number[]) => {
        this.calls.push(`expunge ${uids.join(',')}`);
        if (this.fail.expunge) throw this.fail.expunge;
        this.inbox = this.inbox.filter((m) => !uids.includes(m.uid));
        return [];
      },
    };
    return { kind: 'sqlite', mailboxes } as unknown as Store;
  }
}

const ACCOUNT: Account = { id: 1, address: 'alice@example.test', isAdmin: false, quotaBytes: null, usedBytes: 0, createdAt: new Date() };

/** Accepts alice@example.test / "pw"; records every attempt. */
function fakeAuth(attempts: string[]): Authenticator {
  return {
    async login(user, password, context) {
      attempts.push(`${context.protocol} ${context.remoteAddress} ${user}`);
      return user.toLowerCase() === ACCOUNT.address && password === 'pw' ? ACCOUNT : null;
    },
  };
}

interface Harness {
  port: number;
  store: FakeStore;
  attempts: string[];
  logs: Array<{ level: number; msg: string; err?: { message: string } }>;
  sessions: Pop3Session[];
  close(): Promise<void>;
}

let tls: TlsProvider;
before(async () => {
  const dir = tempDir('tern-pop3-tls-');
  await ensureSelfSignedCertificate(dir, 'mx.example.test');
  const paths = defaultTlsPaths(dir);
  tls = createTlsProvider(paths.cert, paths.key);
});

/** A listener that opens Pop3Sessions; `remoteAddress` pretends the client is elsewhere. */
async function harness(opts: { remoteAddress?: string; config?: Partial<Pop3Config> } = {}): Promise<Harness> {
  const store = new FakeStore();
  const attempts: string[] = [];
  const logs: Harness['logs'] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Harness['logs'][number]);
      cb();
    },
  });
  const log = pino({ level: 'debug' }, sink);
  const sessions: Pop3Session[] = [];
  const sockets = new Set<Socket>();
  const config: Pop3Config = { hostname: 'mx.example.test', implicitTls: false, insecureAuth: false, maxMessageSize: 25 << 20, ...opts.config };
  const deps = { store: store.asStore(), auth: fakeAuth(attempts), tls, log, budget: new ByteBudget(1 << 20) };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    if (opts.remoteAddress) Object.defineProperty(socket, 'remoteAddress', { value: opts.remoteAddress });
    sessions.push(new Pop3Session(socket, config, deps, () => sockets.delete(socket)));
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    store,
    attempts,
    logs,
    sessions,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
}

async function loggedIn(h: Harness): Promise<Pop3Client> {
  const c = await Pop3Client.connect(h.port);
  assert.match(await c.command('USER alice@example.test'), /^\+OK/);
  assert.match(await c.command('PASS pw'), /^\+OK Logged in/);
  return c;
}

const capa = async (c: Pop3Client) => {
  assert.equal(await c.command('CAPA'), '+OK Capability list follows');
  return (await c.multiline()).split('\r\n').filter(Boolean);
};

describe('POP3 session (in-process)', () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });
  after(() => h.close());

  it('greets and lists capabilities for a loopback client', async () => {
    const c = await Pop3Client.connect(h.port);
    assert.equal(c.greeting, '+OK mx.example.test POP3 Tern ready');
    assert.deepEqual(await capa(c), ['TOP', 'UIDL', 'USER', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'SASL PLAIN', 'STLS', 'IMPLEMENTATION Tern']);
    assert.equal(await c.command('AUTH'), '+OK Supported SASL mechanisms follow');
    assert.equal(await c.multiline(), 'PLAIN\r\n');
    assert.equal(await c.command('QUIT'), '+OK Tern POP3 server signing off');
    await c.waitClosed();
  });

  it('refuses transaction commands before login, and login commands after it', async () => {
    const c = await Pop3Client.connect(h.port);
    assert.equal(await c.command('STAT'), '-ERR Log in before STAT');
    assert.equal(await c.command('PASS pw'), '-ERR Send USER first');
    assert.match(await c.command('USER alice@example.test'), /^\+OK/);
    assert.match(await c.command('PASS pw'), /^\+OK/);
    assert.equal(await c.command('USER bob'), '-ERR USER is not allowed after login');
    assert.equal(await c.command('STLS'), '-ERR STLS is not allowed after login');
    assert.ok(!(await capa(c)).includes('STLS'), 'no STLS after login');
    c.close();
  });

  it('snapshots INBOX at login: later deliveries are not shown, numbering stays', async () => {
    h.store.inbox = [];
    h.store.add('Subject: one\r\n\r\n1\r\n');
    const c = await loggedIn(h);
    h.store.add('Subject: two\r\n\r\n2\r\n');
    assert.equal(await c.command('STAT'), '+OK 1 19');
    assert.equal(await c.command('LIST 2'), '-ERR No such message');
    c.close();
  });

  it('pipelines: many commands in one write get their replies in order', async () => {
    h.store.inbox = [];
    h.store.add('A: 1\r\n\r\n.x\r\n');
    const c = await Pop3Client.connect(h.port);
    c.send('USER alice@example.test\r\nPASS pw\r\nSTAT\r\nLIST\r\nUIDL 1\r\nRETR 1\r\nNOOP\r\nDELE 1\r\nSTAT\r\nRSET\r\nSTAT\r\n');
    assert.match(await c.line(), /^\+OK Send your password/);
    assert.equal(await c.line(), '+OK Logged in, 1 messages (12 octets)');
    assert.equal(await c.line(), '+OK 1 12');
    assert.equal(await c.line(), '+OK 1 messages (12 octets)');
    assert.equal(await c.multiline(), '1 12\r\n');
    assert.equal(await c.line(), `+OK 1 42.${h.store.inbox[0]!.uid}`);
    assert.equal(await c.line(), '+OK 12 octets');
    assert.equal(await c.multiline(), 'A: 1\r\n\r\n..x\r\n');
    assert.equal(await c.line(), '+OK OK');
    assert.equal(await c.line(), '+OK Message 1 deleted');
    assert.equal(await c.line(), '+OK 0 0');
    assert.equal(await c.line(), '+OK Maildrop has 1 messages (12 octets)');
    assert.equal(await c.line(), '+OK 1 12');
    c.close();
  });

  it('marks \\Seen at RETR (once), not at TOP', async () => {
    h.store.inbox = [];
    h.store.calls = [];
    const m = h.store.add('A: 1\r\n\r\nbody\r\n');
    const c = await loggedIn(h);
    assert.equal(await c.command('TOP 1 0'), '+OK Top of message follows');
    assert.equal(await c.multiline(), 'A: 1\r\n\r\n');
    assert.deepEqual(h.store.calls, ['messages']);
    for (let i = 0; i < 2; i++) {
      assert.equal(await c.command('RETR 1'), '+OK 14 octets');
      await c.multiline();
    }
    assert.deepEqual(h.store.calls, ['messages', `setFlags ${m.uid} add \\Seen`]);
    c.close();
  });

  it('AUTH PLAIN: initial response, continuation, cancel, bad base64, and no proxy logins', async () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    let c = await Pop3Client.connect(h.port);
    assert.equal(await c.command('AUTH CRAM-MD5'), '-ERR Unsupported SASL mechanism');
    assert.equal(await c.command('AUTH PLAIN'), '+ ');
    assert.equal(await c.command('*'), '-ERR Authentication cancelled');
    assert.equal(await c.command('AUTH PLAIN'), '+ ');
    assert.equal(await c.command('!!!'), '-ERR Invalid SASL PLAIN response');
    assert.equal(await c.command(`AUTH PLAIN ${b64('bob@example.test\0alice@example.test\0pw')}`), '-ERR [AUTH] Not authorized to act as another user');
    assert.equal(await c.command(`AUTH PLAIN ${b64('\0alice@example.test\0nope')}`), '-ERR [AUTH] Invalid user name or password');
    assert.equal(await c.command('AUTH PLAIN'), '+ ');
    assert.match(await c.command(b64('alice@example.test\0alice@example.test\0pw')), /^\+OK Logged in/);
    c.close();
    c = await Pop3Client.connect(h.port);
    assert.match(await c.command(`AUTH PLAIN ${b64('\0ALICE@example.test\0pw')}`), /^\+OK Logged in/);
    c.close();
  });

  it('closes after three failed logins; each went through the authenticator with the client address', async () => {
    h.attempts.length = 0;
    const c = await Pop3Client.connect(h.port);
    for (let i = 0; i < 2; i++) {
      await c.command('USER alice@example.test');
      assert.equal(await c.command('PASS wrong'), '-ERR [AUTH] Invalid user name or password');
    }
    await c.command('USER alice@example.test');
    assert.equal(await c.command('PASS wrong'), '-ERR [AUTH] Too many failed logins, closing connection');
    await c.waitClosed();
    assert.deepEqual(h.attempts, Array(3).fill('pop3 127.0.0.1 alice@example.test'));
  });

  it('answers bad commands with -ERR and survives, until 20 of them', async () => {
    const c = await loggedIn(h);
    assert.equal(await c.command('FROB'), '-ERR Unknown command');
    assert.equal(await c.command('RETR x'), '-ERR RETR needs a message number');
    assert.equal(await c.command('LIST 0'), '-ERR No such message');
    assert.equal(await c.command('X'.repeat(5000)), '-ERR Line too long');
    assert.match(await c.command('STAT'), /^\+OK/);
    for (let i = 4; i < 19; i++) assert.equal(await c.command('BAD'), '-ERR Unknown command');
    assert.equal(await c.command('BAD'), '-ERR Unknown command');
    assert.equal(await c.line(), '-ERR Too many errors, closing connection');
    await c.waitClosed();
  });

  it('gives -ERR for a message another client expunged after login, and carries on', async () => {
    h.store.inbox = [];
    h.store.add('A: 1\r\n\r\none\r\n');
    h.store.add('A: 2\r\n\r\ntwo\r\n');
    const c = await loggedIn(h);
    h.store.inbox.shift();
    assert.equal(await c.command('RETR 1'), '-ERR Message 1 no longer exists');
    assert.equal(await c.command('RETR 2'), '+OK 13 octets');
    assert.equal(await c.multiline(), 'A: 2\r\n\r\ntwo\r\n');
    assert.equal(await c.command('DELE 1'), '+OK Message 1 deleted');
    assert.equal(await c.command('DELE 1'), '-ERR Message 1 already deleted');
    assert.equal(await c.command('QUIT'), '+OK Tern POP3 server signing off (1 messages left)');
    assert.equal(h.store.inbox.length, 1);
  });

  it('turns store failures into -ERR [SYS/TEMP], logs them, and keeps the session', async () => {
    h.store.inbox = [];
    h.store.add('A: 1\r\n\r\nbody\r\n');
    h.logs.length = 0;
    h.store.fail = { messages: new StoreUnavailableError('database down') };
    let c: Pop3Client = await Pop3Client.connect(h.port);
    await c.command('USER alice@example.test');
    assert.equal(await c.command('PASS pw'), '-ERR [SYS/TEMP] Unable to open the maildrop, try again later');
    assert.ok(h.logs.some((l) => l.level === 50 && l.err?.message === 'database down'));
    h.store.fail = {};
    await c.command('USER alice@example.test');
    assert.match(await c.command('PASS pw'), /^\+OK Logged in/);
    h.store.fail = { read: new Error('disk read error'), setFlags: new Error('no flags today') };
    assert.equal(await c.command('RETR 1'), '-ERR [SYS/TEMP] Temporary server error, try again later');
    assert.ok(h.logs.some((l) => l.err?.message === 'disk read error'));
    h.store.fail = { setFlags: new Error('no flags today') };
    assert.equal(await c.command('RETR 1'), '+OK 14 octets');
    await c.multiline();
    assert.match(await c.command('NOOP'), /^\+OK/);
    h.store.fail = { expunge: new StoreUnavailableError('database down') };
    assert.match(await c.command('DELE 1'), /^\+OK/);
    assert.equal(await c.command('QUIT'), '-ERR [SYS/TEMP] Some deleted messages were not removed, try again later');
    await c.waitClosed();
    assert.equal(h.store.inbox.length, 1);
    // A failure in the middle of a message cannot be reported after +OK: the connection is dropped.
    h.store.fail = { readMidway: new Error('chunk lost') };
    c = await loggedIn(h);
    assert.equal(await c.command('RETR 1'), '+OK 14 octets');
    await c.waitClosed();
    assert.ok(!c.unread().endsWith('\r\n.\r\n'));
    h.store.fail = {};
  });
});

describe('POP3 session: plaintext rule, STLS, autologout, shutdown, back-pressure', () => {
  it('needs TLS for passwords from a non-loopback client (RFC 2595), then logs in after STLS', async () => {
    const h = await harness({ remoteAddress: '192.0.2.7' });
    try {
      h.store.add('A: 1\r\n\r\nbody\r\n');
      const c = await Pop3Client.connect(h.port);
      assert.deepEqual(await capa(c), ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'STLS', 'IMPLEMENTATION Tern']);
      assert.equal(await c.command('USER alice@example.test'), '-ERR [AUTH] Plaintext authentication requires TLS; use STLS first');
      assert.equal(await c.command('AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABwdw=='), '-ERR [AUTH] Plaintext authentication requires TLS; use STLS first');
      assert.equal(await c.command('AUTH'), '+OK Supported SASL mechanisms follow');
      assert.equal(await c.multiline(), '');
      assert.deepEqual(h.attempts, []);
      // A command pipelined behind STLS in clear text is dropped, not run after the upgrade.
      c.send('STLS\r\nUSER mallory\r\n');
      assert.equal(await c.line(), '+OK Begin TLS negotiation');
      await c.startTls();
      assert.deepEqual(await capa(c), ['TOP', 'UIDL', 'USER', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'SASL PLAIN', 'IMPLEMENTATION Tern']);
      assert.equal(await c.command('PASS pw'), '-ERR Send USER first');
      assert.equal(await c.command('STLS'), '-ERR Already using TLS');
      assert.match(await c.command('USER alice@example.test'), /^\+OK/);
      assert.equal(await c.command('PASS pw'), '+OK Logged in, 1 messages (14 octets)');
      assert.deepEqual(h.attempts, ['pop3 192.0.2.7 alice@example.test']);
      assert.equal(await c.command('RETR 1'), '+OK 14 octets');
      assert.equal(await c.multiline(), 'A: 1\r\n\r\nbody\r\n');
      c.close();
    } finally {
      await h.close();
    }
  });

  it('allows plaintext from anywhere with insecureAuth', async () => {
    const h = await harness({ remoteAddress: '192.0.2.7', config: { insecureAuth: true } });
    try {
      const c = await loggedIn(h);
      c.close();
    } finally {
      await h.close();
    }
  });

  it('logs out an idle client without deleting anything', async () => {
    const h = await harness({ config: { idleTimeoutMs: 300 } });
    try {
      h.store.add('A: 1\r\n\r\nbody\r\n');
      const c = await loggedIn(h);
      assert.match(await c.command('DELE 1'), /^\+OK/);
      assert.equal(await c.line(2000), '-ERR Autologout: idle for too long');
      await c.waitClosed();
      assert.equal(h.store.inbox.length, 1);
      assert.ok(!h.store.calls.some((call) => call.startsWith('expunge')));
    } finally {
      await h.close();
    }
  });

  it('says goodbye with [SYS/TEMP] on shutdown and skips the UPDATE state', async () => {
    const h = await harness();
    try {
      h.store.add('A: 1\r\n\r\nbody\r\n');
      const c = await loggedIn(h);
      assert.match(await c.command('DELE 1'), /^\+OK/);
      for (const s of h.sessions) s.shutdown();
      assert.equal(await c.line(), '-ERR [SYS/TEMP] Server shutting down, try again later');
      await c.waitClosed();
      assert.equal(h.store.inbox.length, 1);
    } finally {
      await h.close();
    }
  });

  it('streams a large RETR with back-pressure: the store is read only as fast as the client reads', async () => {
    const h = await harness();
    try {
      const CHUNK = 64 * 1024;
      const COUNT = 640; // 40 MiB; the kernel's socket buffers hold a few MiB of it
      let produced = 0;
      const line = Buffer.from(`${'.'.padEnd(1022, 'x')}\r\n`); // every line needs stuffing
      const chunk = Buffer.concat(Array.from({ length: CHUNK / line.length }, () => line));
      h.store.add({
        size: CHUNK * COUNT,
        chunks: async function* () {
          for (let i = 0; i < COUNT; i++) {
            produced++;
            yield chunk;
          }
        },
      });
      const c = await loggedIn(h);
      c.socket.pause();
      c.send('RETR 1\r\n');
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(produced > 0 && produced < COUNT / 4, `read ${produced} of ${COUNT} chunks while the client was not reading`);
      // Read it all: count octets rather than buffering 20 MiB of strings.
      let octets = 0;
      let tail = '';
      const done = new Promise<void>((resolve) => {
        c.socket.removeAllListeners('data');
        c.socket.on('data', (d: string) => {
          octets += d.length;
          tail = (tail + d).slice(-16);
          if (tail.endsWith('\r\n.\r\n')) resolve();
        });
      });
      c.socket.resume();
      await done;
      const status = `+OK ${CHUNK * COUNT} octets\r\n`.length;
      assert.equal(octets, status + CHUNK * COUNT + (CHUNK / line.length) * COUNT + 3);
      assert.equal(produced, COUNT);
      c.close();
    } finally {
      await h.close();
    }
  });
});
