/**
 * Deterministic fault injection, on SQLite and PostgreSQL. With the test-only switch
 * TERN_TEST_FAULT=<point>:<n>, `tern serve` SIGKILLs itself when its n-th delivery batch
 * reaches <point>: `before-commit` (right before the delivery transaction's COMMIT) or
 * `after-commit` (right after COMMIT returned, before any reply is sent). Messages are
 * sent one at a time, so batch n is message n. The rule checked at each point, after a
 * restart without the switch:
 *  - every message that got a 250 is stored exactly once;
 *  - before-commit: the unanswered message is not stored;
 *  - after-commit: it is stored exactly once (committed without a 250 is the only
 *    ambiguity SMTP allows; the sender will retry and may deliver it twice);
 *  - the store's integrity check is clean.
 * Without the switch in the server, the fault message gets its 250 and the test fails
 * at once with a message saying so.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freshPgDatabase, pgSkipReason, type TestDatabase } from '../helpers/pg.js';
import { openSession } from '../helpers/raw-smtp.js';
import { createSite, startTern } from '../helpers/tern.js';
import { storedSeqCopies, within } from './support.js';

/** The fault fires at this delivery batch (message), so some deliveries succeed first. */
const FAULT_AT = 3;
const POINTS = ['before-commit', 'after-commit'] as const;
type FaultPoint = (typeof POINTS)[number];

/** Sends message `seq` on its own connection: the reply code to the final dot, or 'no reply'. */
async function send(port: number, seq: number): Promise<number | 'no reply'> {
  const client = await openSession(port);
  try {
    for (const [command, expected] of [
      ['MAIL FROM:<sender@remote.test>', 250],
      ['RCPT TO:<alice@example.test>', 250],
      ['DATA', 354],
    ] as const) {
      const reply = await client.command(command);
      assert.equal(reply.code, expected, `message ${seq}: ${command} → ${reply.text}`);
    }
    client.send(`From: sender@remote.test\r\nTo: alice@example.test\r\nSubject: fault ${seq}\r\nX-Seq: ${seq}\r\n\r\nmessage ${seq}\r\n.\r\n`);
    try {
      return (await client.read(15_000)).code;
    } catch {
      return 'no reply';
    }
  } finally {
    client.close();
  }
}

async function faultRun(point: FaultPoint, db?: string): Promise<void> {
  const site = await createSite({ db });
  const faulty = await startTern(site, [], { TERN_TEST_FAULT: `${point}:${FAULT_AT}` });
  try {
    const replies: Array<number | 'no reply'> = [];
    for (let seq = 1; seq <= FAULT_AT; seq++) replies.push(await send(faulty.smtpPort, seq));
    const before = replies.slice(0, FAULT_AT - 1);
    assert.deepEqual(before, Array(FAULT_AT - 1).fill(250), `messages before the fault got 250 (got ${replies.join(', ')})`);
    assert.equal(
      replies[FAULT_AT - 1],
      'no reply',
      `message ${FAULT_AT} must get no reply: TERN_TEST_FAULT=${point}:${FAULT_AT} should have killed the server at its ${point} point (got ${replies[FAULT_AT - 1]}; is the switch implemented?)`,
    );
    const exit = await within(faulty.exited, 10_000);
    assert.notEqual(exit, 'timeout', 'the server died at the fault');
    assert.equal(faulty.proc.signalCode, 'SIGKILL', `the server killed itself with SIGKILL (exit ${String(exit)})`);
  } finally {
    await faulty.stop('SIGKILL');
  }

  // Restarted without the switch: it recovers and delivers again.
  const healthy = await startTern(site);
  try {
    assert.equal(await send(healthy.smtpPort, FAULT_AT + 1), 250, 'delivery works after the restart');
  } finally {
    assert.equal(await healthy.stop(), 0, 'clean exit after SIGTERM');
  }

  const { copies, problems } = await storedSeqCopies(site, ['alice@example.test']);
  assert.deepEqual(problems, [], 'integrity check');
  for (const seq of [...Array.from({ length: FAULT_AT - 1 }, (_, i) => i + 1), FAULT_AT + 1]) {
    assert.equal(copies.get(seq), 1, `acknowledged message ${seq} stored exactly once`);
  }
  const expected = point === 'before-commit' ? 0 : 1;
  assert.equal(copies.get(FAULT_AT) ?? 0, expected, `the unanswered message killed ${point} is stored ${expected} time(s)`);
}

describe('fault injection: SIGKILL at the commit', () => {
  describe('SQLite', () => {
    for (const point of POINTS) it(`${point}`, () => faultRun(point));
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
    for (const point of POINTS) {
      it(`${point}`, async (t) => {
        if (skip) return t.skip(skip);
        const db = await freshPgDatabase();
        databases.push(db);
        await faultRun(point, db.url);
      });
    }
  });
});
