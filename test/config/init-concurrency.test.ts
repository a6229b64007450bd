/**
 * First-run setup under concurrency: 15 `tern init` processes started at once, on one
 * fresh PostgreSQL database (each node with its own data dir, as a cluster starts) and
 * on one fresh SQLite data dir. Every run must exit 0, and the site must end up with
 * exactly one domain, one admin account (whose password exactly one run prints) and
 * one postmaster alias.
 */
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
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
});
