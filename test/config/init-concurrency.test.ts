/**
 * First-run setup under concurrency: 15 `tern init` processes started at once, on one
 * fresh PostgreSQL database (each node with its own data dir, as a cluster starts) and
 * on one fresh SQLite data dir. Every run must exit 0, and the site must end up with
 * exactly one domain, one admin account (whose password exactly one run prints) and
 * one postmaster alias.
 */
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { freshPgDatabase, pgSkipReason } from '../helpers/pg.js';
import { cli, runCli, tempDir, type CliResult } from '../helpers/tern.js';

const NODES = 15;
const HOSTNAME = 'mx.example.test';

/** Starts `NODES` `tern init` runs at once; `argsFor(i)` gives run i its --data/--db arguments. */
async function initConcurrently(argsFor: (i: number) => string[]): Promise<CliResult[]> {
  return Promise.all(Array.from({ length: NODES }, (_, i) => runCli(['init', '--hostname', HOSTNAME, ...argsFor(i)], { timeoutMs: 120_000 })));
}

/** Asserts every run succeeded, exactly one printed the admin password, and the site holds one of each. */
async function assertOneSite(results: CliResult[], args: string[]): Promise<void> {
  const failed = results.filter((r) => r.code !== 0);
  assert.equal(failed.length, 0, `${failed.length} of ${NODES} runs failed:\n${failed.map((r) => `exit ${r.code}: ${r.stderr.trim()}`).join('\n')}`);
  const printedPassword = results.filter((r) => /password \(shown once\)/.test(r.stdout));
  assert.equal(printedPassword.length, 1, `runs that printed an admin password: ${printedPassword.length}`);
  const domains = JSON.parse(await cli(['domain', 'list', '--json', ...args])) as Array<{ name: string }>;
  assert.deepEqual(
    domains.map((d) => d.name),
    [HOSTNAME],
  );
  const users = JSON.parse(await cli(['user', 'list', '--json', ...args])) as Array<{ address: string; admin: boolean }>;
  assert.deepEqual(
    users.map((u) => [u.address, u.admin]),
    [[`admin@${HOSTNAME}`, true]],
  );
  const aliases = JSON.parse(await cli(['alias', 'list', '--json', ...args])) as Array<{ address: string; target: string }>;
  assert.deepEqual(aliases, [{ address: `postmaster@${HOSTNAME}`, target: `admin@${HOSTNAME}` }]);
}

/** The data dir's self-signed certificate and key belong together (no run wrote one half of another's pair). */
function assertCertificateMatchesKey(dataDir: string): void {
  const cert = new X509Certificate(readFileSync(join(dataDir, 'tls', 'cert.pem')));
  const key = createPrivateKey(readFileSync(join(dataDir, 'tls', 'key.pem')));
  assert.ok(cert.checkPrivateKey(key), 'tls/cert.pem matches tls/key.pem');
}

/**
 * Opens the store and runs first-run setup in `NODES` processes that all start the work at
 * the same instant (module loading done), which `tern init` start-up jitter rarely does:
 * this is what catches two processes migrating a fresh database at once.
 */
async function openAndInitAtOnce(dataDirFor: (i: number) => string, dbUrl?: string): Promise<CliResult[]> {
  const openUrl = new URL('../../src/store/open.js', import.meta.url).href;
  const initUrl = new URL('../../src/config/init-data-dir.js', import.meta.url).href;
  const script = `
    const { openStore } = await import(${JSON.stringify(openUrl)});
    const { initDataDir } = await import(${JSON.stringify(initUrl)});
    const [dataDir, dbUrl, at] = process.argv.slice(1);
    await new Promise((r) => setTimeout(r, Number(at) - 20 - Date.now()));
    while (Date.now() < Number(at)); // the last few ms spinning, so all start within a millisecond
    const store = await openStore({ dataDir, dbUrl: dbUrl || undefined });
    try {
      const r = await initDataDir(store, dataDir, ${JSON.stringify(HOSTNAME)});
      if (r.admin) console.log('admin password (shown once): ' + r.admin.password);
    } finally {
      await store.close();
    }`;
  const at = String(Date.now() + 5000);
  return Promise.all(
    Array.from(
      { length: NODES },
      (_, i) =>
        new Promise<CliResult>((resolve, reject) => {
          const child = spawn(process.execPath, ['--input-type=module', '-e', script, dataDirFor(i), dbUrl ?? '', at], { stdio: ['ignore', 'pipe', 'pipe'] });
          let stdout = '';
          let stderr = '';
          child.stdout.on('data', (d) => (stdout += d));
          child.stderr.on('data', (d) => (stderr += d));
          child.on('error', reject);
          child.on('close', (code) => resolve({ code, stdout, stderr: stderr.split('\n').find((l) => /^\w*Error\b/.test(l)) ?? stderr }));
        }),
    ),
  );
}

const skipPg = await pgSkipReason();

describe(`${NODES} concurrent tern init`, () => {
  it('on one fresh PostgreSQL database: all succeed, one domain/admin/postmaster', { skip: skipPg }, async () => {
    const db = await freshPgDatabase();
    try {
      const dirs = Array.from({ length: NODES }, () => tempDir('tern-init-pg-'));
      const results = await initConcurrently((i) => ['--data', dirs[i]!, '--db', db.url]);
      await assertOneSite(results, ['--data', dirs[0]!, '--db', db.url]);
      for (const dir of dirs) assertCertificateMatchesKey(dir);
    } finally {
      await db.drop();
    }
  });

  it('on one fresh SQLite data dir: all succeed, one domain/admin/postmaster, one certificate', async () => {
    const dir = tempDir('tern-init-sqlite-');
    const results = await initConcurrently(() => ['--data', dir]);
    await assertOneSite(results, ['--data', dir]);
    assertCertificateMatchesKey(dir);
  });

  it('opening one fresh SQLite store and setting it up in processes that start at the same instant', async () => {
    const dir = tempDir('tern-init-sqlite-');
    const results = await openAndInitAtOnce(() => dir);
    await assertOneSite(results, ['--data', dir]);
    assertCertificateMatchesKey(dir);
  });

  it('opening one fresh PostgreSQL database and setting it up in processes that start at the same instant', { skip: skipPg }, async () => {
    const db = await freshPgDatabase();
    try {
      const dirs = Array.from({ length: NODES }, () => tempDir('tern-init-pg-'));
      const results = await openAndInitAtOnce((i) => dirs[i]!, db.url);
      await assertOneSite(results, ['--data', dirs[0]!, '--db', db.url]);
    } finally {
      await db.drop();
    }
  });
});
