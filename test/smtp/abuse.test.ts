/**
 * Abuse controls for clients outside the trusted networks (the tests set
 * `--trusted-networks none`, so 127.0.0.1 is a stranger): failed logins on IMAP, POP3,
 * submission or HTTP ban the address on every port until the ban expires or `tern ban
 * del` lifts it; connection, message and per-account rates answer 421/451/450; greylisting
 * defers a new triplet until its retry after the delay.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import { dnsblName } from '../../src/smtp/dnsbl.js';
import { startDnsServer } from '../helpers/dns-server.js';
import { openSession, RawSmtp } from '../helpers/raw-smtp.js';
import { cli, createSite, freePort, startTern, type Site, type TernServer } from '../helpers/tern.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The first line a line-based server (IMAP, POP3) sends, then a command's answer line when `command` is given. */
async function lines(port: number, commands: string[] = []): Promise<string[]> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  let buffer = '';
  const got: string[] = [];
  const next = () =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const i = buffer.indexOf('\r\n');
        if (i === -1) return false;
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        resolve(line);
        return true;
      };
      if (check()) return;
      const onData = (d: Buffer) => {
        buffer += d.toString();
        if (check()) socket.off('data', onData);
      };
      socket.on('data', onData);
      socket.once('close', () => reject(new Error(`closed after ${JSON.stringify(got)}`)));
    });
  try {
    got.push(await next());
    for (const c of commands) {
      socket.write(`${c}\r\n`);
      got.push(await next());
    }
    return got;
  } finally {
    socket.destroy();
  }
}

