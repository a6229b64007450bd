/**
 * DKIM, end to end: `tern domain add --dkim both` makes an RSA and an Ed25519 key, `tern
 * domain dns` prints their records (and MX, SPF, DMARC, SRV), which the test publishes in
 * its DNS server; mail that leaves is signed with both, and the signatures verify with
 * mailauth and with Debian's opendkim-testmsg. Then `tern domain dkim rotate` adds a key
 * that starts signing only once its record is published, and the old key retires.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import nodemailer from 'nodemailer';
import { startDnsServer, type DnsRecord, type TestDnsServer } from '../helpers/dns-server.js';
import { startSmtpSink, type SinkMessage, type SmtpSink } from '../helpers/smtp-sink.js';
import { cli, createSite, freePort, startTern, tempDir, type Site, type TernServer } from '../helpers/tern.js';

/** Runs a program with `input` on stdin; its exit status and output. */
function runWithInput(file: string, args: string[], input: string): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, output });
    });
    child.stdin.end(input);
  });
}

interface PrintedRecord {
  name: string;
  type: string;
  value: string;
}

interface KeyRow {
  selector: string;
  algorithm: string;
  state: string;
}

describe('DKIM signing and key rotation', { timeout: 120_000 }, () => {
  let dns: TestDnsServer;
  let sink: SmtpSink;
  let site: Site;
  let tern: TernServer;
  let submissionPort: number;

  const records = async () => JSON.parse(await cli(['domain', 'dns', 'signed.test', '--json', ...site.args])) as PrintedRecord[];
  const keys = async () => JSON.parse(await cli(['domain', 'dkim', 'list', 'signed.test', '--json', ...site.args])) as KeyRow[];
  /** Publishes the domain's DKIM records as `tern domain dns` prints them. */
  const publish = async () => {
    const txt = (await records()).filter((r) => r.name.includes('._domainkey.'));
    dns.set(txt.map((r): DnsRecord => ({ type: 'TXT', name: r.name, text: r.value })));
  };
  const send = async (subject: string, o: { text?: string; to?: string[] } = {}): Promise<SinkMessage> => {
    const to = o.to ?? ['reader@far.test'];
    const before = sink.messages.length;
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: submissionPort,
      auth: { user: 'carol@signed.test', pass: 'password123' },
      tls: { rejectUnauthorized: false },
    });
    await transport.sendMail({ from: 'Carol <carol@signed.test>', to, subject, text: o.text ?? `signed body for ${subject}\n` });
    return (await sink.waitFor(before + to.length)).at(-1)!;
  };
  const verify = async (message: Buffer) => {
    const resolver = new Resolver();
    resolver.setServers([dns.address]);
    const result = await dkimVerify(message, { resolver: (name: string, type: string) => resolver.resolve(name, type) as Promise<string[][]> });
    // The fourth field (mailauth's comment, e.g. "bad signature") says why a signature did not pass.
    return result.results.map((r) => [r.signingDomain, r.selector, r.status.result, (r.status as { comment?: string }).comment ?? '']);
  };
  const selectorsOf = (m: SinkMessage) => [...m.data.toString().matchAll(/^DKIM-Signature:[^]*?\bs=([^;\s]+)/gm)].map((x) => x[1]);

  before(async () => {
    const mxPort = await freePort();
    sink = await startSmtpSink({ host: '127.0.0.5', port: mxPort });
    dns = await startDnsServer([
      { type: 'MX', name: 'far.test', exchange: 'mx.far.test', priority: 10 },
      { type: 'A', name: 'mx.far.test', address: '127.0.0.5' },
      { type: 'MX', name: 'near.test', exchange: 'mx.far.test', priority: 10 },
    ]);
    site = await createSite();
    await cli(['domain', 'add', 'signed.test', '--dkim', 'both', ...site.args]);
    await cli(['user', 'add', 'carol@signed.test', '--password-stdin', ...site.args], 'password123\n');
    submissionPort = await freePort();
    tern = await startTern(site, [
      '--submission-port',
      String(submissionPort),
      '--dns-server',
      dns.address,
      '--mx-port',
      String(mxPort),
      '--dkim-check-interval',
      '1s',
    ]);
  });
  after(async () => {
    await tern?.stop();
    await Promise.all([sink?.close(), dns?.close()]);
  });

  it('prints the records to publish', async () => {
    const printed = await records();
    const byType = (type: string) => printed.filter((r) => r.type === type);
    assert.deepEqual(byType('MX'), [{ name: 'signed.test', type: 'MX', value: '10 mx.example.test.' }]);
    assert.ok(byType('TXT').some((r) => r.name === 'signed.test' && r.value.startsWith('v=spf1 ')));
    assert.ok(byType('TXT').some((r) => r.name === '_dmarc.signed.test' && r.value.startsWith('v=DMARC1; ')));
    const dkim = byType('TXT').filter((r) => r.name.endsWith('._domainkey.signed.test'));
    assert.deepEqual(dkim.map((r) => /k=(\w+)/.exec(r.value)![1]).sort(), ['ed25519', 'rsa']);
    assert.deepEqual(
      byType('SRV').map((r) => r.name.split('.')[0]),
      ['_submission', '_submissions', '_imap', '_imaps', '_pop3', '_pop3s'],
    );
    const zone = await cli(['domain', 'dns', 'signed.test', ...site.args]);
    assert.match(zone, /^signed\.test\.\s+MX\s+10 mx\.example\.test\.$/m);
    assert.match(
      zone,
      /\._domainkey\.signed\.test\.\s+TXT\s+"v=DKIM1; k=rsa; p=[A-Za-z0-9+/]{200,}" "[A-Za-z0-9+/=]+"/,
      'long records are split in quoted strings',
    );
  });

  it('signs with both keys, and the signatures verify with mailauth and opendkim', async () => {
    await publish();
    const message = await send('signed twice');
    assert.equal(selectorsOf(message).length, 2);
    const results = await verify(message.data);
    assert.deepEqual(
      results.map((r) => r[2]),
      ['pass', 'pass'],
      `${JSON.stringify(results)}\n${message.data.toString().split('\r\n\r\n')[0]}`,
    );
    assert.ok(results.every((r) => r[0] === 'signed.test'));

    // opendkim looks keys up with the C library's resolver: give it this test's DNS server
    // through /etc/resolv.conf in a mount namespace of its own (root only; nothing outside changes).
    if (process.getuid?.() !== 0 || !existsSync('/usr/sbin/opendkim-testmsg')) return;
    const port53 = await startDnsServer([], { port: 53, host: '127.53.0.1' });
    try {
      port53.set((await records()).filter((r) => r.name.includes('._domainkey.')).map((r): DnsRecord => ({ type: 'TXT', name: r.name, text: r.value })));
      const dir = tempDir('tern-opendkim-');
      const resolvConf = join(dir, 'resolv.conf');
      writeFileSync(resolvConf, 'nameserver 127.53.0.1\noptions timeout:2 attempts:1\n');
      // opendkim 2.11 verifies RSA; the Ed25519 signature is checked by mailauth above.
      const rsaOnly = message.data.toString().replace(/^DKIM-Signature:(?:(?!\r\n[^ \t])[^])*?a=ed25519-sha256[^]*?\r\n(?=[^ \t])/m, '');
      // Asynchronously: the DNS server answering it runs in this process.
      const run = await runWithInput('unshare', ['-m', 'sh', '-c', `mount --bind ${resolvConf} /etc/resolv.conf && exec /usr/sbin/opendkim-testmsg`], rsaOnly);
      assert.equal(run.status, 0, `opendkim-testmsg: ${run.output}`);
      assert.deepEqual(port53.queries.filter((q) => q.startsWith('TXT ')).length > 0, true, 'opendkim asked this DNS server');
    } finally {
      await port53.close();
    }
  });

  it('signs a message once when it is queued, whatever its size and however many destinations it has', async () => {
    // 300 KB is staged in chunks while it arrives and signed on the signing thread; 1.5 MB streams through mailauth.
    for (const size of [300_000, 1_500_000]) {
      const line = 'a line of a large signed message, long enough to fold nothing\n';
      const text = line.repeat(Math.ceil(size / line.length));
      const before = sink.messages.length;
      await send(`large ${size}`, { text, to: ['reader@far.test', 'reader@near.test'] });
      const copies = sink.messages.slice(before);
      assert.deepEqual(
        copies
          .map((m) => m.to)
          .flat()
          .sort(),
        ['reader@far.test', 'reader@near.test'],
      );
      const signatures = copies.map((m) => [...m.data.toString().matchAll(/^DKIM-Signature:(?:.*\r\n)(?:[ \t].*\r\n)*/gm)].map((x) => x[0]).join(''));
      assert.equal(signatures[0], signatures[1], 'both destinations carry the signatures made once, at acceptance');
      for (const copy of copies)
        assert.deepEqual(
          (await verify(copy.data)).map((r) => r[2]),
          ['pass', 'pass'],
          `${size} bytes`,
        );
    }
  });

  it('rotates: the new key signs once its record is published, and the old one retires', async () => {
    const out = await cli(['domain', 'dkim', 'rotate', 'signed.test', ...site.args]);
    const selector = /new DKIM selector (\S+) for signed\.test/.exec(out)![1]!;
    assert.match(out, new RegExp(`^${selector}\\._domainkey\\.signed\\.test\\. TXT "v=DKIM1; k=rsa; p=`, 'm'));
    const oldRsa = (await keys()).find((k) => k.algorithm === 'rsa' && k.state === 'active')!.selector;
    assert.equal((await keys()).find((k) => k.selector === selector)!.state, 'pending');

    // Not published yet: still the old key (several checks have run meanwhile).
    await new Promise((r) => setTimeout(r, 2500));
    assert.ok(selectorsOf(await send('before the record')).includes(oldRsa));

    await publish();
    const deadline = Date.now() + 20_000;
    while ((await keys()).find((k) => k.selector === selector)!.state !== 'active') {
      assert.ok(Date.now() < deadline, 'the published key becomes active');
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.equal((await keys()).find((k) => k.selector === oldRsa)!.state, 'retiring');
    // The signer's key cache lasts a minute, but a rotation clears it.
    const message = await send('after the record');
    assert.ok(selectorsOf(message).includes(selector), `signed with ${selector}: ${selectorsOf(message).join(', ')}`);
    assert.ok(!selectorsOf(message).includes(oldRsa));
    assert.deepEqual(
      (await verify(message.data)).map((r) => r[2]),
      ['pass', 'pass'],
    );
  });
});
