/**
 * Webhooks end to end over real HTTP against `tern serve`: subscriptions through the API
 * (validation, domain-limited admin keys), signed POSTs for mail received, delivered,
 * bounced and deferred (checked with verifyWebhookSignature, as a receiver would), retries
 * with the attempts in the delivery log, the outbox surviving a restart of Tern, test
 * events, pausing, a new URL, and deletion; on SQLite and on PostgreSQL. The receiver is a
 * plain node:http server that records each POST and can answer 500 per path or be closed
 * and opened again on its port.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { verifyWebhookSignature } from '../../src/http/webhooks.js';
import { freshPgDatabase, pgSkipReason, type TestDatabase } from '../helpers/pg.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { cli, createSite, freePort, startTern, type Site, type TernServer } from '../helpers/tern.js';
import { callApi, createApiKey } from '../helpers/http-api.js';

interface Post {
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body, as signed. */
  body: string;
  json: { id: number; event: string; createdAt: string; data: Record<string, unknown> };
  /** What the receiver answered. */
  answered: number;
}

interface Hook {
  id: string;
  url: string;
  events: string[];
  secret: string;
  domain: string | null;
  description: string;
  enabled: boolean;
  createdAt: string;
}

interface LogEntry {
  id: number;
  event: string;
  state: 'pending' | 'delivered' | 'failed';
  attempts: number;
  nextAttemptAt: string | null;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: string;
  finishedAt: string | null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns something (not undefined), or fails after `ms` saying `what`. */
async function eventually<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 15_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A webhook receiver on 127.0.0.1: records every POST; paths in `failing` answer 500. */
async function startReceiver() {
  const posts: Post[] = [];
  const failing = new Set<string>();
  let server: Server | null = null;
  let port = 0;
  const receiver = {
    posts,
    failing,
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    /** Listens (again) on its port, or on a free one the first time. */
    async open() {
      const s = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const path = req.url ?? '/';
          const body = Buffer.concat(chunks).toString('utf8');
          const answered = failing.has(path) ? 500 : 200;
          posts.push({ path, headers: req.headers, body, json: JSON.parse(body) as Post['json'], answered });
          res.writeHead(answered, { 'content-type': 'text/plain' }).end(answered === 500 ? 'receiver is down' : 'ok');
        });
      });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(port, '127.0.0.1', () => resolve());
      });
      port = (s.address() as AddressInfo).port;
      server = s;
    },
    /** Stops listening and drops kept-alive connections: POSTs now find nobody. */
    async close() {
      const s = server;
      server = null;
      if (!s) return;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    /** The first POST (answered 200) to `path` matching `match`. */
    waitFor(what: string, path: string, match: (p: Post) => boolean, ms?: number): Promise<Post> {
      return eventually(what, () => posts.find((p) => p.path === path && p.answered === 200 && match(p)), ms);
    },
  };
  await receiver.open();
  return receiver;
}

