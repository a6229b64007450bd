/**
 * Whole sites through the archive (store/transfer) with the real CLI and real clients: a
 * round trip SQLite → PostgreSQL → SQLite keeps every table (the manifests' digests agree)
 * and an IMAP client synced before the move sees the same UIDVALIDITY, UIDs, flags and
 * MODSEQ; damaged archives are refused and leave nothing behind; a backup taken while ten
 * clients deliver holds every message acknowledged before it began; one account or
 * mailbox comes back into a running site; and a schema upgrade snapshots the site first.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { openStore } from '../../src/store/open.js';
import { openSqliteConnection } from '../../src/store/sqlite/connection.js';
import { migrateSqlite } from '../../src/store/sqlite/index.js';
import { migratePostgres } from '../../src/store/postgres/index.js';
import { POSTGRES_MIGRATIONS } from '../../src/store/postgres/migrations.js';
import { SQLITE_MIGRATIONS } from '../../src/store/sqlite/migrations.js';
import { SITE_TABLES } from '../../src/store/transfer/site.js';
import pg from 'pg';
import { readManifest, type Manifest } from '../../src/store/transfer/archive.js';
import { freshPgDatabase, type TestDatabase } from '../helpers/pg.js';
import { cli, createSite, freePort, runCli, startTern, tempDir, type Site, type TernServer } from '../helpers/tern.js';

async function imap(port: number, user = 'alice@example.test'): Promise<ImapFlow> {
  const client = new ImapFlow({
    host: '127.0.0.1',
    port,
    secure: false,
    auth: { user, pass: 'password123' },
    logger: false,
    disableAutoIdle: true,
    tls: { rejectUnauthorized: false },
  });
  await client.connect();
  return client;
}

async function serveWithImap(site: Site, extra: string[] = []): Promise<{ server: TernServer; imapPort: number }> {
  const imapPort = await freePort();
  const server = await startTern(site, ['--imap-port', String(imapPort), '--roles', 'smtp,lmtp,imap', ...extra]);
  return { server, imapPort };
}

function send(port: number, to: string, subject: string, text: string): Promise<{ response: string }> {
  const t = nodemailer.createTransport({ host: '127.0.0.1', port, ignoreTLS: true });
  return t.sendMail({ from: 'someone@sender.test', to, subject, text, messageId: `<${subject}@sender.test>` });
}

interface MailboxView {
  uidValidity: string;
  highestModseq: string;
  messages: Array<{ uid: number; flags: string[]; modseq: string; subject: string }>;
}

/** What a synced client knows of a mailbox: UIDVALIDITY, HIGHESTMODSEQ, and each message's uid, flags and modseq. */
async function view(client: ImapFlow, mailbox: string): Promise<MailboxView> {
  const lock = await client.getMailboxLock(mailbox);
  try {
    const mb = client.mailbox as { uidValidity: bigint; highestModseq?: bigint };
    const messages: MailboxView['messages'] = [];
    for await (const m of client.fetch('1:*', { uid: true, flags: true, envelope: true })) {
      messages.push({ uid: m.uid, flags: [...(m.flags ?? [])].sort(), modseq: String(m.modseq), subject: m.envelope?.subject ?? '' });
    }
    return { uidValidity: String(mb.uidValidity), highestModseq: String(mb.highestModseq), messages };
  } finally {
    lock.release();
  }
}

const digests = (m: Manifest) => Object.fromEntries(Object.entries(m.tables).map(([t, s]) => [t, `${s.rows}:${s.digest}`]));

