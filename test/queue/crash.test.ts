/**
 * The queue survives a crash: 1,000 messages are queued for a remote domain, the server
 * delivering them is SIGKILLed part-way, and a restarted server (whose worker takes the
 * dead one's entries once their leases expire) delivers the rest. Every message must
 * arrive at least once, the queue must end empty, and the store must pass its integrity
 * check.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { openStore } from '../../src/store/open.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { createSite, freePort, startTern, type Site, type TernServer } from '../helpers/tern.js';

const MESSAGES = 1000;

describe('queue: SIGKILL during delivery of 1,000 queued messages', { timeout: 240_000 }, () => {
  let dns: TestDnsServer;
  let sink: SmtpSink;
  let site: Site;
  let tern: TernServer | undefined;
  let mxPort: number;

  const serve = async (roles: string, extra: string[] = []) => {
    const submission = await freePort();
    const server = await startTern(site, [
      '--roles',
      roles,
      '--submission-port',
      String(submission),
      '--dns-server',
      dns.address,
      '--mx-port',
      String(mxPort),
      '--queue-lease',
      '3s',
      '--retry-delay',
      '1s',
      '--retry-max',
      '1s',
      ...extra,
    ]);
    return { server, submission };
  };

  before(async () => {
    mxPort = await freePort();
    sink = await startSmtpSink({ host: '127.0.0.4', port: mxPort });
    dns = await startDnsServer([
      { type: 'MX', name: 'far.test', exchange: 'mx.far.test', priority: 10 },
      { type: 'A', name: 'mx.far.test', address: '127.0.0.4' },
    ]);
    site = await createSite();
  });
  after(async () => {
    await tern?.stop('SIGKILL');
    await Promise.all([sink?.close(), dns?.close()]);
  });

  it('delivers every message at least once and loses none', async () => {
    // Queue them with no worker running (submission only), over a few connections at once.
    const first = await serve('submission');
    tern = first.server;
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: first.submission,
      pool: true,
      maxConnections: 8,
      maxMessages: Infinity,
      auth: { user: 'alice@example.test', pass: 'password123' },
      tls: { rejectUnauthorized: false },
    });
    const sends: Array<Promise<unknown>> = [];
    for (let i = 0; i < MESSAGES; i++) {
      sends.push(transport.sendMail({ from: 'alice@example.test', to: `user${i % 50}@far.test`, subject: `queued ${i}`, text: `message ${i}\n` }));
    }
    await Promise.all(sends);
    transport.close();
    await tern.stop();

    // The worker starts delivering; it is killed part-way.
    tern = (await serve('queue')).server;
    await sink.waitFor(150, 60_000);
    await tern.stop('SIGKILL');
    const atKill = sink.messages.length;
    assert.ok(atKill < MESSAGES, `the kill came before the end (${atKill} delivered)`);

    // A new worker takes over, the dead one's leased entries included once their leases run out.
    tern = (await serve('queue')).server;
    await sink.waitFor(MESSAGES, 120_000);
    const until = Date.now() + 60_000;
    const store = await openStore({ dataDir: site.dataDir });
    try {
      while ((await store.queue.list({}, { limit: 1 })).length > 0) {
        assert.ok(Date.now() < until, 'the queue drains');
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.deepEqual(await store.checkIntegrity(), []);
    } finally {
      await store.close();
    }
    await tern.stop();
    tern = undefined;

    const seen = new Map<number, number>();
    for (const m of sink.messages) {
      const n = Number(/Subject: queued (\d+)\r\n/.exec(m.data.toString())?.[1]);
      seen.set(n, (seen.get(n) ?? 0) + 1);
    }
    const missing = Array.from({ length: MESSAGES }, (_, i) => i).filter((i) => !seen.has(i));
    assert.deepEqual(missing, [], 'every message arrived');
    const duplicates = [...seen.values()].filter((n) => n > 1).length;
    // At least once: only messages in flight at the kill may arrive twice.
    assert.ok(duplicates <= 100, `${duplicates} duplicates, from the attempts the kill cut short`);
  });
});
