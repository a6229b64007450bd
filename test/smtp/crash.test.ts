/**
 * Durability under failure, on SQLite and PostgreSQL: 20 concurrent SMTP clients send
 * 2,000 messages, one connection each, and retry, like real senders, every message that
 * got a 4xx or no answer at all. The server is SIGKILLed mid-run while transactions are
 * in flight, and restarted. Then PostgreSQL itself (a throwaway cluster of this test's
 * own) is stopped mid-run: clients get 451, and delivery resumes by itself.
 *
 * Every attempt's outcome is recorded per message, so the checks are exact: a message
 * that got a 250 is stored; it is stored more than once only when an earlier attempt
 * sent the final dot and got no reply (committed without a 250: the duplicate SMTP
 * cannot rule out), and never more often than such attempts allow. A 4xx for a message
 * that was in fact stored shows up as a duplicate and fails the test.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freshPgDatabase, pgSkipReason, type TestDatabase } from '../helpers/pg.js';
import { startPgCluster } from '../helpers/pg-cluster.js';
import { RawSmtp } from '../helpers/raw-smtp.js';
import { createSite, startTern, type TernServer } from '../helpers/tern.js';
import { storedSeqCopies } from './support.js';

const CLIENTS = 20;
const MESSAGES = 2000;
/** A message still not acknowledged after this long is given up (and fails the test). */
const GIVE_UP_MS = 60_000;

/**
 * One delivery attempt's outcome. `no-reply`: the final dot was sent and the connection
 * dropped (or went silent) before a reply, so the message may or may not be stored.
 * `dropped`: the connection dropped earlier, so this attempt cannot have stored anything.
 */
type Attempt = { kind: 'acked' } | { kind: 'reply'; code: number } | { kind: 'refused' } | { kind: 'dropped' } | { kind: 'no-reply' };

interface Run {
  attempts: Map<number, Attempt[]>;
  acked: Set<number>;
}

interface Hooks {
  /** Called after each 250. */
  onAck?: (acked: number) => void;
  /** Called when a client has sent a final dot; `waiting` is how many clients now await that reply. */
  onAwaitingReply?: (waiting: number, acked: number) => void;
}

function messageFor(seq: number): { to: string; data: string } {
  const to = seq % 2 ? 'alice@example.test' : 'bob@example.test';
  const data = `From: sender@remote.test\r\nTo: ${to}\r\nSubject: crash ${seq}\r\nX-Seq: ${seq}\r\n\r\n${'body line\r\n'.repeat(40)}.\r\n`;
  return { to, data };
}

/** One SMTP transaction for `seq` on a fresh connection. */
async function attemptDelivery(port: number, seq: number, awaiting: { count: number }, hooks: Hooks, acked: () => number): Promise<Attempt> {
  let client: RawSmtp;
  try {
    client = await RawSmtp.connect(port);
  } catch {
    return { kind: 'refused' };
  }
  const { to, data } = messageFor(seq);
  let dotSent = false;
  try {
    const greeting = await client.read();
    if (greeting.code !== 220) return { kind: 'reply', code: greeting.code };
    for (const [command, expected] of [
      ['EHLO client.test', 250],
      ['MAIL FROM:<sender@remote.test>', 250],
      [`RCPT TO:<${to}>`, 250],
      ['DATA', 354],
    ] as const) {
      const reply = await client.command(command);
      if (reply.code !== expected) return { kind: 'reply', code: reply.code };
    }
    client.send(data);
    dotSent = true;
    awaiting.count++;
    hooks.onAwaitingReply?.(awaiting.count, acked());
    const reply = await client.read(30_000).finally(() => awaiting.count--);
    client.send('QUIT\r\n');
    return reply.code === 250 ? { kind: 'acked' } : { kind: 'reply', code: reply.code };
  } catch {
    return { kind: dotSent ? 'no-reply' : 'dropped' };
  } finally {
    client.close();
  }
}

/** Sends MESSAGES messages over CLIENTS concurrent clients, retrying each until it gets a 250. */
async function sendAll(port: () => number, hooks: Hooks, pauseAfterFailure = 50): Promise<Run> {
  const run: Run = { attempts: new Map(), acked: new Set() };
  const awaiting = { count: 0 };
  let next = 0;
  const worker = async () => {
    for (;;) {
      const seq = next++;
      if (seq >= MESSAGES) return;
      const attempts: Attempt[] = [];
      run.attempts.set(seq, attempts);
      const giveUpAt = Date.now() + GIVE_UP_MS;
      while (Date.now() < giveUpAt) {
        const attempt = await attemptDelivery(port(), seq, awaiting, hooks, () => run.acked.size);
        attempts.push(attempt);
        if (attempt.kind === 'acked') {
          run.acked.add(seq);
          hooks.onAck?.(run.acked.size);
          break;
        }
        if (attempt.kind === 'reply' && attempt.code >= 500) break; // permanent: a sender would not retry
        await new Promise((r) => setTimeout(r, pauseAfterFailure));
      }
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, worker));
  return run;
}

interface Tally {
  attempts: number;
  noReply: number;
  dropped: number;
  refused: number;
  replies: Map<number, number>;
  duplicates: number;
}

/**
 * The exact rule: every message got a 250 in the end and is stored; its copies never
 * exceed 1 + the attempts that sent the dot and got no reply. Returns what happened.
 */