describe('site archive', () => {
  let site: Site;
  let server: TernServer;
  let imapPort: number;
  let pgDb: TestDatabase;
  const dir = tempDir('tern-transfer-');
  const archive = join(dir, 'a.tern');
  const synced: Record<string, MailboxView> = {};

  before(async () => {
    pgDb = await freshPgDatabase();
    site = await createSite();
    ({ server, imapPort } = await serveWithImap(site));
    for (let i = 1; i <= 12; i++) await send(server.smtpPort, i % 3 ? 'alice@example.test' : 'bob@example.test', `msg-${i}`, `body ${i}\n`.repeat(20));
    // A body staged in chunks (over one chunk), and one sent to both accounts (one blob, two copies).
    await send(server.smtpPort, 'alice@example.test', 'big', 'x'.repeat(76).concat('\n').repeat(30_000));
    await send(server.smtpPort, 'alice@example.test, bob@example.test', 'shared', 'for both\n');
    const c = await imap(imapPort);
    await c.mailboxCreate('Archive/2024');
    await c.mailboxOpen('INBOX');
    await c.messageFlagsAdd('1:3', ['\\Seen', '\\Flagged', '$Label1']);
    await c.messageMove('4:5', 'Archive/2024');
    await c.messageDelete('2'); // an expunged message leaves a tombstone
    await c.messageFlagsAdd('6', ['\\Deleted']);
    synced.INBOX = await view(c, 'INBOX');
    synced['Archive/2024'] = await view(c, 'Archive/2024');
    await c.logout();
    // An outbound message waiting in the queue (no queue role runs here).
    await cli(['send', '--from', 'alice@example.test', '--to', 'carol@remote.test', '--subject', 'queued', '--text', 'wait', ...site.args]);
  });
  after(async () => {
    await server?.stop();
    await pgDb?.drop();
  });

  it('exports while serving, and a round trip SQLite → PostgreSQL → SQLite gives the same site', async () => {
    const out = JSON.parse(await cli(['export', archive, '--json', ...site.args])) as { messages: number; backend: string };
    assert.equal(out.backend, 'sqlite');
    assert.ok(out.messages >= 14, JSON.stringify(out));
    const pgArgs = ['--data', join(dir, 'pg'), '--db', pgDb.url];
    await cli(['import', archive, ...pgArgs]);
    await cli(['export', join(dir, 'b.tern'), ...pgArgs]);
    const sqliteArgs = ['--data', join(dir, 'back')];
    await cli(['import', join(dir, 'b.tern'), ...sqliteArgs]);
    await cli(['export', join(dir, 'c.tern'), ...sqliteArgs]);
    const [a, b, c] = ['a.tern', 'b.tern', 'c.tern'].map((f) => readManifest(join(dir, f)).manifest);
    assert.equal(b!.backend, 'postgres');
    assert.deepEqual(digests(b!), digests(a!));
    assert.deepEqual(digests(c!), digests(a!));
    for (const t of ['messages', 'keywords', 'expunged', 'blob_chunks', 'queue', 'dkim_keys', 'mailboxes']) assert.ok(a!.tables[t]!.rows > 0, `${t} has rows`);
    // The TLS certificate went along.
    assert.equal(readFileSync(join(dir, 'back', 'tls', 'cert.pem'), 'utf8'), readFileSync(join(site.dataDir, 'tls', 'cert.pem'), 'utf8'));
  });

  /** What a client synced before the move checks on the moved site. */
  async function checkMoved(port: number, moved: Site, where: string): Promise<void> {
    const c = await imap(port);
    for (const name of ['INBOX', 'Archive/2024']) assert.deepEqual(await view(c, name), synced[name], `${name} on ${where}`);
    // CONDSTORE: nothing changed since the client's HIGHESTMODSEQ, so it fetches nothing again.
    await c.mailboxOpen('INBOX');
    const changed = [];
    for await (const m of c.fetch('1:*', { uid: true, flags: true }, { changedSince: BigInt(synced.INBOX!.highestModseq) })) changed.push(m.uid);
    assert.deepEqual(changed, [], where);
    const big = synced.INBOX!.messages.find((m) => m.subject === 'big')!;
    const body = await c.fetchOne(String(big.uid), { source: true }, { uid: true });
    assert.ok(body && body.source!.length > 2_000_000, where);
    await c.logout();
    assert.match(await cli(['queue', 'list', '--json', ...moved.args]), /carol@remote\.test/, where);
  }

  it('an IMAP client synced before the move sees the same mailboxes after it, on both backends', async () => {
    for (const target of [{ dataDir: join(dir, 'back') }, { dataDir: join(dir, 'pg'), db: pgDb.url }]) {
      const moved: Site = { dataDir: target.dataDir, args: ['--data', target.dataDir, ...(target.db ? ['--db', target.db] : [])] };
      const s = await serveWithImap(moved);
      try {
        await checkMoved(s.imapPort, moved, target.db ? 'PostgreSQL' : 'SQLite');
      } catch (err) {
        const e = err as { responseText?: string; executedCommand?: string };
        throw new Error(`${(err as Error).message} ${e.executedCommand ?? ''} ${e.responseText ?? ''}`, { cause: err });
      } finally {
        await s.server.stop();
      }
    }
  });

  it('refuses damaged, truncated and foreign files with a clear error, and leaves nothing behind', async () => {
    const size = statSync(archive).size;
    const cases: Array<[string, (f: string) => void, RegExp]> = [
      ['truncated', (f) => truncateSync(f, Math.floor(size / 2)), /truncated/],
      ['cut short by a byte', (f) => truncateSync(f, size - 1), /truncated|damaged/],
      [
        'a flipped byte in the data',
        (f) => {
          const buf = readFileSync(f);
          buf[Math.floor(size / 2)]! ^= 0xff;
          writeFileSync(f, buf);
        },
        /damaged/,
      ],
      ['not an archive', (f) => writeFileSync(f, 'From someone\nSubject: hi\n\nhello\n'), /not a Tern archive/],
    ];
    for (const [what, damage, expected] of cases) {
      const f = join(dir, 'damaged.tern');
      copyFileSync(archive, f);
      damage(f);
      const target = join(dir, `restore-${what.replace(/\W+/g, '-')}`);
      const r = await runCli(['restore', f, '--data', target]);
      assert.notEqual(r.code, 0, what);
      assert.match(r.stderr, expected, what);
      assert.doesNotMatch(r.stderr, /unexpected error|\n\s+at /, what);
      assert.ok(!existsSync(join(target, 'tern.db')), `${what}: no database left`);
      assert.deepEqual(existsSync(target) ? readdirSync(target).filter((n) => n.startsWith('tern.db')) : [], [], what);
      const v = await runCli(['backup', 'verify', f]);
      assert.notEqual(v.code, 0, what);
    }
    // PostgreSQL: a failed import leaves the database empty, so the next one succeeds.
    const db = await freshPgDatabase();
    try {
      const f = join(dir, 'damaged.tern');
      copyFileSync(archive, f);
      const buf = readFileSync(f);
      buf[Math.floor(size * 0.9)]! ^= 0xff;
      writeFileSync(f, buf);
      const bad = await runCli(['import', f, '--data', join(dir, 'pg2'), '--db', db.url]);
      assert.match(bad.stderr, /damaged/);
      await cli(['import', archive, '--data', join(dir, 'pg2'), '--db', db.url]);
      // And a site is never imported over another.
      const twice = await runCli(['import', archive, '--data', join(dir, 'pg2'), '--db', db.url]);
      assert.match(twice.stderr, /already holds a site/);
    } finally {
      await db.drop();
    }
  });

  it(
    'a backup onto a full disk fails in one line and leaves no file',
    { skip: process.getuid?.() === 0 ? false : 'needs root to mount a small tmpfs' },
    async () => {
      const disk = tempDir('tern-archive-full-');
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8k', 'tmpfs', disk]);
      try {
        assert.ok(statSync(archive).size > 8192, 'the site does not fit in 8 KB');
        const r = await runCli(['backup', join(disk, 'site.tern'), ...site.args]);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /cannot write .*site\.tern: the disk is full/);
        assert.doesNotMatch(r.stderr, /unexpected error|\n\s+at /);
        assert.deepEqual(readdirSync(disk), []);
      } finally {
        execFileSync('umount', ['-l', disk]);
      }
    },
  );

  it('brings back one mailbox, then one message, into the running site, and only once', async () => {
    const c = await imap(imapPort);
    await c.mailboxDelete('Archive/2024');
    await c.mailboxOpen('INBOX');
    const firstUid = synced.INBOX!.messages[0]!.uid;
    await c.messageDelete(String(firstUid), { uid: true });
    const restored = JSON.parse(await cli(['restore', archive, '--account', 'alice@example.test', '--mailbox', 'Archive/2024', '--json', ...site.args])) as {
      restored: number;
      skipped: number;
    };
    assert.equal(restored.restored, synced['Archive/2024']!.messages.length);
    const back = await view(c, 'Archive/2024');
    assert.deepEqual(
      back.messages.map((m) => [m.subject, m.flags]),
      synced['Archive/2024']!.messages.map((m) => [m.subject, m.flags]),
    );
    const again = JSON.parse(await cli(['restore', archive, '--account', 'alice@example.test', '--mailbox', 'Archive/2024', '--json', ...site.args])) as {
      restored: number;
      skipped: number;
    };
    assert.deepEqual([again.restored, again.skipped], [0, restored.restored]);
    const one = JSON.parse(
      await cli(['restore', archive, '--account', 'alice@example.test', '--mailbox', 'INBOX', '--uid', String(firstUid), '--json', ...site.args]),
    ) as { restored: number };
    assert.equal(one.restored, 1);
    const inbox = await view(c, 'INBOX');
    const again1 = inbox.messages.find((m) => m.subject === synced.INBOX!.messages[0]!.subject);
    assert.deepEqual(again1?.flags, synced.INBOX!.messages[0]!.flags);
    await c.logout();
    const bad = await runCli(['restore', archive, '--account', 'nobody@example.test', ...site.args]);
    assert.match(bad.stderr, /has no account nobody@example\.test/);
  });
});

