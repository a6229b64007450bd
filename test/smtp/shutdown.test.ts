/**
 * Process signals of `tern serve`: SIGTERM drains (no new connections, the open DATA
 * finishes and gets its 250, idle sessions get 421, exit code 0, the message is stored)
 * and SIGHUP reloads the TLS certificate for new STARTTLS connections (a broken one is
 * refused and the previous certificate kept).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';
import { generate } from 'selfsigned';
import { serveForSuite, status, tempDir } from '../helpers/tern.js';
import { openSession, RawSmtp } from '../helpers/raw-smtp.js';
import { storedMessages, waitFor, within } from './support.js';

/** Resolves true when a TCP connection to the port is refused, false when it is accepted. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

/** A STARTTLS connection: returns the certificate the server presented, and the TLS socket. */
async function startTls(port: number): Promise<{ cert: PeerCertificate; secure: TLSSocket }> {
  const c = await openSession(port);
  const r = await c.command('STARTTLS');
  assert.equal(r.text, '220 2.0.0 Ready to start TLS');
  c.socket.removeAllListeners('data');
  const secure = tlsConnect({ socket: c.socket, rejectUnauthorized: false, servername: 'mx.example.test' });
  await new Promise<void>((res, rej) => {
    secure.once('secureConnect', res);
    secure.once('error', rej);
  });
  return { cert: secure.getPeerCertificate(), secure };
}

/** Sends one command over an established TLS socket and returns the reply text. */
async function tlsCommand(secure: TLSSocket, line: string): Promise<string> {
  let text = '';
  const onData = (d: Buffer) => (text += d.toString('latin1'));
  secure.on('data', onData);
  secure.write(`${line}\r\n`);
  try {
    await waitFor(() => /(^|\r\n)\d{3} [^\r]*\r\n$/.test(text), `reply to ${line}`, 5000);
  } finally {
    secure.off('data', onData);
  }
  return text;
}

/** A new self-signed key pair for `cn`: openssl when installed, else the selfsigned package. */
async function newCertificate(dir: string, cn: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  if (existsSync('/usr/bin/openssl')) {
    execFileSync('/usr/bin/openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-days', '1', '-keyout', key, '-out', cert], {
      stdio: 'ignore',
    });
  } else {
    const pems = await generate([{ name: 'commonName', value: cn }], { keySize: 2048, algorithm: 'sha256' });
    writeFileSync(key, pems.private);
    writeFileSync(cert, pems.cert);
  }
  return { cert, key };
}

describe('SIGTERM drains', () => {
  const suite = serveForSuite({ stopSignal: 'SIGKILL' });

  it('lets the client in DATA finish with 250, refuses new connections, exits 0 and keeps the message', async () => {
    const before = await status(suite.site);
    const inflight = await openSession(suite.tern.smtpPort);
    const idle = await openSession(suite.tern.smtpPort);
    try {
      assert.equal((await inflight.command('MAIL FROM:<sender@remote.test>')).code, 250);
      assert.equal((await inflight.command('RCPT TO:<alice@example.test>')).code, 250);
      assert.equal((await inflight.command('DATA')).code, 354);
      inflight.send('Subject: in flight at SIGTERM\r\n\r\nfirst half of the body\r\n');

      suite.tern.proc.kill('SIGTERM');

      // A session with no open transaction is told right away and closed.
      assert.equal((await idle.read()).text, '421 4.3.2 Service shutting down, try again later');
      await idle.waitClosed(5000);
      // The listener no longer accepts connections.
      await waitFor(() => refused(suite.tern.smtpPort), 'SMTP port refuses new connections', 5000);
      assert.ok(await refused(suite.tern.lmtpPort), 'LMTP port refuses new connections');
      assert.equal(suite.tern.proc.exitCode, null, 'still running while a transaction is open');

      inflight.send('second half of the body\r\n.\r\n');
      const done = await inflight.read();
      assert.match(done.text, /^250 2\.0\.0 OK: queued as [0-9A-Z]+$/);
      const id = /queued as (\S+)/.exec(done.text)![1];

      const code = await within(suite.tern.exited, 10_000);
      assert.equal(code, 0, `exit code; output:\n${suite.tern.output()}`);

      const after = await status(suite.site);
      assert.equal(after.messages, before.messages + 1);
      const [m] = (await storedMessages(suite.site, 'alice@example.test')).filter((x) => x.ternId === id);
      assert.ok(m, 'the message accepted during the drain is stored');
      assert.match(m.blob, /\r\n\r\nfirst half of the body\r\nsecond half of the body\r\n$/);
    } finally {
      inflight.close();
      idle.close();
    }
  });
});

describe('SIGHUP reloads the TLS certificate', () => {
  const suite = serveForSuite({ stopSignal: 'SIGKILL' });
  let work: string;

  before(() => {
    work = tempDir('tern-cert-');
  });

  it('serves the new certificate to new STARTTLS connections; old sessions keep working', async () => {
    const first = await startTls(suite.tern.smtpPort);
    try {
      assert.equal(first.cert.subject.CN, 'mx.example.test');

      const fresh = await newCertificate(work, 'reloaded.test');
      copyFileSync(fresh.key, join(suite.site.dataDir, 'tls', 'key.pem'));
      copyFileSync(fresh.cert, join(suite.site.dataDir, 'tls', 'cert.pem'));
      suite.tern.proc.kill('SIGHUP');

      let cn = '';
      await waitFor(
        async () => {
          const probe = await startTls(suite.tern.smtpPort);
          cn = String(probe.cert.subject.CN);
          probe.secure.destroy();
          return cn === 'reloaded.test';
        },
        `new certificate served (last CN ${cn})`,
        5000,
      );
      assert.equal(suite.tern.proc.exitCode, null, 'SIGHUP does not stop the server');

      // The session started before the reload still works on its own certificate.
      assert.match(await tlsCommand(first.secure, 'EHLO client.test'), /^250-mx\.example\.test/);
      assert.match(await tlsCommand(first.secure, 'NOOP'), /^250 2\.0\.0 OK/);
    } finally {
      first.secure.destroy();
    }
  });

  it('keeps the current certificate when the new files are broken', async () => {
    writeFileSync(join(suite.site.dataDir, 'tls', 'key.pem'), 'not a key\n');
    suite.tern.proc.kill('SIGHUP');
    await waitFor(() => /TLS reload failed/.test(suite.tern.output()), 'the failed reload is logged', 5000);
    assert.equal(suite.tern.proc.exitCode, null);
    const probe = await startTls(suite.tern.smtpPort);
    try {
      assert.equal(probe.cert.subject.CN, 'reloaded.test');
    } finally {
      probe.secure.destroy();
    }
    // Plain SMTP is unaffected.
    const c = await RawSmtp.connect(suite.tern.smtpPort);
    try {
      assert.equal((await c.read()).code, 220);
    } finally {
      c.close();
    }
  });

  it('exits 0 on SIGTERM when idle', async () => {
    const started = Date.now();
    const code = await within(suite.tern.stop('SIGTERM'), 10_000);
    assert.equal(code, 0, suite.tern.output());
    assert.ok(Date.now() - started < 5000, 'an idle server stops promptly');
  });
});
