/**
 * MTA-STS (RFC 8461), end to end: the test runs a certificate authority of its own, an
 * HTTPS policy server (mta-sts.<domain>) and SMTP sinks with and without STARTTLS, and
 * gives Tern the CA through NODE_EXTRA_CA_CERTS. Under an enforce policy, mail goes only
 * to listed MX hosts with a valid certificate; otherwise it waits in the queue. A testing
 * policy delivers anyway. The policy is cached in the store: it outlives a restart, a
 * removed TXT record and a policy server that is gone. The policy parser is checked too.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { generate } from 'selfsigned';
import { parseStsPolicy, stsAllows, stsRecordId } from '../../src/queue/mta-sts.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { cli, createSite, freePort, startTern, tempDir, type Site, type TernServer } from '../helpers/tern.js';

describe('MTA-STS policy parsing', () => {
  it('reads a policy, LF or CRLF, first value of a repeated field, every mx line', () => {
    const policy = parseStsPolicy(
      'version: STSv1\r\nmode: enforce\nmx: mx1.example.com\r\nmx: *.example.net.\nmax_age: 86400\nmode: none\nextension: ignored\n',
    );
    assert.deepEqual(policy, { mode: 'enforce', mx: ['mx1.example.com', '*.example.net'], maxAgeSeconds: 86400 });
    assert.equal(parseStsPolicy('version: STSv1\nmode: none\nmax_age: 9999999999\n').maxAgeSeconds, 31_557_600, 'max_age is capped at a year');
  });

  it('refuses what is not a policy, with the reason', () => {
    assert.throws(() => parseStsPolicy('<html>not found</html>'), /version is not STSv1/);
    assert.throws(() => parseStsPolicy('version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n'), /mode "strict"/);
    assert.throws(() => parseStsPolicy('version: STSv1\nmode: enforce\nmax_age: 1\n'), /no mx pattern/);
    assert.throws(() => parseStsPolicy('version: STSv1\nmode: testing\nmx: a.example\n'), /max_age/);
  });

  it('matches MX hosts: exact names, and a wildcard for exactly one label', () => {
    const p = { mx: ['mail.example.com', '*.example.net'] };
    assert.ok(stsAllows(p, 'MAIL.example.com.'));
    assert.ok(stsAllows(p, 'mx1.example.net'));
    assert.ok(!stsAllows(p, 'example.net'));
    assert.ok(!stsAllows(p, 'a.b.example.net'));
    assert.ok(!stsAllows(p, 'other.example.com'));
  });

  it('reads the id of exactly one v=STSv1 record', () => {
    assert.equal(stsRecordId([['v=STSv1; id=20240101T000000;']]), '20240101T000000');
    assert.equal(stsRecordId([['v=STSv1; ', 'id=abc']]), 'abc');
    assert.equal(stsRecordId([['v=spf1 -all'], ['v=STSv1; id=one']]), 'one');
    assert.equal(stsRecordId([['v=STSv1; id=one'], ['v=STSv1; id=two']]), null, 'two records: no policy');
    assert.equal(stsRecordId([['v=STSv1; id=not-alphanumeric']]), null);
    assert.equal(stsRecordId([]), null);
  });
});

interface Trace {
  recipient: string;
  event: string;
  reply: string | null;
}

describe('MTA-STS: delivery under a policy', { timeout: 120_000 }, () => {
  let dns: TestDnsServer;
  let secureSink: SmtpSink;
  let plainSink: SmtpSink;
  let https: Server;
  let site: Site;
  let tern: TernServer;
  let submissionPort: number;
  let ternArgs: string[];
  const caFile = join(tempDir('tern-mta-sts-'), 'ca.pem');
  /** Policy bodies by domain, as the HTTPS server serves them (a missing one: 404). */
  const policies = new Map<string, string>();

  const policy = (mode: string, ...mx: string[]) => `version: STSv1\r\nmode: ${mode}\r\n${mx.map((m) => `mx: ${m}\r\n`).join('')}max_age: 86400\r\n`;
  const send = async (to: string, subject: string) => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: submissionPort,
      auth: { user: 'dora@sender.test', pass: 'password123' },
      tls: { rejectUnauthorized: false },
    });
    const info = await transport.sendMail({ from: 'dora@sender.test', to, subject, text: 'hello\n' });
    return /queued as (\S+)/.exec(info.response)![1]!;
  };
  const toPlain = () => plainSink.messages.filter((m) => m.to.some((t) => t.endsWith('@plain.test')));
  const trace = async (id: string) => JSON.parse(await cli(['queue', 'trace', id, '--json', ...site.args])) as Trace[];
  const deferral = async (id: string): Promise<string> => {
    for (const until = Date.now() + 20_000; Date.now() < until; await new Promise((r) => setTimeout(r, 200))) {
      const deferred = (await trace(id)).find((e) => e.event === 'deferred');
      if (deferred) return deferred.reply ?? '';
    }
    throw new Error(`${id} was not deferred`);
  };

  before(async () => {
    const notAfterDate = new Date(Date.now() + 86400_000);
    const ca = await generate([{ name: 'commonName', value: 'Tern test CA' }], {
      keySize: 2048,
      algorithm: 'sha256',
      notAfterDate,
      extensions: [
        { name: 'basicConstraints', cA: true, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      ],
    });
    writeFileSync(caFile, ca.cert);
    const leaf = (name: string) =>
      generate([{ name: 'commonName', value: name }], { keySize: 2048, algorithm: 'sha256', notAfterDate, ca: { key: ca.private, cert: ca.cert } });
    const mxCert = await leaf('mx.secure.test');

    const mxPort = await freePort();
    secureSink = await startSmtpSink({ host: '127.0.0.6', port: mxPort, tls: { cert: mxCert.cert, key: mxCert.private } });
    plainSink = await startSmtpSink({ host: '127.0.0.7', port: mxPort, noStartTls: true });

    // One HTTPS server for every policy host, each with its certificate (picked by SNI).
    const policyCerts = await Promise.all(
      ['secure.test', 'plain.test', 'unlisted.test', 'testing.test'].map(async (d) => [d, await leaf(`mta-sts.${d}`)] as const),
    );
    const contexts = new Map(policyCerts.map(([d, pems]) => [`mta-sts.${d}`, { cert: pems.cert, key: pems.private }]));
    https = createServer(
      {
        ...contexts.get('mta-sts.secure.test')!,
        SNICallback: (name, done) => {
          const pems = contexts.get(name);
          done(null, pems ? createSecureContext(pems) : undefined);
        },
      },
      (req, res) => {
        const body = policies.get(req.headers.host?.replace(/^mta-sts\./, '').replace(/:\d+$/, '') ?? '');
        if (req.url !== '/.well-known/mta-sts.txt' || body === undefined) res.writeHead(404).end('no policy');
        else res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(body);
      },
    );
    const httpsPort = await freePort();
    await new Promise<void>((resolve) => https.listen(httpsPort, '127.0.0.6', resolve));

    const stsDomain = (domain: string, mxHost: string, mxAddress: string) => [
      { type: 'MX' as const, name: domain, exchange: mxHost, priority: 10 },
      { type: 'A' as const, name: mxHost, address: mxAddress },
      { type: 'TXT' as const, name: `_mta-sts.${domain}`, text: 'v=STSv1; id=1;' },
      { type: 'A' as const, name: `mta-sts.${domain}`, address: '127.0.0.6' },
    ];
    dns = await startDnsServer([
      ...stsDomain('secure.test', 'mx.secure.test', '127.0.0.6'),
      ...stsDomain('plain.test', 'mx.plain.test', '127.0.0.7'),
      ...stsDomain('unlisted.test', 'mx.unlisted.test', '127.0.0.6'),
      ...stsDomain('testing.test', 'mx.testing.test', '127.0.0.7'),
    ]);
    policies.set('secure.test', policy('enforce', 'mx.secure.test'));
    policies.set('plain.test', policy('enforce', '*.plain.test'));
    policies.set('unlisted.test', policy('enforce', 'mx.elsewhere.test'));
    policies.set('testing.test', policy('testing', 'mx.elsewhere.test'));

    site = await createSite();
    await cli(['domain', 'add', 'sender.test', ...site.args]);
    await cli(['user', 'add', 'dora@sender.test', '--password-stdin', ...site.args], 'password123\n');
    submissionPort = await freePort();
    ternArgs = [
      '--submission-port',
      String(submissionPort),
      '--dns-server',
      dns.address,
      '--mx-port',
      String(mxPort),
      '--mta-sts-port',
      String(httpsPort),
      '--retry-delay',
      '1h',
      '--connect-timeout',
      '3s',
    ];
    tern = await startTern(site, ternArgs, { NODE_EXTRA_CA_CERTS: caFile });
  });

  after(async () => {
    await tern?.stop();
    https?.closeAllConnections();
    await Promise.all([secureSink?.close(), plainSink?.close(), dns?.close(), new Promise((r) => https?.close(r))]);
  });

  it('enforce: delivers over TLS with a valid certificate to a listed MX host', async () => {
    const before = secureSink.messages.length;
    await send('rcpt@secure.test', 'to a policy domain');
    const [msg] = (await secureSink.waitFor(before + 1)).slice(before);
    assert.ok(msg!.secure, 'STARTTLS');
    assert.deepEqual(msg!.to, ['rcpt@secure.test']);
  });

  it('enforce: a listed MX host without STARTTLS gets nothing; the message waits', async () => {
    const id = await send('rcpt@plain.test', 'no TLS there');
    assert.match(await deferral(id), /^451 .*(STARTTLS|TLS)/i);
    assert.deepEqual(toPlain(), []);
  });

  it('enforce: MX hosts the policy does not list get nothing', async () => {
    const before = secureSink.messages.length;
    const id = await send('rcpt@unlisted.test', 'not listed');
    assert.match(await deferral(id), /^451 4\.4\.1 MTA-STS: the policy of unlisted\.test lists none of its MX hosts/);
    assert.equal(secureSink.messages.length, before);
  });

  it('testing: delivers as without a policy (plain text, unlisted host)', async () => {
    const before = plainSink.messages.length;
    await send('rcpt@testing.test', 'testing mode');
    const [msg] = (await plainSink.waitFor(before + 1)).slice(before);
    assert.deepEqual(msg!.to, ['rcpt@testing.test']);
    // What enforce would have refused is logged.
    assert.match(tern.output(), /"host":"mx\.testing\.test".*MTA-STS: MX host not listed in the policy/);
    assert.match(tern.output(), /"tls":"no TLS".*MTA-STS \(testing\): delivering where an enforce policy would not/);
  });

  it('keeps the policy in the store: after a restart, with the TXT record and the policy gone, plain.test is still enforced', async () => {
    await tern.stop();
    dns.remove('_mta-sts.plain.test');
    policies.delete('plain.test');
    tern = await startTern(site, ternArgs, { NODE_EXTRA_CA_CERTS: caFile });
    const id = await send('other@plain.test', 'policy from the cache');
    assert.match(await deferral(id), /^451 /);
    assert.deepEqual(toPlain(), []);
  });
});
