/**
 * PostgreSQL backend behaviour beyond the contract: nodes migrating at once, PostgreSQL
 * going away and coming back, hanging before or after COMMIT (simulated with a TCP proxy
 * we can cut or freeze), a connection killed mid-transaction, and the integrity check
 * finding real damage.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { StoreUnavailableError } from '../../src/errors.js';
import { openPostgresStore, type PostgresStoreOptions } from '../../src/store/postgres/index.js';
import { POSTGRES_MIGRATIONS } from '../../src/store/postgres/migrations.js';
import type { Store } from '../../src/store/store.js';
import { freshPgDatabase, pgSkipReason, type TestDatabase } from '../helpers/pg.js';
import { body, delivery, inline } from './contract.js';

/** A simple-protocol `COMMIT` as node-postgres sends it: 'Q', length 11, "COMMIT\0". */
const COMMIT_MESSAGE = Buffer.from([0x51, 0, 0, 0, 11, ...Buffer.from('COMMIT'), 0]);

/** Where a frozen connection stops: COMMIT held back from the server, or COMMIT delivered and its answer held back. */
type Hang = 'before-commit' | 'after-commit';

interface Link {
  client: net.Socket;
  upstream: net.Socket;
  /** Bytes held back while frozen, per direction. */
  toServer: Buffer[];
  toClient: Buffer[];
  frozen: boolean;
}

/**
 * A TCP proxy in front of PostgreSQL that can be stopped (connections cut, port refusing)
 * and started again, and can freeze the next connection that sends COMMIT, as a hung
 * server would: the server side stays open (holding its locks) until thawed.
 */
class PgProxy {
  private server: net.Server | undefined;
  private readonly links = new Set<Link>();
  private armed: { hang: Hang; caught: () => void } | null = null;
  port = 0;
  constructor(private readonly target: { host: string; port: number }) {}