describe('backup under load', () => {
  it('holds every message acknowledged before the backup began, and the restored site serves them', async () => {
    const site = await createSite();
    const server = await startTern(site);
    const file = join(tempDir('tern-backup-'), 'live.tern');
    const acked: Array<{ id: string; at: number }> = [];
    let stop = false;
    const client = async (n: number) => {
      const t = nodemailer.createTransport({ host: '127.0.0.1', port: server.smtpPort, ignoreTLS: true });
      for (let i = 0; !stop && i < 400; i++) {
        const info = (await t.sendMail({ from: 'load@sender.test', to: 'alice@example.test', subject: `load ${n}-${i}`, text: 'x'.repeat(2000) })) as {
          response: string;
        };
        acked.push({ id: /queued as (\S+)/.exec(info.response)![1]!, at: Date.now() });
      }
      t.close();
    };
    try {
      const load = Promise.all(Array.from({ length: 10 }, (_, n) => client(n)));
      await new Promise((r) => setTimeout(r, 1500));
      const began = Date.now();
      await cli(['backup', file, ...site.args]);
      await new Promise((r) => setTimeout(r, 500));
      stop = true;
      await load;
      const wanted = acked.filter((a) => a.at < began).map((a) => a.id);
      assert.ok(wanted.length >= 20, `${wanted.length} messages acknowledged before the backup`);
      const restoredDir = tempDir('tern-restored-');
      await cli(['restore', file, '--data', restoredDir]);
      const store = await openStore({ dataDir: restoredDir });
      try {
        const have = new Set((await store.mailboxes.messagesOf('alice@example.test')).map((m) => m.ternId));
        const missing = wanted.filter((id) => !have.has(id));
        assert.deepEqual(missing, [], `${missing.length} of ${wanted.length} acknowledged messages missing from the backup`);
      } finally {
        await store.close();
      }
    } finally {
      stop = true;
      await server.stop();
    }
  });
});

