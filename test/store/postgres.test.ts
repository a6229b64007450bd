/**
 * Runs the Store contract against PostgreSQL, in a fresh database dropped afterwards,
 * plus what only PostgreSQL has: many nodes (stores with their own pools) committing
 * identical messages at once, and synchronous_commit read inside every kind of write transaction.
 * Each test database defaults to synchronous_commit=off, so only the store's own
 * `SET LOCAL synchronous_commit = on` can make the durability assertions pass.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { numberPlaceholders } from '../../src/store/sql/sql.js';
import type { DeliveryOutcome, Store } from '../../src/store/store.js';
import { freshPgDatabase, pgSkipReason, type TestDatabase } from '../helpers/pg.js';
import { backfillScenario, body, delivery, everyKindOfWrite, inline, storeContract, WRITES_SEEN, type Row } from './contract.js';

const skip = await pgSkipReason();

/** A fresh database whose default is *not* durable, and a client to inspect it. */
async function undurableDatabase(): Promise<{ db: TestDatabase; client: pg.Client }> {
  const db = await freshPgDatabase();
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query(`ALTER DATABASE ${new URL(db.url).pathname.slice(1)} SET synchronous_commit = off`);
  return { db, client };
}

let contractDb: { db: TestDatabase; client: pg.Client } | undefined;
storeContract(
  'postgres',
  async () => {
    contractDb = await undurableDatabase();
    return openPostgresStore(contractDb.db.url);
  },
  {
    skip,
    async inspect(sql, params = []) {
      return (await contractDb!.client.query<Row>(numberPlaceholders(sql), params)).rows;
    },
    async cleanup() {
      await contractDb?.client.end();
      await contractDb?.db.drop();
    },
  },
);

