/**
 * ACME against Debian's pebble, the test CA of Let's Encrypt, on loopback: `tern serve
 * --acme-directory` orders a certificate for its host name, answers the HTTP-01 challenge
 * on its http port (pebble resolves the name through the test's DNS server), installs the
 * certificate and serves it on its TLS ports without a restart; a restart keeps it.
 * `certificateDue` decides what gets renewed. Skipped, with the reason, when pebble is not
 * installed (the test runner installs it as root).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { generate } from 'selfsigned';
import { certificateDue, RENEW_BEFORE_MS } from '../../src/config/acme.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { createSite, freePort, startTern, tempDir, type Site, type TernServer } from '../helpers/tern.js';

const PEBBLE = '/usr/bin/pebble';
const HOST = 'mx.example.test';

/** The certificate a TLS port serves. */
function servedCertificate(port: number): Promise<{ issuer: string; names: string; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: HOST, rejectUnauthorized: false }, () => {
      const c = socket.getPeerCertificate();
      socket.destroy();
      resolve({ issuer: String(c.issuer.CN), names: c.subjectaltname ?? '', fingerprint: c.fingerprint256 });
    });
    socket.on('error', reject);
  });
}

describe('ACME certificates (pebble)', { timeout: 120_000, skip: existsSync(PEBBLE) ? false : 'pebble is not installed (apt-get install pebble)' }, () => {
  let dns: TestDnsServer;
  let pebble: ChildProcess;
  let site: Site;
  let tern: TernServer;
  let args: string[];
  let caFile: string;
  let imapsPort: number;
  let pebbleOut = '';

  before(async () => {
    dns = await startDnsServer([{ type: 'A', name: HOST, address: '127.0.0.1' }]);
    const dir = tempDir('tern-pebble-');
    // Pebble's own HTTPS listener needs a certificate that Tern trusts (through NODE_EXTRA_CA_CERTS).
    const notAfterDate = new Date(Date.now() + 86400_000);
    const ca = await generate([{ name: 'commonName', value: 'Tern test CA for pebble' }], {
      keySize: 2048,
      algorithm: 'sha256',
      notAfterDate,
      extensions: [
        { name: 'basicConstraints', cA: true, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      ],
    });
    const leaf = await generate([{ name: 'commonName', value: 'localhost' }], {
      keySize: 2048,
      algorithm: 'sha256',
      notAfterDate,
      ca: { key: ca.private, cert: ca.cert },
      extensions: [
        {
          name: 'subjectAltName',
          altNames: [
            { type: 2, value: 'localhost' },
            { type: 7, ip: '127.0.0.1' },
          ],
        },
      ],
    });
    caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, ca.cert);
    writeFileSync(join(dir, 'cert.pem'), leaf.cert);
    writeFileSync(join(dir, 'key.pem'), leaf.private);
    const [acmePort, managementPort, httpPort, tlsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    imapsPort = await freePort();
    writeFileSync(
      join(dir, 'pebble.json'),
      JSON.stringify({
        pebble: {
          listenAddress: `127.0.0.1:${acmePort}`,
          managementListenAddress: `127.0.0.1:${managementPort}`,
          certificate: join(dir, 'cert.pem'),
          privateKey: join(dir, 'key.pem'),
          httpPort,
          tlsPort,
          ocspResponderURL: '',
          externalAccountBindingRequired: false,
        },
      }),
    );
    pebble = spawn(PEBBLE, ['-config', join(dir, 'pebble.json'), '-dnsserver', dns.address], {
      env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    pebble.stdout!.on('data', (d: Buffer) => (pebbleOut += d.toString()));
    pebble.stderr!.on('data', (d: Buffer) => (pebbleOut += d.toString()));
    const deadline = Date.now() + 20_000;
    while (!/Listening on/.test(pebbleOut)) {
      assert.ok(Date.now() < deadline && pebble.exitCode === null, `pebble did not start:\n${pebbleOut}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    site = await createSite();
    args = [
      '--http-port',
      String(httpPort),
      '--imaps-port',
      String(imapsPort),
      '--acme-directory',
      `https://127.0.0.1:${acmePort}/dir`,
      '--acme-email',
      'admin@example.test',
    ];
    tern = await startTern(site, args, { NODE_EXTRA_CA_CERTS: caFile });
  });
  after(async () => {
    await tern?.stop();
    pebble?.kill();
    await dns?.close();
  });

  it('orders a certificate over HTTP-01 and serves it on the TLS ports at once', async () => {
    let served = await servedCertificate(imapsPort);
    const deadline = Date.now() + 60_000;
    while (!/Pebble Intermediate CA/.test(served.issuer)) {
      assert.ok(Date.now() < deadline, `no certificate from pebble; still served by ${served.issuer}\n${tern.output()}\n${pebbleOut.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 250));
      served = await servedCertificate(imapsPort);
    }
    assert.match(served.names, new RegExp(`DNS:${HOST.replace(/\./g, '\\.')}`));
    const onDisk = new X509Certificate(readFileSync(join(site.dataDir, 'tls', 'cert.pem')));
    assert.equal(onDisk.fingerprint256, served.fingerprint);
    assert.equal(certificateDue(onDisk.toString(), [HOST]), null, 'nothing left to renew');
  });

  it('keeps a valid certificate across a restart', async () => {
    const before = readFileSync(join(site.dataDir, 'tls', 'cert.pem'), 'utf8');
    await tern.stop();
    tern = await startTern(site, args, { NODE_EXTRA_CA_CERTS: caFile });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(readFileSync(join(site.dataDir, 'tls', 'cert.pem'), 'utf8'), before);
    assert.match((await servedCertificate(imapsPort)).issuer, /Pebble Intermediate CA/);
  });

  it('renews a certificate that is self-signed, expiring, or for another name', async () => {
    const ca = await generate([{ name: 'commonName', value: 'Some CA' }], {
      keySize: 2048,
      notAfterDate: new Date(Date.now() + 365 * 86400_000),
      extensions: [{ name: 'basicConstraints', cA: true, critical: true }],
    });
    const signed = (days: number, name: string) =>
      generate([{ name: 'commonName', value: name }], {
        keySize: 2048,
        notAfterDate: new Date(Date.now() + days * 86400_000),
        ca: { key: ca.private, cert: ca.cert },
        extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: name }] }],
      });
    assert.equal(certificateDue(null, [HOST]), 'no certificate');
    assert.equal(certificateDue(ca.cert, [HOST]), 'the certificate is self-signed');
    assert.match(certificateDue((await signed(RENEW_BEFORE_MS / 86400_000 / 2, HOST)).cert, [HOST])!, /^the certificate expires /);
    assert.equal(certificateDue((await signed(80, 'other.test')).cert, [HOST]), `the certificate does not name ${HOST}`);
    assert.equal(certificateDue((await signed(80, HOST)).cert, [HOST]), null);
  });
});
