/**
 * What the admin portal stands on, over real HTTP against `tern serve`: the session login
 * (cookie flags, CSRF, logout, idle expiry, rate limit, only administrators), the portal's
 * files (precompressed, cached, CSP), the dashboard's /api/v1/stats, a domain's DNS check
 * against a DNS server the test runs, the trace search over inbound and outbound mail by
 * Message-ID, sender, recipient and time, account search and paging, and a queued message's
 * headers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { callApi, createApiKey } from '../helpers/http-api.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { cli, createSite, freePort, startTern, type Site, type TernServer } from '../helpers/tern.js';

interface ApiError {
  error: { code: string; message: string };
}
interface Session {
  address: string;
  csrfToken: string;
  idleTimeoutSeconds: number;
  expiresAt: string;
}
interface TraceHit {
  id: string;
  at: string;
  direction: string;
  sender: string | null;
  messageId: string | null;
  subject: string | null;
  recipients: string[];
}

const ADMIN = 'root@example.test';
const PASSWORD = 'portal-password-1';

describe('portal API', { timeout: 120_000 }, () => {
  let site: Site;
  let tern: TernServer;
  let dns: TestDnsServer;
  let sink: SmtpSink;
  let base: string;
  let key: string;
  const api = (method: string, path: string, o: Parameters<typeof callApi>[3] = {}) => callApi(base, method, path, o);
  const codeOf = (r: { body: unknown }) => (r.body as ApiError).error?.code;

  /** Logs in; returns the cookie header to send and the session. */
  async function login(address = ADMIN, password = PASSWORD): Promise<{ cookie: string; session: Session; setCookie: string }> {
    const r = await api('POST', '/api/v1/session', { body: { address, password } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const setCookie = r.headers.get('set-cookie') ?? '';
    return { cookie: setCookie.split(';')[0]!, session: r.body as Session, setCookie };
  }

  before(async () => {
    sink = await startSmtpSink();
    dns = await startDnsServer();
    site = await createSite();
    await cli(['user', 'add', ADMIN, '--admin', '--password-stdin', ...site.args], `${PASSWORD}\n`);
    key = await createApiKey(site, '--scope', 'admin,send,read');
    const httpPort = await freePort();
    base = `http://127.0.0.1:${httpPort}`;
    tern = await startTern(site, ['--http-port', String(httpPort), '--dns-server', dns.address, '--smarthost', `127.0.0.1:${sink.port}`, '--ban-after', '100']);
  });
  after(async () => {
    await tern?.stop();
    await dns?.close();
    await sink?.close();
  });

  it('logs an administrator in with an HttpOnly SameSite=Strict cookie and asks for the CSRF token on every change', async () => {
    const { cookie, session, setCookie } = await login();
    assert.match(setCookie, /^tern_session=tern_/);
    assert.match(setCookie, /; HttpOnly/);
    assert.match(setCookie, /; SameSite=Strict/);
    assert.match(setCookie, /; Path=\//);
    assert.equal(session.address, ADMIN);
    assert.equal(session.idleTimeoutSeconds, 1800);

    const me = await api('GET', '/api/v1/session', { headers: { cookie } });
    assert.equal(me.status, 200);
    assert.equal((me.body as Session).csrfToken, session.csrfToken);
    // Reading needs the cookie only.
    assert.equal((await api('GET', '/api/v1/domains', { headers: { cookie } })).status, 200);

    // A change without the token (what a page of another site could make the browser send) changes nothing.
    const forged = await api('POST', '/api/v1/domains', { headers: { cookie }, body: { name: 'forged.test' } });
    assert.equal(forged.status, 403);
    assert.equal(codeOf(forged), 'csrf');
    const wrong = await api('POST', '/api/v1/domains', {
      headers: { cookie, 'x-csrf-token': session.csrfToken.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) },
      body: { name: 'forged.test' },
    });
    assert.equal(codeOf(wrong), 'csrf');
    assert.equal((await api('GET', '/api/v1/domains/forged.test', { key })).status, 404);

    const made = await api('POST', '/api/v1/domains', { headers: { cookie, 'x-csrf-token': session.csrfToken }, body: { name: 'portal.test', dkim: 'none' } });
    assert.equal(made.status, 201, JSON.stringify(made.body));

    // The session is an API key an administrator can see (and revoke) with the others.
    const keys = (await api('GET', '/api/v1/keys', { key })).body as Array<{ description: string; revokedAt: string | null }>;
    assert.ok(keys.some((k) => k.description === `portal session: ${ADMIN}` && k.revokedAt === null));

    // The session's token works as a Bearer key too (it is one), with the session's expiry.
    const token = decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1));
    assert.equal((await api('GET', '/api/v1/domains', { key: token })).status, 200);
    // Logout needs the token too, then the cookie is worthless and cleared.
    assert.equal((await api('DELETE', '/api/v1/session', { headers: { cookie } })).status, 403);
    const out = await api('DELETE', '/api/v1/session', { headers: { cookie, 'x-csrf-token': session.csrfToken } });
    assert.equal(out.status, 204);
    assert.match(out.headers.get('set-cookie') ?? '', /^tern_session=; .*Max-Age=0/);
    assert.equal((await api('GET', '/api/v1/domains', { headers: { cookie } })).status, 401);
    assert.equal((await api('GET', '/api/v1/domains', { key: token })).status, 401);
    assert.equal((await api('GET', '/api/v1/domains', { headers: { cookie: 'tern_session=%E0%A4%A' } })).status, 401, 'a mangled cookie');
    // Asking whether there is a session is not an error: 204 without one.
    assert.equal((await api('GET', '/api/v1/session', { headers: { cookie } })).status, 204);
    assert.equal((await api('GET', '/api/v1/session')).status, 204);
  });

  it('ends a session left idle longer than portal_idle_timeout', async () => {
    const set = await api('PUT', '/api/v1/settings/portal_idle_timeout', { key, body: { value: '2s' } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    try {
      // The setting is cached for up to 10 s.
      await new Promise((r) => setTimeout(r, 10_500));
      const { cookie, session } = await login();
      assert.equal(session.idleTimeoutSeconds, 2);
      assert.equal((await api('GET', '/api/v1/stats', { headers: { cookie } })).status, 200);
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal((await api('GET', '/api/v1/stats', { headers: { cookie } })).status, 200, 'a session in use stays');
      // The dashboard's polls (X-Tern-Background) do not count as use: the session still ends 2 s after the last real request.
      const lastUse = Date.now();
      let late: { status: number; body: unknown; after: number } | null = null;
      for (let i = 0; i < 16 && !late; i++) {
        await new Promise((r) => setTimeout(r, 400));
        const r = await api('GET', '/api/v1/stats', { headers: { cookie, 'x-tern-background': '1' } });
        if (r.status !== 200) late = { ...r, after: Date.now() - lastUse };
      }
      assert.equal(late?.status, 401);
      assert.equal(codeOf(late), 'session_expired');
      assert.ok(late.after >= 2000, `ended ${late.after} ms after its last use`);
      assert.equal((await api('GET', '/api/v1/stats', { headers: { cookie } })).status, 401, 'and it stays ended');
      assert.equal((await api('GET', '/api/v1/session', { headers: { cookie } })).status, 204);
    } finally {
      await api('DELETE', '/api/v1/settings/portal_idle_timeout', { key });
    }
  });

  it('serves the portal: index revalidated, hashed assets cached for a year, compressed, under a strict CSP', async () => {
    const index = await fetch(`${base}/`, { headers: { 'accept-encoding': 'br, gzip' } });
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type') ?? '', /text\/html/);
    assert.equal(index.headers.get('cache-control'), 'no-cache');
    assert.match(index.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    const html = await index.text();
    const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    assert.ok(
      assets.some((a) => a.endsWith('.js')),
      html,
    );
    for (const asset of assets) {
      const r = await fetch(`${base}${asset}`, { headers: { 'accept-encoding': 'br, gzip' } });
      assert.equal(r.status, 200, asset);
      assert.equal(r.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      if (asset.endsWith('.js')) assert.match(r.headers.get('content-encoding') ?? '', /br|gzip/);
      await r.arrayBuffer();
    }
    const missing = await api('GET', '/api/v1/nothing-here');
    assert.equal(missing.status, 404);
    assert.equal(codeOf(missing), 'not_found');
  });

  it('answers the dashboard from the counters of /metrics', async () => {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: tern.smtpPort, secure: false, ignoreTLS: true });
    const before = (await api('GET', '/api/v1/stats', { key })).body as { received: number };
    await transport.sendMail({ from: 'someone@remote.test', to: 'bob@example.test', subject: 'count me', text: 'hello' });
    const after = (await api('GET', '/api/v1/stats', { key })).body as {
      received: number;
      queue: Record<string, number>;
      connections: Record<string, number>;
      store: { messages: number; bytes: number };
    };
    assert.equal(after.received, before.received + 1);
    assert.equal(typeof after.queue.queued, 'number');
    assert.equal(typeof after.store.bytes, 'number');
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const total = [...metrics.matchAll(/^tern_messages_received_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    assert.equal(total, after.received);
  });

  it('checks what DNS publishes now for each record of a domain', async () => {
    const domain = (await api('GET', '/api/v1/domains/example.test', { key })).body as { records: Array<{ name: string; type: string; value: string }> };
    const spf = domain.records.find((r) => r.type === 'TXT' && r.value.startsWith('v=spf1'))!;
    const dmarc = domain.records.find((r) => r.name.startsWith('_dmarc.'))!;
    dns.set([
      { type: 'MX', name: 'example.test', exchange: 'mx.example.test', priority: 5 },
      { type: 'TXT', name: spf.name, text: spf.value },
      { type: 'TXT', name: dmarc.name, text: 'v=DMARC1; p=reject' },
    ]);
    const r = await api('GET', '/api/v1/domains/example.test/dns-check', { key });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const check = r.body as { resolvers: string[]; records: Array<{ type: string; name: string; status: string; found: string[] }> };
    assert.deepEqual(check.resolvers, [dns.address]);
    const statusOf = (type: string, name: string) => check.records.find((c) => c.type === type && c.name === name)?.status;
    assert.equal(statusOf('MX', 'example.test'), 'ok', 'another preference is still the right host');
    assert.equal(statusOf('TXT', spf.name), 'ok');
    assert.equal(statusOf('TXT', dmarc.name), 'different');
    assert.deepEqual(check.records.find((c) => c.name === dmarc.name)!.found, ['v=DMARC1; p=reject']);
    assert.equal(statusOf('SRV', '_imaps._tcp.example.test'), 'missing');
    assert.equal(check.records.length, domain.records.length);

    dns.failing.add('_dmarc.example.test');
    const failing = (await api('GET', '/api/v1/domains/example.test/dns-check', { key })).body as typeof check;
    assert.equal(failing.records.find((c) => c.name === dmarc.name)!.status, 'error');
    dns.failing.clear();
  });

  it('finds inbound and outbound mail by Message-ID, sender, recipient and time, and traces each', async () => {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: tern.smtpPort, secure: false, ignoreTLS: true });
    await transport.sendMail({ from: 'carol@remote.test', to: 'alice@example.test', subject: 'Inbound one', text: 'hi', messageId: '<in-1@remote.test>' });
    const sent = await api('POST', '/api/v1/messages?wait=delivered', {
      key,
      body: { from: 'alice@example.test', to: ['dave@far.test'], subject: 'Outbound one', text: 'hi' },
    });
    assert.ok(sent.status === 200 || sent.status === 202, JSON.stringify(sent.body));
    const search = async (query: string) => {
      const r = await api('GET', `/api/v1/trace?${query}`, { key });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return (r.body as { messages: TraceHit[] }).messages;
    };

    const inbound = await search('messageId=in-1@remote.test');
    assert.equal(inbound.length, 1);
    assert.equal(inbound[0]!.direction, 'inbound');
    assert.equal(inbound[0]!.sender, 'carol@remote.test');
    assert.equal(inbound[0]!.subject, 'Inbound one');
    assert.deepEqual(inbound[0]!.recipients, ['alice@example.test']);
    assert.equal((await search(`messageId=${encodeURIComponent('<in-1@remote.test>')}`))[0]?.id, inbound[0]!.id, 'brackets or not');

    const outbound = await search('recipient=dave@far.test');
    assert.equal(outbound.length, 1);
    assert.equal(outbound[0]!.direction, 'outbound');
    // The API writes the Message-ID <TERN-ID@host name>.
    assert.equal(outbound[0]!.id, (sent.body as { id: string }).id);
    assert.equal(outbound[0]!.messageId, `${outbound[0]!.id}@mx.example.test`);
    assert.equal(outbound[0]!.subject, 'Outbound one');
    assert.equal((await search(`messageId=${outbound[0]!.messageId}`))[0]?.id, outbound[0]!.id);
    assert.ok((await search('sender=carol@remote.test')).some((h) => h.id === inbound[0]!.id));
    assert.equal((await search(`sender=carol@remote.test&since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).length, 0);
    assert.ok((await search(`until=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}&limit=5`)).length >= 2);
    const bad = await api('GET', '/api/v1/trace?since=yesterday', { key });
    assert.equal(bad.status, 400);

    // Each hop: the stored copy, and the remote reply of the outbound one once delivered.
    const detail = (await api('GET', `/api/v1/messages/${inbound[0]!.id}`, { key })).body as {
      recipients: Array<{ address: string; status: string; events: Array<{ at: string; event: string; reply: string | null }> }>;
    };
    assert.deepEqual(detail.recipients, [
      { address: 'alice@example.test', status: 'stored', events: [{ event: 'stored', reply: 'INBOX', at: inbound[0]!.at }] },
    ]);
    for (let i = 0; i < 100; i++) {
      const out = (await api('GET', `/api/v1/messages/${outbound[0]!.id}`, { key })).body as typeof detail;
      if (out.recipients[0]?.status === 'delivered') {
        assert.match(out.recipients[0].events.at(-1)!.reply ?? '', /^250/);
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail('the outbound message was not delivered to the sink');
  });

  it('pages and searches accounts, with the total in X-Total-Count', async () => {
    for (let i = 0; i < 5; i++) await api('POST', '/api/v1/accounts', { key, body: { address: `page${i}@example.test`, password: 'password123' } });
    const page = await api('GET', '/api/v1/accounts?search=page&limit=2&offset=2', { key });
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('x-total-count'), '5');
    assert.deepEqual(
      (page.body as Array<{ address: string }>).map((a) => a.address),
      ['page2@example.test', 'page3@example.test'],
    );
    const all = await api('GET', '/api/v1/accounts', { key });
    assert.equal(all.headers.get('x-total-count'), String((all.body as unknown[]).length));
  });

  it('keeps routes and rate limits per destination, checked like tern route and tern queue rate', async () => {
    const route = await api('PUT', '/api/v1/routes/Partner.test', { key, body: { target: 'relay.partner.test:2525' } });
    assert.equal(route.status, 200, JSON.stringify(route.body));
    assert.deepEqual(route.body, { domain: 'partner.test', target: 'relay.partner.test:2525' });
    assert.equal((await api('PUT', '/api/v1/routes/partner.test', { key, body: { target: 'no port' } })).status, 400);
    assert.deepEqual((await api('GET', '/api/v1/routes', { key })).body, [{ domain: 'partner.test', target: 'relay.partner.test:2525' }]);
    assert.equal((await api('PUT', '/api/v1/rate-limits/mx.big.test', { key, body: { perMinute: 0 } })).status, 400);
    assert.deepEqual((await api('PUT', '/api/v1/rate-limits/MX.big.test', { key, body: { perMinute: 120 } })).body, {
      destination: 'mx.big.test',
      perMinute: 120,
    });
    assert.deepEqual((await api('GET', '/api/v1/rate-limits', { key })).body, [{ destination: 'mx.big.test', perMinute: 120 }]);
    assert.equal((await api('DELETE', '/api/v1/rate-limits/mx.big.test', { key })).status, 204);
    assert.equal((await api('DELETE', '/api/v1/rate-limits/mx.big.test', { key })).status, 404);
    assert.equal((await api('DELETE', '/api/v1/routes/partner.test', { key })).status, 204);
    assert.deepEqual((await api('GET', '/api/v1/routes', { key })).body, []);
  });

  it("shows a queued message's header block", async () => {
    await cli(['queue', 'pause', 'slow.test', ...site.args]);
    const sent = await api('POST', '/api/v1/messages', {
      key,
      body: { from: 'alice@example.test', to: ['x@slow.test'], subject: 'Held back', text: 'body text' },
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    const entries = (await api('GET', '/api/v1/queue?domain=slow.test', { key })).body as Array<{ id: number }>;
    const entry = (await api('GET', `/api/v1/queue/${entries[0]!.id}`, { key })).body as { headers: string };
    assert.match(entry.headers, /^Subject: Held back\r$/m);
    assert.match(entry.headers, /\r\n$/);
    assert.doesNotMatch(entry.headers, /body text/);
  });
  it('refuses wrong passwords and non-administrators alike, logs them, and limits attempts per address', async () => {
    const wrong = await api('POST', '/api/v1/session', { body: { address: ADMIN, password: 'not the password' } });
    assert.equal(wrong.status, 401);
    const user = await api('POST', '/api/v1/session', { body: { address: 'alice@example.test', password: 'password123' } });
    assert.equal(user.status, 401);
    assert.equal((user.body as ApiError).error.message, (wrong.body as ApiError).error.message);
    assert.equal((await api('POST', '/api/v1/session', { body: { address: ADMIN } })).status, 400);
    assert.match(tern.output(), /"protocol":"portal".*"msg":"login failed"|login failed.*portal/);
    let limited = null;
    for (let i = 0; i < 12 && !limited; i++) {
      const r = await api('POST', '/api/v1/session', { body: { address: ADMIN, password: `guess ${i}` } });
      if (r.status !== 401) limited = r;
    }
    assert.equal(limited?.status, 429, 'ten failures in a minute make the address wait');
    assert.equal(codeOf(limited), 'rate_limited');
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
    // Even the right password waits.
    assert.equal((await api('POST', '/api/v1/session', { body: { address: ADMIN, password: PASSWORD } })).status, 429);
  });
});