describe('PostgreSQL store: many nodes, one database', { skip }, () => {
  let db: TestDatabase;
  let admin: pg.Client;
  let nodes: Store[] = [];
  before(async () => {
    ({ db, client: admin } = await undurableDatabase());
    nodes = await Promise.all(Array.from({ length: 4 }, () => openPostgresStore(db.url)));
  });
  after(async () => {
    await Promise.all(nodes.map((s) => s.close()));
    await admin?.end();
    await db?.drop();
  });

  it('commits every kind of write with synchronous_commit=on, read inside its own transaction', async () => {
    // Triggers record the setting in force in each transaction that changes accounts or messages.
    await admin.query(`
      CREATE TABLE commit_settings (change TEXT NOT NULL, synchronous_commit TEXT NOT NULL);
      CREATE FUNCTION record_commit_setting() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO commit_settings VALUES (TG_TABLE_NAME || ' ' || TG_OP, current_setting('synchronous_commit'));
        RETURN NULL;
      END $$;
      CREATE TRIGGER record_messages AFTER INSERT OR UPDATE OR DELETE ON messages FOR EACH ROW EXECUTE FUNCTION record_commit_setting();
      CREATE TRIGGER record_accounts AFTER INSERT OR UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION record_commit_setting();`);
    try {
      await everyKindOfWrite(nodes[0]!, 'durable.test');
      const seen = await admin.query<{ change: string; synchronous_commit: string }>(
        'SELECT DISTINCT change, synchronous_commit FROM commit_settings ORDER BY 1, 2',
      );
      assert.deepEqual(
        seen.rows.map((r) => `${r.change} ${r.synchronous_commit}`),
        WRITES_SEEN.map((w) => `${w} on`),
      );
      const fresh = new pg.Client({ connectionString: db.url });
      await fresh.connect();
      const dflt = await fresh.query<{ synchronous_commit: string }>('SHOW synchronous_commit');
      await fresh.end();
      assert.equal(dflt.rows[0]!.synchronous_commit, 'off', 'the database default is off, so the store set it');
    } finally {
      await admin.query(
        `DROP TRIGGER record_messages ON messages; DROP TRIGGER record_accounts ON accounts;
         DROP FUNCTION record_commit_setting(); DROP TABLE commit_settings`,
      );
    }
  });

  it('applies flag changes from several nodes to the same messages without losing any', async () => {
    const [a, b, c] = nodes as [Store, Store, Store];
    await a.directory.addDomain('flags.test');
    const account = await a.directory.addAccount({ address: 'f@flags.test', passwordHash: 'h' });
    await Promise.all(Array.from({ length: 100 }, () => a.mailboxes.deliver(delivery([account.id]))));
    const inbox = (await a.mailboxes.get(account.id, 'INBOX'))!;
    const uids = Array.from({ length: 100 }, (_, i) => i + 1);
    for (let round = 0; round < 5; round++) {
      const flags = [`round${round}`];
      await Promise.all([
        a.mailboxes.setFlags(inbox.id, uids, 'add', ['\\Seen', ...flags]),
        b.mailboxes.setFlags(inbox.id, uids, 'add', ['\\Flagged']),
        c.mailboxes.setFlags(inbox.id, uids, 'add', ['\\Answered', `${flags[0]}c`]),
      ]);
      const messages = await a.mailboxes.messages(inbox.id);
      const incomplete = messages.filter((m) => !['\\Seen', '\\Flagged', '\\Answered', ...flags, `${flags[0]}c`].every((f) => m.flags.includes(f)));
      assert.deepEqual(
        incomplete.map((m) => `${m.uid}: ${m.flags.join(' ')}`),
        [],
        `round ${round}: no flag change lost`,
      );
      assert.equal((await a.mailboxes.get(account.id, 'INBOX'))!.unseen, 0);
      await Promise.all([
        a.mailboxes.setFlags(inbox.id, uids, 'remove', ['\\Seen']),
        b.mailboxes.setFlags(inbox.id, uids, 'remove', ['\\Flagged']),
        c.mailboxes.setFlags(inbox.id, uids, 'remove', ['\\Answered']),
      ]);
      const cleared = await a.mailboxes.messages(inbox.id);
      assert.ok(
        cleared.every((m) => !m.flags.some((f) => f.startsWith('\\'))),
        `round ${round}: every removal applied`,
      );
      assert.equal((await a.mailboxes.get(account.id, 'INBOX'))!.unseen, 100);
    }
    assert.deepEqual(await a.checkIntegrity(), []);
  });

  it('delivers identical messages from many nodes to overlapping accounts without deadlock or failure', async (t) => {
    const setup = nodes[0]!;
    await setup.directory.addDomain('identical.test');
    const accounts: number[] = [];
    for (let i = 0; i < 6; i++) accounts.push((await setup.directory.addAccount({ address: `u${i}@identical.test`, passwordHash: 'h' })).id);
    const deadlocksBefore = await deadlockCount(admin);
    // Three bodies, identical on every node; each delivery goes to a window of 3 of the 6 accounts.
    const blobs = [0, 1, 2].map((k) => inline(body(`Subject: identical ${k}\r\n\r\nthe same bytes from every node ${k}\r\n`)));
    const perNode = 60;
    const started = Date.now();
    // One delivery per node per event-loop turn: many small batches in flight at once on every node.
    const pending: Array<Promise<DeliveryOutcome[]>> = [];
    for (let i = 0; i < perNode; i++) {
      for (const [n, node] of nodes.entries()) {
        const start = (n + i) % accounts.length;
        const window = [0, 1, 2].map((k) => accounts[(start + k) % accounts.length]!);
        if (i % 2) window.reverse();
        pending.push(node.mailboxes.deliver(delivery(window, { blob: blobs[(n + i) % blobs.length]! })));
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    const results = await Promise.allSettled(pending);
    t.diagnostic(`${nodes.length * perNode} deliveries from ${nodes.length} nodes in ${Date.now() - started} ms`);
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => String(r.reason));
    assert.deepEqual(failures, [], 'no delivery failed');
    const outcomes = results.flatMap((r) => (r as PromiseFulfilledResult<DeliveryOutcome[]>).value);
    assert.equal(outcomes.length, nodes.length * perNode * 3);
    assert.ok(
      outcomes.every((o) => o.status === 'stored'),
      'every recipient stored',
    );

    for (const blob of blobs) {
      const r = await admin.query<{ refcount: string; n: string }>(
        'SELECT b.refcount, (SELECT count(*) FROM messages m WHERE m.blob_hash = b.hash) AS n FROM blobs b WHERE b.hash = $1',
        [blob.hash],
      );
      assert.equal(r.rowCount, 1, 'one blob row per body');
      assert.equal(Number(r.rows[0]!.refcount), Number(r.rows[0]!.n));
      assert.equal(Number(r.rows[0]!.n), (nodes.length * perNode * 3) / blobs.length);
    }
    for (const id of accounts) {
      const inbox = (await setup.mailboxes.get(id, 'INBOX'))!;
      const uids = (await setup.mailboxes.messages(inbox.id)).map((m) => m.uid);
      assert.deepEqual(
        uids,
        Array.from({ length: uids.length }, (_, i) => i + 1),
        'uids are dense and distinct',
      );
    }
    assert.deepEqual(await setup.checkIntegrity(), []);
    // Retried deadlocks would not show as failures: ask the server whether any happened.
    await Promise.all(nodes.map((s) => s.close()));
    nodes = [];
    await ternBackendsGone(admin);
    assert.equal(await deadlockCount(admin), deadlocksBefore, 'no deadlock was detected (the lock order held)');
  });
});

describe('PostgreSQL store: parsing bodies stored without a structure', { skip }, () => {
  for (const how of ['nulled', 'from version 2', 'from version 3'] as const) {
    it(`parses them when the store opens (${how})`, async () => {
      const db = await freshPgDatabase();
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        await backfillScenario(
          {
            open: (log) => openPostgresStore(db.url, { log }),
            exec: async (sql, params = []) => (await client.query<Row>(numberPlaceholders(sql), params)).rows,
          },
          how,
        );
      } finally {
        await client.end();
        await db.drop();
      }
    });
  }

  it('lets several nodes open at once: each body is parsed and stored once', async () => {
    const db = await freshPgDatabase();
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const first = await openPostgresStore(db.url);
      await first.directory.addDomain('nodes.test');
      const account = await first.directory.addAccount({ address: 'n@nodes.test', passwordHash: 'h' });
      for (let i = 0; i < 450; i++) await first.mailboxes.deliver(delivery([account.id]));
      await first.close();
      assert.equal(Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM blobs WHERE parsed = 0')).rows[0]!.n), 450);
      const logs: string[][] = [];
      const nodes = await Promise.all(
        Array.from({ length: 3 }, (_, i) => {
          logs[i] = [];
          return openPostgresStore(db.url, { log: (_fields, message) => logs[i]!.push(message) });
        }),
      );
      await Promise.all(nodes.map((s) => s.close()));
      assert.equal(Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM blobs WHERE parsed = 0')).rows[0]!.n), 0);
      assert.ok(
        logs.some((l) => l.some((m) => /parsed 450 stored message bodies/.test(m))),
        JSON.stringify(logs),
      );
    } finally {
      await client.end();
      await db.drop();
    }
  });
});

/** Deadlocks PostgreSQL detected in this database so far (a backend reports its statistics when it exits at the latest). */
async function deadlockCount(client: pg.Client): Promise<number> {
  await client.query('SELECT pg_stat_clear_snapshot()');
  const r = await client.query<{ deadlocks: string }>('SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()');
  return Number(r.rows[0]!.deadlocks);
}

/** Waits until the store's backends (application_name 'tern') have exited. */
async function ternBackendsGone(client: pg.Client): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const r = await client.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'tern'");
    if (r.rowCount === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail('the closed stores still have backends after 5 s');
}
