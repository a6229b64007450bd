/**
 * PostgreSQL backend behaviour beyond the contract: nodes migrating at once, PostgreSQL
 * going away and coming back (simulated with a TCP proxy we can cut), a connection
 * killed mid-transaction, and the integrity check finding real damage.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { StoreUnavailableError } from '../../src/errors.js';
import { PostgresStore } from '../../src/store/postgres/index.js';
import type { NewDelivery } from '../../src/store/store.js';
import { freshPgDatabase, pgSkipReason, type TestDatabase } from '../helpers/pg.js';

/** A TCP proxy in front of PostgreSQL that can be stopped (connections cut, port refusing) and started again. */
class CuttableProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  constructor(private readonly target: { host: string; port: number }) {}

  async start(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }
}

let n = 0;
function delivery(accountId: number): NewDelivery {
  const blob = Buffer.from(`Subject: failure test ${++n}\r\n\r\n${Math.random()}\r\n`);
  return {
    ternId: `t${n}`,
    blob,
    hash: createHash('sha256').update(blob).digest('hex'),
    envelopeFrom: 'x@example.org',
    accountIds: [accountId],
    internalDate: new Date(),
  };
}

const skip = await pgSkipReason();

describe('PostgresStore under failure', { skip }, () => {
  let db: TestDatabase;
  before(async () => {
    db = await freshPgDatabase();
  });
  after(async () => {
    await db?.drop();
  });

  it('lets several nodes start at once and migrates once', async () => {
    const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresStore.open(db.url)));
    await Promise.all(stores.map((s) => s.close()));
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    const r = await c.query('SELECT version FROM schema_migrations');
    await c.end();
    assert.deepEqual(r.rows.map((x: { version: number }) => x.version), [1]);
  });

  it('fails deliveries with StoreUnavailableError while PostgreSQL is away, then recovers', async () => {
    const url = new URL(db.url);
    const proxy = new CuttableProxy({ host: url.hostname, port: Number(url.port || 5432) });
    await proxy.start();
    url.host = `127.0.0.1:${proxy.port}`;
    const idleErrors: Error[] = [];
    const store = await PostgresStore.open(url.toString(), { onError: (err) => idleErrors.push(err) });
    try {
      await store.addDomain('failover.test');
      const account = await store.addAccount({ address: 'f@failover.test', passwordHash: 'h' });
      assert.equal((await store.deliver(delivery(account.id)))[0]!.uid, 1);

      await proxy.stop(); // PostgreSQL "stops": idle connections die, new ones are refused
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(idleErrors.length > 0, 'the idle connection error was reported, not thrown');
      const started = Date.now();
      const burst = await Promise.allSettled(Array.from({ length: 20 }, () => store.deliver(delivery(account.id))));
      assert.ok(burst.every((r) => r.status === 'rejected' && r.reason instanceof StoreUnavailableError), 'every delivery fails with StoreUnavailableError');
      assert.ok(Date.now() - started < 3000, 'a batch fails at once, not one attempt per message');
      await assert.rejects(store.stats(), StoreUnavailableError);

      await proxy.start(); // PostgreSQL is back on the same address
      assert.equal((await store.deliver(delivery(account.id)))[0]!.uid, 2);
      assert.deepEqual(await store.checkIntegrity(), []);
    } finally {
      await store.close();
      await proxy.stop();
    }
  });

  it('turns a connection killed mid-transaction into StoreUnavailableError and keeps serving', async () => {
    const store = await PostgresStore.open(db.url);
    const admin = new pg.Client({ connectionString: db.url, application_name: 'tern-test-admin' });
    await admin.connect();
    try {
      await store.addDomain('killed.test');
      const account = await store.addAccount({ address: 'k@killed.test', passwordHash: 'h' });
      // Hold the INBOX row so the delivery transaction waits inside BEGIN … COMMIT.
      await admin.query('BEGIN');
      await admin.query("SELECT id FROM mailboxes WHERE account_id = $1 AND name = 'INBOX' FOR UPDATE", [account.id]);
      const failed = assert.rejects(store.deliver(delivery(account.id)), StoreUnavailableError); // handled from the start
      await new Promise((r) => setTimeout(r, 200));
      const killed = await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'tern' AND wait_event_type = 'Lock'",
      );
      assert.equal(killed.rowCount, 1);
      await failed;
      await admin.query('ROLLBACK');
      assert.equal((await store.deliver(delivery(account.id)))[0]!.uid, 1);
    } finally {
      await admin.end();
      await store.close();
    }
  });

  it('reports damage found by the integrity check', async () => {
    const store = await PostgresStore.open(db.url);
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      await store.addDomain('damaged.test');
      const account = await store.addAccount({ address: 'd@damaged.test', passwordHash: 'h' });
      const d = delivery(account.id);
      await store.deliver(d);
      await admin.query("UPDATE mailboxes SET uidnext = 1 WHERE account_id = $1 AND name = 'INBOX'", [account.id]);
      await admin.query('SET session_replication_role = replica'); // bypass the foreign key, as a broken restore would
      await admin.query('DELETE FROM blobs WHERE hash = $1', [d.hash]);
      const problems = await store.checkIntegrity();
      assert.equal(problems.length, 2, problems.join('\n'));
      assert.match(problems[0]!, new RegExp(`references missing blob ${d.hash}`));
      assert.match(problems[1]!, /\(d@damaged\.test INBOX\) has uidnext 1 but holds uid 1/);
    } finally {
      await admin.end();
      await store.close();
    }
  });
});
