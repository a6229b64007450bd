/**
 * Durability under failure: 20 concurrent nodemailer clients send 2,000 messages; the
 * server is SIGKILLed mid-run and restarted. Every message that got a 250 must be stored
 * exactly once and the store must pass its integrity check, on SQLite and PostgreSQL.
 * Then PostgreSQL itself is stopped mid-run: clients get 451, and delivery resumes by
 * itself when it is back, with no 250 for anything not committed.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { openStore } from '../../src/store/open.js';
import { freshPgDatabase, pgSkipReason, type TestDatabase } from '../helpers/pg.js';
import { createSite, startTern, type Site, type TernServer } from '../helpers/tern.js';

const CLIENTS = 20;
const MESSAGES = 2000;

interface Outcome {
  acked: Set<number>;
  failed: Map<number, number | undefined>; // seq → SMTP code (undefined: connection error)
}

/** Sends MESSAGES messages over CLIENTS concurrent clients, one connection per message. */
async function sendAll(port: () => number, onSent: (acked: number) => void, pauseWhenFailing = 50): Promise<Outcome> {
  const outcome: Outcome = { acked: new Set(), failed: new Map() };
  let next = 0;
  const worker = async () => {
    for (;;) {
      const seq = next++;
      if (seq >= MESSAGES) return;
      const transport = nodemailer.createTransport({ host: '127.0.0.1', port: port(), ignoreTLS: true, connectionTimeout: 5000, socketTimeout: 20_000 });
      try {
        await transport.sendMail({
          envelope: { from: 'sender@remote.test', to: seq % 2 ? 'alice@example.test' : 'bob@example.test' },
          raw: `From: sender@remote.test\r\nTo: someone@example.test\r\nSubject: crash ${seq}\r\nX-Seq: ${seq}\r\n\r\n${'body line\r\n'.repeat(40)}`,
        });
        outcome.acked.add(seq);
        onSent(outcome.acked.size);
      } catch (err) {
        outcome.failed.set(seq, (err as { responseCode?: number }).responseCode);
        await new Promise((r) => setTimeout(r, pauseWhenFailing));
      } finally {
        transport.close();
      }
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, worker));
  return outcome;
}

/** seq → number of stored copies, read straight from the store. */
async function storedCopies(site: Site, db?: string): Promise<{ copies: Map<number, number>; problems: string[] }> {
  const store = await openStore({ dataDir: site.dataDir, dbUrl: db });
  try {
    const copies = new Map<number, number>();
    for (const address of ['alice@example.test', 'bob@example.test']) {
      for (const m of await store.listMessages(address)) {
        const blob = await store.readBlob(m.hash);
        const seq = Number(/^X-Seq: (\d+)/m.exec(blob!.toString('latin1'))![1]);
        copies.set(seq, (copies.get(seq) ?? 0) + 1);
      }
    }
    return { copies, problems: await store.checkIntegrity() };
  } finally {
    await store.close();
  }
}

function assertExactlyOnce(outcome: Outcome, copies: Map<number, number>): void {
  for (const seq of outcome.acked) assert.equal(copies.get(seq), 1, `acknowledged message ${seq} stored ${copies.get(seq) ?? 0} times`);
  for (const [seq, n] of copies) assert.ok(n === 1, `message ${seq} stored ${n} times`);
  for (const seq of copies.keys()) assert.ok(outcome.acked.has(seq) || outcome.failed.has(seq), `stored message ${seq} was never sent`);
}

async function killAndRestartRun(db?: string): Promise<string> {
  const site = await createSite({ db });
  let server: TernServer = await startTern(site);
  let port = server.smtpPort;
  let killed = false;
  let restarting: Promise<void> | undefined;
  const outcome = await sendAll(
    () => port,
    (acked) => {
      if (acked >= MESSAGES / 4 && !killed) {
        killed = true;
        server.proc.kill('SIGKILL');
        restarting = server.exited.then(async () => {
          server = await startTern(site);
          port = server.smtpPort;
        });
      }
    },
  );
  await restarting;
  assert.equal(await server.stop(), 0, 'clean exit after SIGTERM');
  assert.ok(killed, 'the server was killed mid-run');
  assert.ok(outcome.acked.size > MESSAGES / 2, `most messages were acknowledged (${outcome.acked.size})`);
  const { copies, problems } = await storedCopies(site, db);
  assert.deepEqual(problems, []);
  assertExactlyOnce(outcome, copies);
  return `${outcome.acked.size} acknowledged, ${outcome.failed.size} failed around the kill, ${copies.size} stored`;
}

function pgCluster(action: 'start' | 'stop'): void {
  const version = readdirSync('/etc/postgresql')[0]!;
  execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', action, ...(action === 'stop' ? ['-m', 'fast'] : [])], { stdio: 'inherit' });
}

describe('crash safety', () => {
  it('SQLite: SIGKILL mid-run loses no acknowledged message and duplicates none', async (t) => {
    t.diagnostic(await killAndRestartRun());
  });

  describe('PostgreSQL', () => {
    const databases: TestDatabase[] = [];
    let skip: string | undefined;
    const fresh = async () => {
      const db = await freshPgDatabase();
      databases.push(db);
      return db.url;
    };
    before(async () => {
      skip = await pgSkipReason();
    });
    after(async () => {
      for (const db of databases) await db.drop();
    });

    it('SIGKILL mid-run loses no acknowledged message and duplicates none', async (t) => {
      if (skip) return t.skip(skip);
      t.diagnostic(await killAndRestartRun(await fresh()));
    });

    it('PostgreSQL stopped mid-run: clients get 451, delivery resumes by itself', async (t) => {
      if (skip) return t.skip(skip);
      const url = await fresh();
      const site = await createSite({ db: url });
      const server = await startTern(site);
      let stopped = false;
      let restarted: Promise<void> | undefined;
      try {
        const outcome = await sendAll(
          () => server.smtpPort,
          (acked) => {
            if (acked >= MESSAGES / 4 && !stopped) {
              stopped = true;
              pgCluster('stop');
              restarted = new Promise((r) => setTimeout(r, 2000)).then(() => pgCluster('start'));
            }
          },
          200,
        );
        await restarted;
        const codes = [...outcome.failed.values()];
        assert.ok(codes.length > 0, 'some messages failed while PostgreSQL was down');
        assert.ok(codes.every((c) => c === 451), `every failure was a 451 (got ${[...new Set(codes)].join(', ')})`);
        const lastAcked = Math.max(...outcome.acked);
        const lastFailed = Math.max(...outcome.failed.keys());
        assert.ok(lastAcked > lastFailed, 'delivery resumed after PostgreSQL came back');
        assert.equal(await server.stop(), 0);
        const { copies, problems } = await storedCopies(site, url);
        assert.deepEqual(problems, []);
        assertExactlyOnce(outcome, copies);
        t.diagnostic(`${outcome.acked.size} acknowledged, ${codes.length} got 451, ${copies.size} stored`);
      } finally {
        if (stopped) {
          await restarted?.catch(() => undefined);
          try {
            execFileSync('pg_isready', ['-h', '127.0.0.1', '-t', '10']);
          } catch {
            pgCluster('start');
          }
        }
        await server.stop();
      }
    });
  });
});
