/**
 * MX inbound authentication against a local DNS server: the RFC 8463 message (Ed25519 and
 * RSA signatures) verifies and passes DMARC; an ARC seal made here verifies; a sender whose
 * SPF ends in -all and whose DMARC says reject is refused with 550 5.7.1, quarantine goes
 * to Junk, a domain in monitor mode takes both with the results recorded, and one that
 * rejects SPF failures refuses them (5.7.23); forged Authentication-Results naming Tern are
 * dropped; clients in the trusted networks skip it all. Results are counted in /metrics.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { authenticate } from 'mailauth';
import { openStore } from '../../src/store/open.js';
import { collect } from '../../src/store/store.js';
import { RFC8463_KEYS, RFC8463_MESSAGE } from '../fixtures/rfc8463.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { openSession } from '../helpers/raw-smtp.js';
import { cli, createSite, freePort, startTern, type Site, type TernServer } from '../helpers/tern.js';

const HOST = 'mx.example.test';

/** A plain message from `from` (no signature). */
const plain = (from: string, subject: string, extraHeaders = '') =>
  `${extraHeaders}From: <${from}>\r\nTo: <alice@example.test>\r\nSubject: ${subject}\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@sender.test>\r\n\r\nHello.\r\n`;

describe('MX inbound authentication', { timeout: 120_000 }, () => {
  let dns: TestDnsServer;
  let site: Site;
  let tern: TernServer;
  let httpPort: number;
  const arcKey = generateKeyPairSync('rsa', { modulusLength: 2048 });

  before(async () => {
    const arcPublic = arcKey.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    dns = await startDnsServer([
      ...RFC8463_KEYS.map((k) => ({ type: 'TXT' as const, ...k })),
      { type: 'TXT', name: 'football.example.com', text: 'v=spf1 ip4:127.0.0.1 -all' },
      { type: 'TXT', name: '_dmarc.football.example.com', text: 'v=DMARC1; p=reject' },
      // Mail from these comes from 127.0.0.1, which their SPF does not allow.
      { type: 'TXT', name: 'bad.test', text: 'v=spf1 ip4:192.0.2.1 -all' },
      { type: 'TXT', name: '_dmarc.bad.test', text: 'v=DMARC1; p=reject' },
      { type: 'TXT', name: 'quar.test', text: 'v=spf1 ip4:192.0.2.1 -all' },
      { type: 'TXT', name: '_dmarc.quar.test', text: 'v=DMARC1; p=quarantine' },
      { type: 'TXT', name: 'nodmarc.test', text: 'v=spf1 ip4:192.0.2.1 -all' },
      { type: 'TXT', name: 'forwarder.test', text: 'v=spf1 ip4:127.0.0.1 -all' },
      { type: 'TXT', name: 'arc._domainkey.forwarder.test', text: `v=DKIM1; k=rsa; p=${arcPublic}` },
    ]);
    site = await createSite();
    for (const d of ['lenient.test', 'strict.test']) await cli(['domain', 'add', d, '--dkim', 'none', ...site.args]);
    await cli(['user', 'add', 'lee@lenient.test', '--password-stdin', ...site.args], 'password123\n');
    await cli(['user', 'add', 'sam@strict.test', '--password-stdin', ...site.args], 'password123\n');
    assert.match(await cli(['domain', 'policy', 'lenient.test', '--dmarc', 'monitor', ...site.args]), /dmarc: monitor/);
    assert.match(await cli(['domain', 'policy', 'strict.test', '--spf', 'reject', ...site.args]), /spf: reject/);
    httpPort = await freePort();
    tern = await startTern(site, ['--trusted-networks', 'none', '--dns-server', dns.address, '--http-port', String(httpPort)]);
  });
  after(async () => {
    await tern?.stop();
    await dns?.close();
  });

  /** Sends one message over the MX; the final reply. */
  async function send(from: string, to: string, message: string, port = tern.smtpPort) {
    const c = await openSession(port, 'EHLO sender.test');
    try {
      assert.equal((await c.command(`MAIL FROM:<${from}>`)).code, 250);
      assert.equal((await c.command(`RCPT TO:<${to}>`)).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      c.send(`${message}.\r\n`);
      return await c.read();
    } finally {
      await c.command('QUIT').catch(() => undefined);
    }
  }

  /** The stored copy of the message whose Subject is `subject` in `address`'s `mailbox`, or null. */
  async function stored(address: string, mailbox: string, subject: string): Promise<string | null> {
    const store = await openStore({ dataDir: site.dataDir });
    try {
      for (const m of await store.mailboxes.messagesOf(address, mailbox)) {
        const text = (await collect(store.mailboxes.read(m.id))).toString('latin1');
        if (text.includes(`\r\nSubject: ${subject}\r\n`)) return text;
      }
      return null;
    } finally {
      await store.close();
    }
  }
  /** The Authentication-Results field of a stored copy, unfolded. */
  const resultsOf = (text: string) => [...text.matchAll(/^Authentication-Results:(.*(?:\r\n[ \t].*)*)/gm)].map((m) => m[1]!.replace(/\r\n[ \t]+/g, ' ').trim());

  it('verifies the RFC 8463 signatures (Ed25519 and RSA), SPF and DMARC, and records them with the copy', async () => {
    const reply = await send('joe@football.example.com', 'alice@example.test', RFC8463_MESSAGE);
    assert.equal(reply.code, 250, reply.text);
    const text = (await stored('alice@example.test', 'INBOX', 'Is dinner ready?'))!;
    assert.ok(text, 'stored in INBOX');
    const [ar] = resultsOf(text);
    assert.match(ar!, new RegExp(`^${HOST.replace(/\./g, '\\.')};`));
    assert.match(ar!, /dkim=pass header\.i=@football\.example\.com header\.s=brisbane header\.a=ed25519-sha256/);
    assert.match(ar!, /dkim=pass header\.i=@football\.example\.com header\.s=test header\.a=rsa-sha256/);
    assert.match(ar!, /spf=pass .*smtp\.mailfrom=joe@football\.example\.com/);
    assert.match(ar!, /dmarc=pass \(p=REJECT arc=none\) .*header\.d=football\.example\.com/);
    assert.match(text, /^Received-SPF: pass /m);
    // Tern's own fields go after its Received line, before the message as it came.
    assert.ok(text.indexOf('Received: from sender.test') < text.indexOf('Authentication-Results:'));
    assert.ok(text.indexOf('Authentication-Results:') < text.indexOf('DKIM-Signature:'));
  });

  it('verifies an ARC seal', async () => {
    const original = plain('someone@bad.test', 'Through a list');
    // The forwarder authenticated the original (which fails: bad.test does not allow it) and sealed its results.
    const sealed = await authenticate(Buffer.from(original), {
      ip: '192.0.2.1',
      helo: 'origin.test',
      sender: 'someone@bad.test',
      mta: 'forwarder.test',
      resolver: (name, type) => dnsLookup(dns, name, type),
      seal: { signingDomain: 'forwarder.test', selector: 'arc', privateKey: arcKey.privateKey.export({ type: 'pkcs8', format: 'pem' }) },
    });
    const reply = await send('bounces@forwarder.test', 'lee@lenient.test', sealed.headers + original);
    assert.equal(reply.code, 250, reply.text);
    const [ar] = resultsOf((await stored('lee@lenient.test', 'INBOX', 'Through a list'))!);
    assert.match(ar!, /arc=pass/);
  });

  it('refuses a message whose DMARC policy says reject, and sends quarantine to Junk', async () => {
    const refused = await send('someone@bad.test', 'alice@example.test', plain('someone@bad.test', 'Forged bank notice'));
    assert.equal(refused.code, 550);
    assert.match(refused.text, /5\.7\.1 DMARC policy of bad\.test says reject/);
    assert.equal(await stored('alice@example.test', 'INBOX', 'Forged bank notice'), null);

    const junk = await send('someone@quar.test', 'alice@example.test', plain('someone@quar.test', 'Maybe spam'));
    assert.equal(junk.code, 250, junk.text);
    assert.equal(await stored('alice@example.test', 'INBOX', 'Maybe spam'), null);
    const [ar] = resultsOf((await stored('alice@example.test', 'Junk', 'Maybe spam'))!);
    assert.match(ar!, /spf=fail/);
    assert.match(ar!, /dmarc=fail .*header\.from=quar\.test/);
  });

  it("follows each domain's policy: monitor records only, spf reject refuses SPF failures", async () => {
    const monitored = await send('someone@bad.test', 'lee@lenient.test', plain('someone@bad.test', 'Monitored'));
    assert.equal(monitored.code, 250, monitored.text);
    assert.match(resultsOf((await stored('lee@lenient.test', 'INBOX', 'Monitored'))!)[0]!, /dmarc=fail/);

    // No DMARC record: nothing to enforce, except where the domain refuses SPF failures.
    assert.equal((await send('someone@nodmarc.test', 'alice@example.test', plain('someone@nodmarc.test', 'No DMARC'))).code, 250);
    const strict = await send('someone@nodmarc.test', 'sam@strict.test', plain('someone@nodmarc.test', 'No DMARC, strict'));
    assert.equal(strict.code, 550);
    assert.match(strict.text, /5\.7\.23 SPF of nodmarc\.test does not allow 127\.0\.0\.1/);
  });

  it('drops Authentication-Results that claim to be Tern’s, and keeps the others', async () => {
    const forged = plain(
      'someone@nodmarc.test',
      'Forged results',
      `Authentication-Results: ${HOST.toUpperCase()};\r\n dkim=pass header.d=bank.test\r\nAuthentication-Results: upstream.test; spf=pass\r\n`,
    );
    assert.equal((await send('someone@nodmarc.test', 'alice@example.test', forged)).code, 250);
    const results = resultsOf((await stored('alice@example.test', 'INBOX', 'Forged results'))!);
    assert.equal(results.length, 2, results.join('\n'));
    assert.match(results[0]!, /^mx\.example\.test; .*spf=fail/);
    assert.equal(results[1], 'upstream.test; spf=pass');
  });

  it('counts the results in /metrics', async () => {
    const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    assert.match(text, /^tern_inbound_auth_total\{method="dkim",result="pass"\} [1-9]/m);
    assert.match(text, /^tern_inbound_auth_total\{method="dmarc",result="fail"\} [1-9]/m);
    assert.match(text, /^tern_inbound_verdicts_total\{action="reject",reason="dmarc-reject"\} 1$/m);
    assert.match(text, /^tern_inbound_verdicts_total\{action="junk",reason="dmarc-quarantine"\} 1$/m);
    assert.match(text, /^tern_inbound_verdicts_total\{action="reject",reason="spf-fail"\} 1$/m);
  });

  it('serves MTA-STS policies for its domains and lists their records', async () => {
    const policyFor = (host: string) =>
      new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: httpPort, path: '/.well-known/mta-sts.txt', headers: { host } }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }));
        });
        req.on('error', reject);
        req.end();
      });
    const records = async () =>
      (JSON.parse(await cli(['domain', 'dns', 'example.test', '--json', ...site.args])) as Array<{ name: string; type: string; value: string }>).filter((r) =>
        /mta-sts|_smtp\._tls/.test(r.name),
      );
    const testing = await policyFor('mta-sts.example.test:443');
    assert.equal(testing.status, 200);
    assert.match(testing.type, /^text\/plain/);
    assert.equal(testing.body, `version: STSv1\r\nmode: testing\r\nmx: ${HOST}\r\nmax_age: 604800\r\n`);
    const before = await records();
    assert.deepEqual(
      before.map((r) => [r.name, r.type]),
      [
        ['_mta-sts.example.test', 'TXT'],
        ['mta-sts.example.test', 'CNAME'],
        ['_smtp._tls.example.test', 'TXT'],
      ],
    );
    assert.match(before[0]!.value, /^v=STSv1; id=[0-9a-f]{20}$/);

    assert.match(await cli(['domain', 'policy', 'example.test', '--mta-sts', 'enforce', ...site.args]), /mta-sts: enforce/);
    assert.match((await policyFor('mta-sts.example.test')).body, /\r\nmode: enforce\r\n/);
    assert.notEqual((await records())[0]!.value, before[0]!.value, 'a new id for a new policy');

    await cli(['domain', 'policy', 'example.test', '--mta-sts', 'none', ...site.args]);
    assert.equal((await policyFor('mta-sts.example.test')).status, 404);
    assert.deepEqual(await records(), []);
    assert.equal((await policyFor('mta-sts.nowhere.test')).status, 404);
    assert.equal((await policyFor('example.test')).status, 404);
  });

  it('lets clients in the trusted networks skip the checks', async () => {
    const trusted = await startTern(site, ['--trusted-networks', '127.0.0.0/8', '--dns-server', dns.address]);
    try {
      const reply = await send('someone@bad.test', 'alice@example.test', plain('someone@bad.test', 'From a trusted host'), trusted.smtpPort);
      assert.equal(reply.code, 250, reply.text);
      const text = (await stored('alice@example.test', 'INBOX', 'From a trusted host'))!;
      assert.deepEqual(resultsOf(text), [], 'no checks, no results');
    } finally {
      await trusted.stop();
    }
  });

  it('refuses a bad --trusted-networks value', async () => {
    const { runCli } = await import('../helpers/tern.js');
    const r = await runCli(['serve', '--trusted-networks', '10.0.0.0/33', ...site.args]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--trusted-networks: "10\.0\.0\.0\/33" is not an address or a CIDR range/);
  });
});

/** The test DNS server asked as mailauth asks (for the seal made in the test). */
async function dnsLookup(dns: TestDnsServer, name: string, type: string): Promise<string[][] | string[]> {
  const { Resolver } = await import('node:dns/promises');
  const r = new Resolver();
  r.setServers([dns.address]);
  return (await r.resolve(name, type)) as string[][] | string[];
}
