/**
 * PostgreSQL for tests: a fresh, uniquely named database per caller, dropped afterwards,
 * on the server at TERN_TEST_PG_URL. scripts/run-tests.mjs sets it to the throwaway
 * cluster it starts for the run; a user can point it at an external server. When a test
 * file runs on its own without it, this process starts its own throwaway cluster
 * (pg-cluster.ts) on first use and removes it at exit. An unreachable server fails the
 * tests with a clear message, unless TERN_TEST_SKIP_PG=1 (then `pgSkipReason()` tells
 * callers to skip).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startPgCluster } from './pg-cluster.js';

let serverUrl: Promise<string> | undefined;

/** The admin URL of the test server: TERN_TEST_PG_URL, or a cluster of our own started on first use. */
function pgTestUrl(): Promise<string> {
  serverUrl ??= process.env.TERN_TEST_PG_URL
    ? Promise.resolve(process.env.TERN_TEST_PG_URL)
    : startPgCluster().then((cluster) => {
        process.once('exit', () => cluster.destroySync());
        return cluster.url;
      });
  return serverUrl;
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

function redact(url: string): string {
  const u = new URL(url);
  u.password = '';
  return u.toString();
}

/** Connects to the admin URL; falls back to the `postgres` database when the named one does not exist. */
async function adminClient(): Promise<pg.Client> {
  const adminUrl = await pgTestUrl();
  for (const url of [adminUrl, withDatabase(adminUrl, 'postgres')]) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return client;
    } catch (err) {
      await client.end().catch(() => undefined);
      if ((err as { code?: unknown }).code === '3D000') continue;
      const reason = err instanceof Error ? err.message || String((err as { code?: unknown }).code) : String(err);
      throw new Error(
        `PostgreSQL is not reachable at ${redact(adminUrl)} (${reason}); start it, point TERN_TEST_PG_URL at a server, or set TERN_TEST_SKIP_PG=1 to skip PostgreSQL tests`,
        { cause: err },
      );
    }
  }
  throw new Error(`neither the database in ${redact(adminUrl)} nor "postgres" exists on that server`);
}

/** Creates `tern_test_<random>` and returns its URL and a function that drops it. */
export async function freshPgDatabase(): Promise<TestDatabase> {
  const name = `tern_test_${randomBytes(6).toString('hex')}`;
  const admin = await adminClient();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return {
    url: withDatabase(await pgTestUrl(), name),
    async drop() {
      const c = await adminClient();
      try {
        await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
        await c.query(`DROP DATABASE IF EXISTS ${name}`);
      } finally {
        await c.end();
      }
    },
  };
}

/**
 * Why PostgreSQL tests should be skipped, or undefined to run them. Only with
 * TERN_TEST_SKIP_PG=1 and a server that is unreachable (or a throwaway cluster that
 * cannot be started); otherwise tests run, and fail loudly without PostgreSQL.
 */
export async function pgSkipReason(): Promise<string | undefined> {
  if (process.env.TERN_TEST_SKIP_PG !== '1') return undefined;
  try {
    const c = await adminClient();
    await c.end();
    return undefined;
  } catch (err) {
    return `TERN_TEST_SKIP_PG=1: ${err instanceof Error ? err.message : String(err)}`;
  }
}
