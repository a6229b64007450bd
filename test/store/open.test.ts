/** openStore: choosing the backend from --db / --data, and readable errors for people. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { UserError } from '../../src/errors.js';
import { openStore, redactDbUrl } from '../../src/store/open.js';
import { freshPgDatabase, pgSkipReason } from '../helpers/pg.js';

const pgSkip = await pgSkipReason();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-open-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A local port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('openStore', () => {
  it('opens SQLite at <data>/tern.db by default, creating the data directory', async () => {
    const dataDir = path.join(tmp, 'nested', 'data');
    const store = await openStore({ dataDir });
    assert.equal(store.kind, 'sqlite');
    await store.close();
    assert.ok(fs.existsSync(path.join(dataDir, 'tern.db')));
  });

  it('opens SQLite at a path or a sqlite: URL', async () => {
    for (const dbUrl of [path.join(tmp, 'plain.db'), `sqlite:${path.join(tmp, 'url.db')}`, `sqlite://${path.join(tmp, 'slashes.db')}`]) {
      const store = await openStore({ dataDir: path.join(tmp, 'unused'), dbUrl });
      assert.equal(store.kind, 'sqlite');
      await store.close();
    }
    for (const name of ['plain.db', 'url.db', 'slashes.db']) assert.ok(fs.existsSync(path.join(tmp, name)), name);
  });

  it('explains an unknown scheme and an unopenable SQLite file', async () => {
    await assert.rejects(openStore({ dataDir: tmp, dbUrl: 'mysql://root:pw@db/tern' }), (err) => {
      assert.ok(err instanceof UserError);
      assert.match(err.message, /unsupported database URL scheme "mysql:"/);
      assert.doesNotMatch(err.message, /pw/);
      return true;
    });
    await assert.rejects(
      openStore({ dataDir: tmp, dbUrl: path.join(tmp, 'missing-dir', 'x.db') }),
      (err) => err instanceof UserError && /cannot open SQLite database/.test(err.message),
    );
  });

  it('explains an unreachable PostgreSQL without showing the password', async () => {
    const port = await closedPort();
    await assert.rejects(openStore({ dataDir: tmp, dbUrl: `postgres://tern:s3cret@127.0.0.1:${port}/tern` }), (err) => {
      assert.ok(err instanceof UserError);
      assert.equal(err.message.startsWith(`cannot connect to PostgreSQL at postgres://tern@127.0.0.1:${port}/tern: `), true, err.message);
      assert.match(err.message, /ECONNREFUSED/);
      assert.doesNotMatch(err.message, /s3cret/);
      return true;
    });
  });

  it('redacts passwords in URLs', () => {
    assert.equal(redactDbUrl('postgresql://u:p@h:5432/d?sslmode=require'), 'postgresql://u@h:5432/d?sslmode=require');
    assert.equal(redactDbUrl('postgres://h/d?password=p'), 'postgres://h/d');
  });

  it('opens PostgreSQL for postgres:// URLs', { skip: pgSkip }, async () => {
    const db = await freshPgDatabase();
    try {
      const store = await openStore({ dataDir: tmp, dbUrl: db.url });
      assert.equal(store.kind, 'postgres');
      await store.close();
    } finally {
      await db.drop();
    }
  });
});