/** The whole story on one backend: `db` makes a PostgreSQL database for the site, SQLite without. */
function webhookSuite(db?: () => Promise<TestDatabase>): void {
  let skip: string | undefined;
  let database: TestDatabase | undefined;
  /** An `it` that is skipped when the backend is not there (TERN_TEST_SKIP_PG=1). */
  const test = (name: string, fn: () => Promise<void>): void => {
    it(name, async (t) => {
      if (skip) return t.skip(skip);
      await fn();
    });
  };
  let sink: SmtpSink;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let site: Site;
  let tern: TernServer;
  let ternArgs: string[];
  let base: string;
  let admin: string;
  let domainAdmin: string;
  /** Site-wide, all events, at /main. */
  let main: Hook;
  /** Made by other.test's admin: message.delivered of other.test's senders, at /other. */
  let other: Hook;

  const api = (method: string, path: string, o: Parameters<typeof callApi>[3] = {}) => callApi(base, method, path, o);
  const newKey = (...args: string[]) => createApiKey(site, ...args);
  const send = async (body: Record<string, unknown>) => {
    const r = await api('POST', '/api/v1/messages', { key: admin, body: { from: 'alice@example.test', text: 'hello', ...body } });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    return r.body as { id: string };
  };
  const deliveries = async (hookId: string) => {
    const r = await api('GET', `/api/v1/webhooks/${hookId}/deliveries`, { key: admin });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as LogEntry[];
  };
  /** Checks what every POST carries: the event and delivery headers, and a signature made with `secret`. */
  const checkSigned = (p: Post, secret: string) => {
    assert.equal(p.headers['content-type'], 'application/json');
    assert.match(String(p.headers['user-agent']), /^Tern\//);
    assert.equal(p.headers['tern-event'], p.json.event);
    assert.equal(p.headers['tern-delivery'], String(p.json.id));
    assert.ok(!Number.isNaN(Date.parse(p.json.createdAt)));
    const signature = String(p.headers['tern-signature']);
    assert.match(signature, /^t=\d+,v1=[0-9a-f]{64}$/);
    assert.ok(verifyWebhookSignature(secret, signature, p.body), `${p.json.event}: the signature verifies`);
    assert.ok(!verifyWebhookSignature(secret, signature, p.body.replace('"data":{', '"data":{"x":1,')), 'a tampered body does not');
    assert.ok(!verifyWebhookSignature(`${secret}x`, signature, p.body), 'another secret does not');
    assert.ok(!verifyWebhookSignature(secret, signature, p.body, 300, Date.now() + 3_600_000), 'nor an old signature');
  };

  before(async () => {
    if (db) skip = await pgSkipReason();
    if (skip) return;
    database = await db?.();
    sink = await startSmtpSink();
    receiver = await startReceiver();
    site = await createSite(database ? { db: database.url } : {});
    await cli(['domain', 'add', 'other.test', ...site.args]);
    admin = await newKey('--scope', 'admin,send,read');
    domainAdmin = await newKey('--scope', 'admin', '--domain', 'other.test');
    // The HTTP port is kept for the restart; another process taking it first means another pick.
    for (let attempt = 1; ; attempt++) {
      const httpPort = await freePort();
      base = `http://127.0.0.1:${httpPort}`;
      ternArgs = [
        '--http-port',
        String(httpPort),
        '--smarthost',
        `127.0.0.1:${sink.port}`,
        '--dns-server',
        '127.0.0.1:9',
        '--retry-delay',
        '1s',
        '--webhook-retry-delay',
        '1s',
      ];
      try {
        tern = await startTern(site, ternArgs);
        break;
      } catch (err) {
        if (attempt >= 3 || !/\(http\): address already in use/.test((err as Error).message)) throw err;
      }
    }
  });
  after(async () => {
    await tern?.stop();
    await receiver?.close();
    await sink?.close();
    await database?.drop();
  });

  test('creates webhooks through the API: validated, with a secret, limited to a domain for a domain admin', async () => {
    const made = await api('POST', '/api/v1/webhooks', {
      key: admin,
      body: { url: receiver.url('/main'), events: ['message.received', 'message.delivered', 'message.deferred', 'message.bounced', 'message.failed'] },
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    main = made.body as Hook;
    assert.match(main.id, /^[0-9a-f]{12}$/);
    assert.match(main.secret, /^whsec_[A-Za-z0-9_-]{32}$/);
    assert.deepEqual(main.events, ['message.received', 'message.delivered', 'message.deferred', 'message.bounced', 'message.failed']);
    assert.equal(main.url, receiver.url('/main'));
    assert.equal(main.domain, null);
    assert.equal(main.enabled, true);
    assert.deepEqual((await api('GET', `/api/v1/webhooks/${main.id}`, { key: admin })).body, main);

    const refused: Array<[string, unknown, number]> = [
      ['an unknown event', { url: receiver.url('/x'), events: ['message.opened'] }, 400],
      ['no events', { url: receiver.url('/x'), events: [] }, 400],
      ['an ftp URL', { url: 'ftp://127.0.0.1/hook', events: ['message.received'] }, 400],
      ['not a URL', { url: 'just some words', events: ['message.received'] }, 400],
      ['a URL with credentials', { url: 'http://user:pw@127.0.0.1/hook', events: ['message.received'] }, 400],
      ['an unknown field', { url: receiver.url('/x'), events: ['message.received'], secret: 'mine' }, 400],
      ['an unknown domain', { url: receiver.url('/x'), events: ['message.received'], domain: 'nowhere.test' }, 404],
    ];
    for (const [what, body, status] of refused) {
      const r = await api('POST', '/api/v1/webhooks', { key: admin, body });
      assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
      assert.ok((r.body as { error: { message: string } }).error.message.length > 0, what);
    }
    const unknown = await api('GET', '/api/v1/webhooks/000000000000', { key: admin });
    assert.deepEqual([unknown.status, (unknown.body as { error: { code: string } }).error.code], [404, 'not_found']);
    assert.equal((await api('PATCH', '/api/v1/webhooks/000000000000', { key: admin, body: { enabled: false } })).status, 404);
    assert.equal((await api('GET', '/api/v1/webhooks/000000000000/deliveries', { key: admin })).status, 404);
    assert.equal((await api('PATCH', `/api/v1/webhooks/${main.id}`, { key: admin, body: { events: ['message.opened'] } })).status, 400);
    assert.equal((await api('PATCH', `/api/v1/webhooks/${main.id}`, { key: admin, body: { url: 'mailto:x@y.test' } })).status, 400);
    assert.equal((await api('PATCH', `/api/v1/webhooks/${main.id}`, { key: admin, body: {} })).status, 400, 'nothing to change');
    assert.equal((await api('GET', '/api/v1/webhooks/not-an-id', { key: admin })).status, 400);
    assert.equal((await api('GET', '/api/v1/webhooks', { key: await newKey('--scope', 'send,read') })).status, 403, 'admin scope only');
    assert.equal((await api('GET', '/api/v1/webhooks')).status, 401);

    // other.test's admin: its webhooks are other.test's, whatever it asks; the site's are not there for it.
    const own = await api('POST', '/api/v1/webhooks', {
      key: domainAdmin,
      body: { url: receiver.url('/other'), events: ['message.delivered'], description: 'customer' },
    });
    assert.equal(own.status, 201, JSON.stringify(own.body));
    other = own.body as Hook;
    assert.equal(other.domain, 'other.test');
    assert.equal(other.description, 'customer');
    const elsewhere = await api('POST', '/api/v1/webhooks', {
      key: domainAdmin,
      body: { url: receiver.url('/x'), events: ['message.received'], domain: 'example.test' },
    });
    assert.equal(elsewhere.status, 403, JSON.stringify(elsewhere.body));
    assert.deepEqual(
      ((await api('GET', '/api/v1/webhooks', { key: domainAdmin })).body as Hook[]).map((h) => h.id),
      [other.id],
    );
    assert.equal((await api('GET', '/api/v1/webhooks?domain=example.test', { key: domainAdmin })).status, 403);
    assert.equal((await api('GET', `/api/v1/webhooks/${main.id}`, { key: domainAdmin })).status, 404);
    assert.equal((await api('PATCH', `/api/v1/webhooks/${main.id}`, { key: domainAdmin, body: { enabled: false } })).status, 404);
    assert.equal((await api('DELETE', `/api/v1/webhooks/${main.id}`, { key: domainAdmin })).status, 404);
    assert.equal((await api('POST', `/api/v1/webhooks/${main.id}/test`, { key: domainAdmin })).status, 404);
    assert.equal((await api('GET', `/api/v1/webhooks/${main.id}/deliveries`, { key: domainAdmin })).status, 404);
    // The site's admin sees both, or one domain's when it asks.
    const all = ((await api('GET', '/api/v1/webhooks', { key: admin })).body as Hook[]).map((h) => h.id);
    assert.deepEqual(all.sort(), [main.id, other.id].sort());
    assert.deepEqual(
      ((await api('GET', '/api/v1/webhooks?domain=other.test', { key: admin })).body as Hook[]).map((h) => h.id),
      [other.id],
    );
  });

  test('POSTs message.received for a local copy and message.delivered for a remote one, signed', async () => {
    const sent = await send({
      from: 'Alice <alice@example.test>',
      to: ['alice@example.test', 'carol@remote.test'],
      subject: 'Grüße aus Köln ✓',
      attachments: [{ filename: 'a.txt', content: Buffer.from('attached').toString('base64') }],
    });
    const received = await receiver.waitFor('message.received for alice', '/main', (p) => p.json.event === 'message.received');
    checkSigned(received, main.secret);
    const r = received.json.data;
    assert.equal(r.recipient, 'alice@example.test');
    assert.equal(r.mailbox, 'INBOX');
    assert.equal(r.subject, 'Grüße aus Köln ✓', 'decoded');
    assert.match(String(r.from), /alice@example\.test/);
    assert.equal(r.sender, 'alice@example.test');
    assert.equal(r.id, sent.id);
    assert.equal(typeof r.uid, 'number');
    assert.ok(Number(r.size) > 0);
    assert.equal(r.attachments, 1);

    const delivered = await receiver.waitFor('message.delivered for carol', '/main', (p) => p.json.event === 'message.delivered');
    checkSigned(delivered, main.secret);
    const d = delivered.json.data;
    assert.equal(d.recipient, 'carol@remote.test');
    assert.equal(d.sender, 'alice@example.test');
    assert.equal(d.id, sent.id);
    assert.equal(d.destination, 'remote.test');
    assert.match(String(d.reply), /^250 /);
    assert.notEqual(delivered.json.id, received.json.id);

    // other.test's webhook hears of other.test's senders only.
    await send({ from: 'news@other.test', to: 'dave@remote.test', subject: 'news' });
    const news = await receiver.waitFor('message.delivered for dave at /other', '/other', (p) => p.json.event === 'message.delivered');
    checkSigned(news, other.secret);
    assert.equal(news.json.data.recipient, 'dave@remote.test');
    assert.ok(!verifyWebhookSignature(main.secret, String(news.headers['tern-signature']), news.body), "signed with its own webhook's secret");
    await receiver.waitFor('message.delivered for dave at /main', '/main', (p) => p.json.data.recipient === 'dave@remote.test');
    assert.deepEqual(
      receiver.posts.filter((p) => p.path === '/other').map((p) => p.json.data.recipient),
      ['dave@remote.test'],
    );

    const log = await eventually('the log to show both delivered', async () => {
      const entries = await deliveries(main.id);
      return entries.length >= 3 && entries.every((e) => e.state === 'delivered') ? entries : undefined;
    });
    const first = log.find((e) => e.id === received.json.id)!;
    assert.deepEqual([first.event, first.attempts, first.lastStatus, first.lastError, first.nextAttemptAt], ['message.received', 1, 200, null, null]);
    assert.ok(first.finishedAt);
    assert.deepEqual(
      log.map((e) => e.id),
      [...log.map((e) => e.id)].sort((a, b) => b - a),
      'newest first',
    );
    const page = (await api('GET', `/api/v1/webhooks/${main.id}/deliveries?before=${log[0]!.id}&limit=1`, { key: admin })).body as LogEntry[];
    assert.deepEqual(
      page.map((e) => e.id),
      [log[1]!.id],
      'paged by id',
    );
  });

  test('POSTs message.bounced for a 5xx refusal and message.deferred for a 4xx one', async () => {
    sink.rcpt = (address, attempt) =>
      address === 'nobody@remote.test'
        ? { code: 550, message: '5.1.1 No such user' }
        : address === 'busy@remote.test' && attempt === 1
          ? { code: 451, message: '4.3.0 Try again later' }
          : null;
    const mark = receiver.posts.length;
    try {
      const sent = await send({ to: ['nobody@remote.test', 'busy@remote.test'], subject: 'refusals' });
      const bounced = await receiver.waitFor('message.bounced', '/main', (p) => p.json.event === 'message.bounced');
      checkSigned(bounced, main.secret);
      assert.equal(bounced.json.data.recipient, 'nobody@remote.test');
      assert.equal(bounced.json.data.id, sent.id);
      assert.match(String(bounced.json.data.reply), /^550 5\.1\.1 No such user/);
      const deferred = await receiver.waitFor('message.deferred', '/main', (p) => p.json.event === 'message.deferred');
      checkSigned(deferred, main.secret);
      assert.equal(deferred.json.data.recipient, 'busy@remote.test');
      assert.match(String(deferred.json.data.reply), /^451 4\.3\.0 Try again later/);
      assert.equal(deferred.json.data.attempt, 1);
      // The retry (a second later) gets through.
      const later = await receiver.waitFor(
        'message.delivered for busy',
        '/main',
        (p) => p.json.data.recipient === 'busy@remote.test' && p.json.event === 'message.delivered',
      );
      assert.equal(later.json.data.attempt, 2);
      assert.ok(!receiver.posts.some((p) => p.json.event === 'message.failed'), 'a remote 5xx is a bounce, not a failure');
      // The bounce notice Tern sends alice is mail received, too.
      const notice = await eventually('message.received for the bounce notice', () =>
        receiver.posts.slice(mark).find((p) => p.path === '/main' && p.json.event === 'message.received'),
      );
      assert.equal(notice.json.data.recipient, 'alice@example.test');
      assert.equal(notice.json.data.sender, '');
      assert.match(String(notice.json.data.subject), /^Undelivered Mail/);
      assert.notEqual(notice.json.data.id, sent.id);
    } finally {
      sink.rcpt = () => null;
    }
  });

  test('retries a POST the receiver fails, and keeps owing it across a restart of Tern', async () => {
    const made = await api('POST', '/api/v1/webhooks', { key: admin, body: { url: receiver.url('/retry'), events: ['message.received'] } });
    assert.equal(made.status, 201);
    const hook = made.body as Hook;
    receiver.failing.add('/retry');
    await send({ to: 'bob@example.test', subject: 'for the flaky receiver' });

    // The receiver answers 500: the POST stays owed, with what went wrong.
    const first = await eventually('the first POST, answered 500', () =>
      receiver.posts.find((p) => p.path === '/retry' && p.json.data.recipient === 'bob@example.test'),
    );
    assert.equal(first.answered, 500);
    const id = first.json.id;
    assert.equal(first.headers['tern-delivery'], String(id));
    checkSigned(first, hook.secret);
    const entry = async () => (await deliveries(hook.id)).find((e) => e.id === id);
    const failed = await eventually('a failed attempt in the log', async () => {
      const e = await entry();
      return e && e.attempts >= 1 ? e : undefined;
    });
    assert.deepEqual([failed.event, failed.state, failed.lastStatus], ['message.received', 'pending', 500]);
    assert.match(failed.lastError!, /^HTTP 500 receiver is down/);
    assert.ok(failed.nextAttemptAt && Date.parse(failed.nextAttemptAt) > Date.parse(failed.createdAt));

    // Nobody listens now: the next attempt cannot connect.
    await receiver.close();
    const refused = await eventually('an attempt that cannot connect', async () => {
      const e = await entry();
      return e && e.lastStatus === null ? e : undefined;
    });
    assert.equal(refused.state, 'pending');
    assert.ok(refused.attempts >= 2);
    assert.ok(refused.lastError && !refused.lastError.startsWith('HTTP'), String(refused.lastError));
    const tries = receiver.posts.filter((p) => p.json.id === id);
    assert.ok(tries.length >= 1 && tries.every((p) => p.answered === 500 && p.body === first.body), 'the same body each time');

    // Tern stops while the POST is owed; the receiver comes back; Tern starts again and sends it.
    assert.equal(await tern.stop('SIGTERM'), 0);
    receiver.failing.delete('/retry');
    await receiver.open();
    tern = await startTern(site, ternArgs);
    const arrived = await receiver.waitFor('the owed POST after the restart', '/retry', (p) => p.json.id === id, 20_000);
    assert.equal(arrived.headers['tern-delivery'], String(id));
    assert.equal(arrived.json.event, 'message.received');
    assert.equal(arrived.json.data.recipient, 'bob@example.test');
    assert.equal(arrived.json.data.subject, 'for the flaky receiver');
    assert.equal(arrived.body, first.body);
    checkSigned(arrived, hook.secret);
    const done = await eventually('the log entry delivered', async () => {
      const e = await entry();
      return e?.state === 'delivered' ? e : undefined;
    });
    assert.equal(done.attempts, refused.attempts + 1);
    assert.deepEqual([done.lastStatus, done.lastError, done.nextAttemptAt], [200, null, null]);
    assert.ok(done.finishedAt);
    assert.equal(receiver.posts.filter((p) => p.json.id === id && p.answered === 200).length, 1, 'sent once it got through');
    assert.equal((await api('DELETE', `/api/v1/webhooks/${hook.id}`, { key: admin })).status, 204);
  });

  test('sends a test event on demand, holds POSTs while paused, follows a new URL, and deletes', async () => {
    const test = await api('POST', `/api/v1/webhooks/${main.id}/test`, { key: admin });
    assert.equal(test.status, 202, JSON.stringify(test.body));
    const delivery = (test.body as { delivery: number }).delivery;
    assert.ok(Number.isInteger(delivery));
    const got = await receiver.waitFor('the test event', '/main', (p) => p.json.id === delivery);
    assert.equal(got.json.event, 'test');
    assert.equal(got.headers['tern-event'], 'test');
    assert.equal(got.json.data.webhook, main.id);
    checkSigned(got, main.secret);

    const paused = await api('PATCH', `/api/v1/webhooks/${main.id}`, { key: admin, body: { enabled: false } });
    assert.equal(paused.status, 200, JSON.stringify(paused.body));
    assert.equal((paused.body as Hook).enabled, false);
    const held = ((await api('POST', `/api/v1/webhooks/${main.id}/test`, { key: admin })).body as { delivery: number }).delivery;
    await sleep(2_500);
    assert.ok(!receiver.posts.some((p) => p.json.id === held), 'nothing POSTed while paused');
    const waiting = (await deliveries(main.id)).find((e) => e.id === held)!;
    assert.deepEqual([waiting.state, waiting.attempts], ['pending', 0]);

    const resumed = await api('PATCH', `/api/v1/webhooks/${main.id}`, { key: admin, body: { enabled: true, description: 'resumed' } });
    assert.equal(resumed.status, 200);
    assert.deepEqual([(resumed.body as Hook).enabled, (resumed.body as Hook).description], [true, 'resumed']);
    const late = await receiver.waitFor('the held test event', '/main', (p) => p.json.id === held);
    assert.equal(late.json.event, 'test');

    // A new URL: the next POST goes there.
    const moved = await api('PATCH', `/api/v1/webhooks/${main.id}`, { key: admin, body: { url: receiver.url('/moved') } });
    assert.deepEqual([moved.status, (moved.body as Hook).url, (moved.body as Hook).secret], [200, receiver.url('/moved'), main.secret]);
    const there = ((await api('POST', `/api/v1/webhooks/${main.id}/test`, { key: admin })).body as { delivery: number }).delivery;
    checkSigned(await receiver.waitFor('the test event at the new URL', '/moved', (p) => p.json.id === there), main.secret);

    assert.equal((await api('DELETE', `/api/v1/webhooks/${main.id}`, { key: admin })).status, 204);
    assert.equal((await api('GET', `/api/v1/webhooks/${main.id}`, { key: admin })).status, 404);
    assert.equal((await api('GET', `/api/v1/webhooks/${main.id}/deliveries`, { key: admin })).status, 404);
    assert.equal((await api('DELETE', `/api/v1/webhooks/${main.id}`, { key: admin })).status, 404);
    assert.equal((await api('POST', `/api/v1/webhooks/${main.id}/test`, { key: admin })).status, 404);
    assert.deepEqual(
      ((await api('GET', '/api/v1/webhooks', { key: admin })).body as Hook[]).map((h) => h.id),
      [other.id],
    );
  });
}

describe('webhooks', { timeout: 90_000 }, () => {
  describe('SQLite', () => webhookSuite());
  describe('PostgreSQL', () => webhookSuite(freshPgDatabase));
});
