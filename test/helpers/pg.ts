/**
 * PostgreSQL for tests: a fresh, uniquely named database per run on the server at
 * TERN_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test), dropped afterwards.
 * An unreachable server fails the tests with a clear message, unless TERN_TEST_SKIP_PG=1
 * (then `pgSkipReason()` tells callers to skip).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const PG_TEST_URL = process.env.TERN_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test';

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
  for (const url of [PG_TEST_URL, withDatabase(PG_TEST_URL, 'postgres')]) {
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
        `PostgreSQL is not reachable at ${redact(PG_TEST_URL)} (${reason}); start it, point TERN_TEST_PG_URL at a server, or set TERN_TEST_SKIP_PG=1 to skip PostgreSQL tests`,
        { cause: err },
      );
    }
  }
  throw new Error(`neither the database in ${redact(PG_TEST_URL)} nor "postgres" exists on that server`);
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
    url: withDatabase(PG_TEST_URL, name),
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
 * TERN_TEST_SKIP_PG=1 and an unreachable server; otherwise tests run (and fail loudly).
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