  async start(): Promise<void> {
    const server = net.createServer((client) => this.link(client));
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  private link(client: net.Socket): void {
    const upstream = net.connect(this.target);
    const link: Link = { client, upstream, toServer: [], toClient: [], frozen: false };
    this.links.add(link);
    for (const s of [client, upstream]) s.on('error', () => undefined);
    client.on('data', (chunk) => {
      if (link.frozen) return void link.toServer.push(chunk);
      const at = this.armed ? chunk.indexOf(COMMIT_MESSAGE) : -1;
      if (at >= 0 && this.armed) {
        const { hang, caught } = this.armed;
        this.armed = null;
        link.frozen = true;
        const cut = hang === 'after-commit' ? at + COMMIT_MESSAGE.length : at;
        upstream.write(chunk.subarray(0, cut));
        link.toServer.push(chunk.subarray(cut));
        caught();
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => (link.frozen ? link.toClient.push(chunk) : client.write(chunk)));
    // A hung server does not notice its client leave: while frozen, the server side stays open.
    client.on('close', () => {
      if (!link.frozen) upstream.destroy();
    });
    upstream.on('close', () => {
      client.destroy();
      this.links.delete(link);
    });
  }

  /** Freezes the next connection that sends COMMIT; resolves when it has. */
  freezeNextCommit(hang: Hang): Promise<void> {
    return new Promise((caught) => (this.armed = { hang, caught }));
  }

  /** The server "wakes up": held bytes go through (a COMMIT held back reaches the server now), then the links close if their client left. */
  thaw(): void {
    for (const link of this.links) {
      if (!link.frozen) continue;
      link.frozen = false;
      for (const chunk of link.toServer.splice(0)) link.upstream.write(chunk);
      if (link.client.destroyed) link.upstream.end();
      else for (const chunk of link.toClient.splice(0)) link.client.write(chunk);
    }
  }

  async stop(): Promise<void> {
    for (const link of this.links) {
      link.client.destroy();
      link.upstream.destroy();
    }
    this.links.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }
}

const skip = await pgSkipReason();

/** True once one of the store's backends waits for a lock (polls for up to 5 s). */
async function waitingOnLock(admin: pg.Client): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    const r = await admin.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'tern' AND wait_event_type = 'Lock'");
    if (r.rowCount) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('PostgreSQL store under failure', { skip }, () => {
  let db: TestDatabase;
  before(async () => {
    db = await freshPgDatabase();
  });
  after(async () => {
    await db?.drop();
  });

  /** Opens a store through a new proxy; both are closed by the returned `close`. */
  async function throughProxy(options: PostgresStoreOptions = {}): Promise<{ store: Store; proxy: PgProxy; close: () => Promise<void> }> {
    const url = new URL(db.url);
    const proxy = new PgProxy({ host: url.hostname, port: Number(url.port || 5432) });
    await proxy.start();
    url.host = `127.0.0.1:${proxy.port}`;
    const store = await openPostgresStore(url.toString(), options);
    return {
      store,
      proxy,
      async close() {
        proxy.thaw();
        await store.close();
        await proxy.stop();
      },
    };
  }

  it('lets several nodes start at once: migrations run once and first-run settings agree', async () => {
    const stores = await Promise.all(Array.from({ length: 6 }, () => openPostgresStore(db.url)));
    try {
      const ids = await Promise.all(stores.map((s, i) => s.directory.initSetting('cluster.id', `node-${i}`)));
      assert.equal(new Set(ids).size, 1, `every node sees one value: ${ids.join(', ')}`);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    const r = await c.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
    await c.end();
    assert.deepEqual(
      r.rows.map((x) => x.version),
      POSTGRES_MIGRATIONS.map((m) => m.version),
    );
  });

  it('fails deliveries with StoreUnavailableError while PostgreSQL is away, then recovers', async () => {
    const idleErrors: Error[] = [];
    const { store, proxy, close } = await throughProxy({ onError: (err) => idleErrors.push(err) });
    try {
      await store.directory.addDomain('failover.test');
      const account = await store.directory.addAccount({ address: 'f@failover.test', passwordHash: 'h' });
      const first = (await store.mailboxes.deliver(delivery([account.id])))[0]!;
      assert.ok(first.status === 'stored' && first.uid === 1);

      await proxy.stop(); // PostgreSQL "stops": idle connections die, new ones are refused
      await sleep(100);
      assert.ok(idleErrors.length > 0, 'the idle connection error was reported, not thrown');
      const started = Date.now();
      const burst = await Promise.allSettled(Array.from({ length: 20 }, () => store.mailboxes.deliver(delivery([account.id]))));
      assert.ok(
        burst.every((r) => r.status === 'rejected' && r.reason instanceof StoreUnavailableError),
        'every delivery fails with StoreUnavailableError',
      );
      assert.ok(Date.now() - started < 3000, 'a batch fails at once, not one attempt per message');
      await assert.rejects(store.stats(), StoreUnavailableError);

      await proxy.start(); // PostgreSQL is back on the same address
      const again = (await store.mailboxes.deliver(delivery([account.id])))[0]!;
      assert.ok(again.status === 'stored' && again.uid === 2);
      assert.deepEqual(await store.checkIntegrity(), []);
    } finally {
      await close();
    }
  });

  it('a hang before COMMIT: the batch is abandoned at its deadline (451) and never commits later; other deliveries go on', async () => {
    const { store, proxy, close } = await throughProxy({ dbTimeoutMs: 1500 });
    try {
      await store.directory.addDomain('hang-before.test');
      const stuck = await store.directory.addAccount({ address: 'stuck@hang-before.test', passwordHash: 'h' });
      const other = await store.directory.addAccount({ address: 'other@hang-before.test', passwordHash: 'h' });
      const caught = proxy.freezeNextCommit('before-commit');
      const d = delivery([stuck.id]);
      const started = Date.now();
      const hung = store.mailboxes.deliver(d);
      const failed = assert.rejects(hung, StoreUnavailableError); // handled from the start
      await caught;
      // One hung batch does not hold every other delivery.
      const meanwhile = (await store.mailboxes.deliver(delivery([other.id])))[0]!;
      assert.equal(meanwhile.status, 'stored');
      assert.ok(Date.now() - started < 1500, `another delivery committed while the first hung (${Date.now() - started} ms)`);
      await failed;
      assert.ok(Date.now() - started < 20_000, 'answered within the deadline and the ambiguity check');
      proxy.thaw(); // the "server" resumes and finally reads the COMMIT it was sent
      await sleep(300);
      assert.deepEqual(await store.mailboxes.findByTernId(d.ternId), [], 'a message answered 451 was not committed afterwards');
      assert.deepEqual(await store.mailboxes.messagesOf('stuck@hang-before.test'), []);
      const next = (await store.mailboxes.deliver(delivery([stuck.id])))[0]!;
      assert.ok(next.status === 'stored' && next.uid === 1, 'the hung transaction was rolled back, locks released');
      assert.deepEqual(await store.checkIntegrity(), []);
    } finally {
      await close();
    }
  });

  it('a hang after COMMIT: the lost answer is settled by Tern id and the delivery reported stored, not 451', async () => {
    const { store, proxy, close } = await throughProxy({ dbTimeoutMs: 1500 });
    try {
      await store.directory.addDomain('hang-after.test');
      const account = await store.directory.addAccount({ address: 'a@hang-after.test', passwordHash: 'h' });
      const caught = proxy.freezeNextCommit('after-commit');
      const d = delivery([account.id], { blob: inline(body()) });
      const outcome = store.mailboxes.deliver(d);
      await caught;
      const [o] = await outcome;
      assert.ok(o && o.status === 'stored', `stored, not failed: ${JSON.stringify(o)}`);
      assert.deepEqual(await store.mailboxes.findByTernId(d.ternId), [o]);
      assert.equal((await store.mailboxes.messagesOf('a@hang-after.test')).length, 1);
      assert.deepEqual(await store.checkIntegrity(), []);
    } finally {
      await close();
    }
  });

  it('deleting an account while a delivery to it is committing leaks no blob reference', async () => {
    const { store: deliverer, proxy, close } = await throughProxy({ dbTimeoutMs: 10_000 });
    const deleter = await openPostgresStore(db.url);
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      await deleter.directory.addDomain('race.test');
      const account = await deleter.directory.addAccount({ address: 'r@race.test', passwordHash: 'h' });
      await deleter.mailboxes.deliver(delivery([account.id]));
      // The delivery has done its work and holds the account's lock; its COMMIT is held back.
      const caught = proxy.freezeNextCommit('before-commit');
      const d = delivery([account.id]);
      const delivered = deliverer.mailboxes.deliver(d);
      await caught;
      const deleted = deleter.directory.deleteAccount('r@race.test');
      assert.ok(await waitingOnLock(admin), 'the deletion waits for the delivery');
      proxy.thaw(); // the delivery commits now
      assert.equal((await delivered)[0]!.status, 'stored');
      await deleted;
      assert.equal(await deleter.directory.getAccount('r@race.test'), null);
      assert.equal(await deleter.blobs.read(d.blob.hash), null, "the delivered message's blob went with the account");
      assert.deepEqual(await deleter.checkIntegrity(), []);
    } finally {
      await admin.end();
      await deleter.close();
      await close();
    }
  });

  it('turns a connection killed mid-transaction into StoreUnavailableError and keeps serving', async () => {
    const store = await openPostgresStore(db.url);
    const admin = new pg.Client({ connectionString: db.url, application_name: 'tern-test-admin' });
    await admin.connect();
    try {
      await store.directory.addDomain('killed.test');
      const account = await store.directory.addAccount({ address: 'k@killed.test', passwordHash: 'h' });
      // Hold the account row so the delivery transaction waits inside BEGIN … COMMIT.
      await admin.query('BEGIN');
      await admin.query('SELECT id FROM accounts WHERE id = $1 FOR UPDATE', [account.id]);
      const failed = assert.rejects(store.mailboxes.deliver(delivery([account.id])), StoreUnavailableError); // handled from the start
      let killed = 0;
      for (let i = 0; i < 50 && killed === 0; i++) {
        await sleep(100);
        const r = await admin.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE datname = current_database() AND application_name = 'tern' AND wait_event_type = 'Lock'`,
        );
        killed = r.rowCount ?? 0;
      }
      assert.equal(killed, 1);
      await failed;
      await admin.query('ROLLBACK');
      const next = (await store.mailboxes.deliver(delivery([account.id])))[0]!;
      assert.ok(next.status === 'stored' && next.uid === 1);
    } finally {
      await admin.end();
      await store.close();
    }
  });

  it('reports damage found by the integrity check', async () => {
    const store = await openPostgresStore(db.url);
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      await store.directory.addDomain('damaged.test');
      const account = await store.directory.addAccount({ address: 'd@damaged.test', passwordHash: 'h' });
      const d = delivery([account.id]);
      await store.mailboxes.deliver(d);
      await admin.query("UPDATE mailboxes SET uidnext = 1 WHERE account_id = $1 AND name = 'INBOX'", [account.id]);
      await admin.query('UPDATE accounts SET used_bytes = used_bytes + 7 WHERE id = $1', [account.id]);
      await admin.query('SET session_replication_role = replica'); // bypass the foreign key, as a broken restore would
      await admin.query('DELETE FROM blobs WHERE hash = $1', [d.blob.hash]);
      const problems = await store.checkIntegrity();
      assert.equal(problems.length, 3, problems.join('\n'));
      assert.match(problems[0]!, new RegExp(`references missing blob ${d.blob.hash}`));
      assert.match(problems[1]!, /\(d@damaged\.test INBOX\) has uidnext 1 but holds uid 1/);
      assert.match(problems[2]!, /account d@damaged\.test counts \d+ bytes used but holds \d+/);
    } finally {
      await admin.end();
      await store.close();
    }
  });
});