describe('schema upgrades', () => {
  it('snapshots an existing site first; a failed upgrade changes nothing and names the snapshot', async () => {
    const dataDir = tempDir('tern-upgrade-');
    const db = openSqliteConnection(join(dataDir, 'tern.db'));
    migrateSqlite(db, 9);
    db.prepare('INSERT INTO domains (name, created_at) VALUES (?, ?)').run('old.test', Date.now());
    db.close();
    const failed = await runCli(['domain', 'list', '--data', dataDir], { env: { ...process.env, TERN_TEST_FAULT: 'migration' } });
    assert.notEqual(failed.code, 0);
    assert.match(
      failed.stderr,
      /upgrading the database from schema 9 to \d+ failed .*still at schema 9.*snapshot taken before the upgrade is at (\S+) \(tern restore\)/,
    );
    const snapshot = /is at (\S+) \(tern restore\)/.exec(failed.stderr)![1]!;
    assert.equal(readManifest(snapshot).manifest.schema, 9);
    const check = openSqliteConnection(join(dataDir, 'tern.db'), { readonly: true });
    assert.equal((check.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number }).v, 9);
    check.close();
    // Without the fault the upgrade goes through; the snapshot restores the old site.
    assert.match(await cli(['domain', 'list', '--data', dataDir]), /old\.test/);
    const restored = tempDir('tern-upgrade-restored-');
    await cli(['restore', snapshot, '--data', restored]);
    assert.match(await cli(['domain', 'list', '--data', restored]), /old\.test/);
    assert.equal(readdirSync(join(dataDir, 'snapshots')).filter((n) => n.endsWith('.tern')).length, 2);
    // The schema-9 snapshot goes into a PostgreSQL database an earlier command left empty at the newest schema.
    const pgDb = await freshPgDatabase();
    try {
      const pgArgs = ['--data', tempDir('tern-upgrade-pg-import-'), '--db', pgDb.url];
      await cli(['domain', 'list', ...pgArgs]);
      await cli(['import', snapshot, ...pgArgs]);
      assert.match(await cli(['domain', 'list', ...pgArgs]), /old\.test/);
    } finally {
      await pgDb.drop();
    }
  });

  it('on PostgreSQL too: all pending migrations in one transaction after a snapshot', async () => {
    const db = await freshPgDatabase();
    const dataDir = tempDir('tern-upgrade-pg-');
    try {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      await client.query('BEGIN');
      await migratePostgres(client, 9);
      await client.query('INSERT INTO domains (name, created_at) VALUES ($1, $2)', ['old.test', Date.now()]);
      await client.query('COMMIT');
      const args = ['--data', dataDir, '--db', db.url];
      const failed = await runCli(['domain', 'list', ...args], { env: { ...process.env, TERN_TEST_FAULT: 'migration' } });
      assert.match(failed.stderr, /from schema 9 to \d+ failed .*still at schema 9.*is at (\S+) \(tern restore\)/);
      assert.equal(Number((await client.query<{ v: number }>('SELECT max(version) AS v FROM schema_migrations')).rows[0]!.v), 9);
      await client.end();
      assert.match(await cli(['domain', 'list', ...args]), /old\.test/);
    } finally {
      await db.drop();
    }
  });
});

describe('SITE_TABLES', () => {
  it('names every table the migrations of both backends create, so none is left out of archives', () => {
    for (const migrations of [SQLITE_MIGRATIONS, POSTGRES_MIGRATIONS]) {
      const created = migrations.flatMap((m) => [...m.sql.matchAll(/CREATE TABLE (\w+)/g)].map((x) => x[1]!));
      assert.deepEqual([...created].sort(), [...SITE_TABLES].sort());
    }
  });
});