describe('abuse controls', { timeout: 120_000 }, () => {
  const servers: TernServer[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
  });
  async function serve(site: Site, extra: string[]) {
    const ports = { imap: await freePort(), pop3: await freePort(), submission: await freePort(), http: await freePort() };
    const tern = await startTern(site, [
      '--trusted-networks',
      'none',
      '--imap-port',
      String(ports.imap),
      '--pop3-port',
      String(ports.pop3),
      '--submission-port',
      String(ports.submission),
      '--http-port',
      String(ports.http),
      ...extra,
    ]);
    servers.push(tern);
    return { tern, ...ports };
  }

  it('bans an address after repeated failed logins, on every port, until it expires or is lifted', async () => {
    const site = await createSite();
    const s = await serve(site, ['--ban-after', '3', '--ban-window', '60', '--ban-time', '3']);
    // Two failures on IMAP and one on POP3 make three from this address.
    assert.match((await lines(s.imap, ['a LOGIN alice@example.test wrong']))[1]!, /^a NO /);
    assert.match((await lines(s.imap, ['a LOGIN alice@example.test wrong']))[1]!, /^a NO /);
    assert.match((await lines(s.pop3, ['USER alice@example.test', 'PASS wrong']))[2]!, /^-ERR/);

    assert.match((await lines(s.imap))[0]!, /^\* BYE Your address is banned/);
    assert.match((await lines(s.pop3))[0]!, /^-ERR \[AUTH\] Your address is banned/);
    const smtp = await RawSmtp.connect(s.tern.smtpPort);
    const refused = await smtp.read();
    smtp.close();
    assert.equal(refused.code, 421);
    assert.match(refused.text, /4\.7\.0 Your address is banned/);
    const http = await fetch(`http://127.0.0.1:${s.http}/api/v1/keys`);
    assert.equal(http.status, 403);
    assert.equal(((await http.json()) as { error: { code: string } }).error.code, 'banned');

    const bans = JSON.parse(await cli(['ban', 'list', '--json', ...site.args])) as Array<{ address: string; reason: string }>;
    assert.deepEqual(
      bans.map((b) => b.address),
      ['127.0.0.1'],
    );
    assert.match(bans[0]!.reason, /3 failed logins \((imap|pop3)\) within 60 s/);

    // It expires by itself.
    await sleep(3_200);
    assert.match((await lines(s.imap, ['a LOGIN alice@example.test password123']))[1]!, /^a OK /);

    // Bad API keys count too; an admin lifts the ban, and the server sees it within 5 s.
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`http://127.0.0.1:${s.http}/api/v1/keys`, { headers: { authorization: 'Bearer tern_000000000000_nope' } });
      assert.equal(r.status, 401);
    }
    assert.equal((await fetch(`http://127.0.0.1:${s.http}/api/v1/keys`)).status, 403);
    await cli(['ban', 'del', '127.0.0.1', ...site.args]);
    const deadline = Date.now() + 8_000;
    while ((await lines(s.imap))[0]!.startsWith('* BYE')) {
      assert.ok(Date.now() < deadline, 'the lifted ban reaches the server');
      await sleep(250);
    }
    assert.deepEqual(JSON.parse(await cli(['ban', 'list', '--json', ...site.args])), []);

    // The same through the API, with a site-wide admin key.
    const key = (JSON.parse(await cli(['apikey', 'create', '--scope', 'admin', '--json', ...site.args])) as { key: string }).key;
    const call = (method: string, path: string, body?: unknown) =>
      fetch(`http://127.0.0.1:${s.http}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
    const made = await call('POST', '/api/v1/bans', { address: '203.0.113.9', seconds: 600, reason: 'abuse desk' });
    assert.equal(made.status, 201);
    assert.equal(((await made.json()) as { address: string }).address, '203.0.113.9');
    assert.deepEqual(
      ((await (await call('GET', '/api/v1/bans')).json()) as Array<{ address: string; reason: string }>).map((b) => [b.address, b.reason]),
      [['203.0.113.9', 'abuse desk']],
    );
    assert.equal((await call('POST', '/api/v1/bans', { address: 'nope' })).status, 400);
    assert.equal((await call('DELETE', '/api/v1/bans/203.0.113.9')).status, 204);
    assert.equal((await call('DELETE', '/api/v1/bans/203.0.113.9')).status, 404);
  });

  it('adds and refuses bans by hand with clear errors', async () => {
    const site = await createSite();
    assert.match(await cli(['ban', 'add', '192.0.2.7', '--for', '1h', '--reason', 'spam run', ...site.args]), /192\.0\.2\.7 banned until/);
    const [ban] = JSON.parse(await cli(['ban', 'list', '--json', ...site.args])) as Array<{ address: string; reason: string }>;
    assert.deepEqual([ban!.address, ban!.reason], ['192.0.2.7', 'spam run']);
    const { runCli } = await import('../helpers/tern.js');
    const bad = await runCli(['ban', 'add', 'not-an-ip', ...site.args]);
    assert.match(bad.stderr, /not an IP address: "not-an-ip"/);
    const missing = await runCli(['ban', 'del', '198.51.100.1', ...site.args]);
    assert.match(missing.stderr, /198\.51\.100\.1 is not banned/);
  });

  it('limits new connections and messages per address, and messages per account', async () => {
    const site = await createSite();
    const s = await serve(site, ['--connection-rate', '6', '--message-rate', '2', '--account-hourly-messages', '2', '--ban-after', '0']);
    // Messages per address per hour on the MX: the third MAIL is deferred.
    const mx = await openSession(s.tern.smtpPort);
    for (let i = 0; i < 2; i++) {
      assert.equal((await mx.command('MAIL FROM:<a@remote.test>')).code, 250);
      assert.equal((await mx.command('RSET')).code, 250);
    }
    const third = await mx.command('MAIL FROM:<a@remote.test>');
    assert.equal(third.code, 451);
    assert.match(third.text, /4\.7\.1 Too many messages from your address/);
    mx.close();
    // Messages per account on submission (AUTH PLAIN without TLS is fine from loopback).
    const sub = await openSession(s.submission);
    const plain = Buffer.from('\0alice@example.test\0password123').toString('base64');
    assert.equal((await sub.command(`AUTH PLAIN ${plain}`)).code, 235);
    for (let i = 0; i < 2; i++) {
      assert.equal((await sub.command('MAIL FROM:<alice@example.test>')).code, 250);
      assert.equal((await sub.command('RSET')).code, 250);
    }
    const over = await sub.command('MAIL FROM:<alice@example.test>');
    assert.equal(over.code, 450);
    assert.match(over.text, /4\.7\.1 You have sent as many messages as your account may this hour/);
    sub.close();
    // New connections per address per minute: two made above, four more, and the seventh is refused.
    for (let i = 0; i < 4; i++) assert.match((await lines(s.pop3))[0]!, /^\+OK/);
    const refused = await lines(s.imap);
    assert.match(refused[0]!, /^\* BYE Too many new connections from your address/);
  });

  it('cuts off a client dribbling a command a byte at a time, while others are served', async () => {
    const site = await createSite();
    const s = await serve(site, ['--idle-timeout', '2']);
    const slow = await openSession(s.tern.smtpPort);
    const started = Date.now();
    const dribble = (async () => {
      for (const byte of 'MAIL FROM:<slow@remote.test>') {
        if (slow.closed) return;
        slow.send(byte);
        await sleep(100);
      }
    })();
    // Meanwhile another client sends a whole message.
    const quick = await openSession(s.tern.smtpPort);
    assert.equal((await quick.command('MAIL FROM:<quick@remote.test>')).code, 250);
    assert.equal((await quick.command('RCPT TO:<alice@example.test>')).code, 250);
    assert.equal((await quick.command('DATA')).code, 354);
    quick.send('Subject: quick\r\n\r\nserved\r\n.\r\n');
    assert.equal((await quick.read()).code, 250);
    quick.close();
    const bye = await slow.read(5_000);
    assert.equal(bye.code, 421);
    assert.match(bye.text, /4\.4\.2/);
    await slow.waitClosed();
    const took = Date.now() - started;
    assert.ok(took >= 1_900 && took < 2_900, `cut off after ${took} ms, though a byte came every 100 ms`);
    await dribble;
  });

  it('refuses a stranger a DNS blocklist lists, at the greeting', async () => {
    assert.equal(dnsblName('192.0.2.99', 'bl.test'), '99.2.0.192.bl.test');
    assert.equal(dnsblName('::ffff:192.0.2.99', 'bl.test'), '99.2.0.192.bl.test');
    assert.equal(dnsblName('2001:db8::1', 'bl.test'), `1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test`);
    const dns = await startDnsServer([
      { type: 'A', name: '1.0.0.127.bl.test', address: '127.0.0.2' },
      // 127.255.255.x: the list refusing the query, which lists no one.
      { type: 'A', name: '1.0.0.127.refusing.test', address: '127.255.255.254' },
    ]);
    try {
      const site = await createSite();
      const listed = await serve(site, ['--dns-server', dns.address, '--dnsbl', 'clean.test,bl.test']);
      const c = await RawSmtp.connect(listed.tern.smtpPort);
      const greeting = await c.read();
      assert.equal(greeting.code, 554);
      assert.match(greeting.text, /5\.7\.1 Service unavailable; client \[127\.0\.0\.1\] blocked using bl\.test/);
      await c.waitClosed();
      const clean = await serve(site, ['--dns-server', dns.address, '--dnsbl', 'clean.test,refusing.test']);
      const ok = await RawSmtp.connect(clean.tern.smtpPort);
      assert.equal((await ok.read()).code, 220);
      ok.close();
    } finally {
      await dns.close();
    }
  });

  it('greylists a new triplet until it retries after the delay, where it is on', async () => {
    const site = await createSite();
    await cli(['domain', 'add', 'open.test', '--dkim', 'none', ...site.args]);
    await cli(['user', 'add', 'olga@open.test', '--password-stdin', ...site.args], 'password123\n');
    assert.match(await cli(['domain', 'policy', 'example.test', '--greylist', 'on', ...site.args]), /greylist: on/);
    const s = await serve(site, ['--greylist-delay', '2s']);
    const attempt = async (from: string, to: string) => {
      const c = await openSession(s.tern.smtpPort);
      try {
        await c.command(`MAIL FROM:<${from}>`);
        return await c.command(`RCPT TO:<${to}>`);
      } finally {
        c.close();
      }
    };
    const first = await attempt('news@sender.test', 'alice@example.test');
    assert.equal(first.code, 451);
    assert.match(first.text, /4\.7\.1 Greylisted: please try again in [12] s/);
    assert.equal((await attempt('news@sender.test', 'alice@example.test')).code, 451, 'too early');
    assert.equal((await attempt('news@sender.test', 'olga@open.test')).code, 250, 'a domain without greylisting');
    await sleep(2_100);
    assert.equal((await attempt('news@sender.test', 'alice@example.test')).code, 250, 'the retry after the delay passes');
    assert.equal((await attempt('news@sender.test', 'alice@example.test')).code, 250, 'and keeps passing');
    assert.equal((await attempt('other@sender.test', 'alice@example.test')).code, 451, 'another sender is a new triplet');
  });
});
