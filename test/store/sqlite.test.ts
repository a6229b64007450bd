/**
 * Runs the Store contract against SQLite, in a fresh temporary directory, plus the
 * durability settings read inside every kind of write transaction (by triggers, on the
 * very connection that commits) and several processes opening a new database at once.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { backfillScenario, everyKindOfWrite, storeContract, WRITES_SEEN, type Row } from './contract.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-store-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const file = path.join(dir, 'tern.db');
let inspector: Database.Database | undefined;

storeContract('sqlite', () => openSqliteStore(file), {
  // A read-only connection of its own: WAL lets it read what the writer thread committed.
  async inspect(sql, params = []) {
    inspector ??= new Database(file, { readonly: true });
    return inspector.prepare(sql).all(...params) as Row[];
  },
  async cleanup() {
    inspector?.close();
  },
});

describe('SQLite store: durability inside the write transactions', () => {
  it('commits every kind of write in WAL mode with synchronous=FULL', async () => {
    const durable = path.join(dir, 'durable.db');
    const store = await openSqliteStore(durable);
    const admin = new Database(durable);
    try {
      // Triggers record the committing connection's own settings (table-valued pragma functions).
      const record = (table: string, op: string) =>
        `CREATE TRIGGER record_${table}_${op} AFTER ${op} ON ${table} BEGIN
           INSERT INTO commit_settings
           SELECT '${table} ${op}', (SELECT synchronous FROM pragma_synchronous), (SELECT journal_mode FROM pragma_journal_mode);
         END;`;
      admin.exec(`CREATE TABLE commit_settings (change TEXT NOT NULL, synchronous INTEGER NOT NULL, journal_mode TEXT NOT NULL);
        ${WRITES_SEEN.map((w) => record(...(w.split(' ') as [string, string]))).join('\n')}`);
      await everyKindOfWrite(store, 'durable.test');
      const seen = admin.prepare('SELECT DISTINCT change, synchronous, journal_mode FROM commit_settings ORDER BY 1, 2, 3').all() as Row[];
      const FULL = 2; // PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA
      assert.deepEqual(
        seen.map((r) => `${String(r.change)} ${String(r.synchronous)} ${String(r.journal_mode)}`),
        WRITES_SEEN.map((w) => `${w} ${FULL} wal`),
      );
    } finally {
      admin.close();
      await store.close();
    }
  });
});

describe('SQLite store: first run', () => {
  it('lets several processes open a new database at once: migrations run once and first-run settings agree', async () => {
    const shared = path.join(dir, 'first-run.db');
    const sqliteStore = new URL('../../src/store/sqlite/index.js', import.meta.url).href;
    const script = `
      const { openSqliteStore } = await import(${JSON.stringify(sqliteStore)});
      const store = await openSqliteStore(${JSON.stringify(shared)});
      console.log(await store.directory.initSetting('cluster.id', 'process-' + process.pid));
      await store.close();`;
    const scriptFile = path.join(dir, 'first-run.mjs'); // a file, not -e: worker threads inherit execArgv
    fs.writeFileSync(scriptFile, script);
    const runs = await Promise.all(
      Array.from({ length: 6 }, () => {
        const child = spawn(process.execPath, [scriptFile], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        return new Promise<{ code: number | null; out: string }>((resolve) => child.on('close', (code) => resolve({ code, out })));
      }),
    );
    assert.deepEqual(
      runs.map((r) => r.code),
      runs.map(() => 0),
      runs.map((r) => r.out).join('\n'),
    );
    const values = new Set(runs.map((r) => r.out.trim()));
    assert.equal(values.size, 1, `every process sees one value: ${[...values].join(', ')}`);
    const db = new Database(shared, { readonly: true });
    try {
      const versions = db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as Array<{ version: number }>;
      assert.deepEqual(
        versions.map((v) => v.version),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
      );
    } finally {
      db.close();
    }
  });
});

describe('SQLite store: checkpoints', () => {
  it('copies the WAL into the database on its own thread while the store is open, long before the 64 MB backstop', async () => {
    const walFile = path.join(dir, 'checkpoint.db');
    const store = await openSqliteStore(walFile);
    try {
      await store.directory.addDomain('checkpoint.test');
      const account = await store.directory.addAccount({ address: 'c@checkpoint.test', passwordHash: 'x', isAdmin: false, quotaBytes: null });
      const before = fs.statSync(walFile).size;
      // 12 MB of distinct 100 KB bodies, committed in several batches.
      for (let round = 0; round < 12; round++) {
        await Promise.all(
          Array.from({ length: 10 }, () => {
            const data = crypto.randomBytes(100 * 1024);
            return store.mailboxes.deliver({
              ternId: crypto.randomUUID(),
              blob: { hash: crypto.createHash('sha256').update(data).digest('hex'), size: data.length, data },
              envelopeFrom: 's@remote.test',
              recipients: [{ accountId: account.id, prefix: Buffer.alloc(0) }],
              internalDate: new Date(),
              atomic: true,
            });
          }),
        );
      }
      let grown = 0;
      for (let i = 0; i < 50 && grown < 8 * 1024 * 1024; i++) {
        await new Promise((r) => setTimeout(r, 100));
        grown = fs.statSync(walFile).size - before;
      }
      assert.ok(grown >= 8 * 1024 * 1024, `the database file grew by ${grown} bytes while open: the WAL was not checkpointed`);
    } finally {
      await store.close();
    }
  });
});

describe('SQLite store: parsing bodies stored without a structure', () => {
  for (const how of ['nulled', 'from version 2', 'from version 3'] as const) {
    it(`parses them when the store opens (${how})`, async () => {
      const backfill = path.join(dir, `backfill-${how.replace(/ /g, '-')}.db`);
      await backfillScenario(
        {
          open: (log) => openSqliteStore(backfill, { log }),
          async exec(sql, params = []) {
            const db = new Database(backfill);
            try {
              const statement = db.prepare(sql);
              if (statement.reader) return statement.all(...params) as Row[];
              statement.run(...params);
              return [];
            } finally {
              db.close();
            }
          },
        },
        how,
      );
    });
  }
});