function assertStoredAsAcknowledged(run: Run, copies: Map<number, number>): Tally {
  const tally: Tally = { attempts: 0, noReply: 0, dropped: 0, refused: 0, replies: new Map(), duplicates: 0 };
  for (const [seq, attempts] of run.attempts) {
    const noReply = attempts.filter((a) => a.kind === 'no-reply').length;
    const stored = copies.get(seq) ?? 0;
    const history = attempts.map((a) => (a.kind === 'reply' ? a.code : a.kind)).join(' → ');
    assert.ok(run.acked.has(seq), `message ${seq} never got a 250 (${history})`);
    assert.ok(stored >= 1, `acknowledged message ${seq} is not stored (${history})`);
    assert.ok(stored <= 1 + noReply, `message ${seq} stored ${stored} times, but only ${noReply} attempt(s) went unanswered (${history})`);
    tally.attempts += attempts.length;
    tally.noReply += noReply;
    tally.dropped += attempts.filter((a) => a.kind === 'dropped').length;
    tally.refused += attempts.filter((a) => a.kind === 'refused').length;
    for (const a of attempts) if (a.kind === 'reply') tally.replies.set(a.code, (tally.replies.get(a.code) ?? 0) + 1);
    tally.duplicates += stored - 1;
  }
  for (const seq of copies.keys()) assert.ok(run.attempts.has(seq), `stored message ${seq} was never sent`);
  assert.ok(tally.duplicates <= tally.noReply);
  return tally;
}

function describeTally(t: Tally, stored: number): string {
  const replies = [...t.replies].map(([code, n]) => `${n}×${code}`).join(', ') || 'none';
  return `${MESSAGES} messages in ${t.attempts} attempts; unanswered after the dot ${t.noReply}, dropped earlier ${t.dropped}, refused ${t.refused}, other replies ${replies}; ${stored} stored, ${t.duplicates} duplicate(s) of unanswered messages`;
}

async function killAndRestartRun(db?: string): Promise<string> {
  const site = await createSite({ db });
  let server: TernServer = await startTern(site);
  let port = server.smtpPort;
  let killedWhileAwaiting = 0;
  let restarting: Promise<void> | undefined;
  // Kill once a quarter is acknowledged and several clients await the reply to their dot.
  const run = await sendAll(() => port, {
    onAwaitingReply(waiting, acked) {
      if (acked < MESSAGES / 4 || waiting < 3 || restarting) return;
      killedWhileAwaiting = waiting;
      server.proc.kill('SIGKILL');
      restarting = server.exited.then(async () => {
        server = await startTern(site);
        port = server.smtpPort;
      });
      restarting.catch(() => undefined); // awaited (and reported) after the run
    },
  });
  await restarting;
  assert.ok(restarting, 'the server was killed mid-run');
  assert.equal(await server.stop(), 0, 'clean exit after SIGTERM');
  const { copies, problems } = await storedSeqCopies(site, ['alice@example.test', 'bob@example.test']);
  assert.deepEqual(problems, []);
  const tally = assertStoredAsAcknowledged(run, copies);
  assert.ok(
    tally.noReply >= 1,
    `the kill interrupted transactions in flight (${killedWhileAwaiting} clients awaited a reply at the kill; ${tally.noReply} got none)`,
  );
  return describeTally(
    tally,
    [...copies.values()].reduce((a, b) => a + b, 0),
  );
}

describe('crash safety', () => {
  it('SQLite: SIGKILL mid-run loses no acknowledged message and duplicates none', async (t) => {
    t.diagnostic(await killAndRestartRun());
  });

  describe('PostgreSQL', () => {
    const databases: TestDatabase[] = [];
    let skip: string | undefined;
    before(async () => {
      skip = await pgSkipReason();
    });
    after(async () => {
      for (const db of databases) await db.drop();
    });

    it('SIGKILL mid-run loses no acknowledged message and duplicates none', async (t) => {
      if (skip) return t.skip(skip);
      const db = await freshPgDatabase();
      databases.push(db);
      t.diagnostic(await killAndRestartRun(db.url));
    });

    it('PostgreSQL stopped mid-run: clients get 451, delivery resumes by itself', async (t) => {
      if (skip) return t.skip(skip);
      // A cluster of our own: this test stops and starts it.
      const cluster = await startPgCluster();
      let server: TernServer | undefined;
      try {
        const site = await createSite({ db: cluster.url });
        const tern = (server = await startTern(site));
        let outage: Promise<void> | undefined;
        const run = await sendAll(
          () => tern.smtpPort,
          {
            onAck(acked) {
              if (acked < MESSAGES / 4 || outage) return;
              outage = (async () => {
                await cluster.stop();
                await new Promise((r) => setTimeout(r, 2000));
                await cluster.start();
              })();
              outage.catch(() => undefined); // awaited (and reported) after the run
            },
          },
          200,
        );
        await outage;
        assert.ok(outage, 'PostgreSQL was stopped mid-run');
        assert.equal(await tern.stop(), 0);
        const { copies, problems } = await storedSeqCopies(site, ['alice@example.test', 'bob@example.test']);
        assert.deepEqual(problems, []);
        const tally = assertStoredAsAcknowledged(run, copies);
        assert.ok((tally.replies.get(451) ?? 0) > 0, 'some messages got 451 while PostgreSQL was down');
        const failures = [...run.attempts.values()].flat().filter((a) => a.kind !== 'acked');
        assert.ok(
          failures.every((a) => a.kind === 'reply' && a.code === 451),
          `every failure was a 451 (got ${[...new Set(failures.map((a) => (a.kind === 'reply' ? a.code : a.kind)))].join(', ')})`,
        );
        t.diagnostic(describeTally(tally, copies.size));
      } finally {
        await server?.stop();
        await cluster.destroy();
      }
    });
  });
});
