// Tern-on-PostgreSQL for the bench: one throwaway cluster per run (test/helpers/pg-cluster.ts,
// default durability: fsync, synchronous_commit and full_page_writes on) and a fresh
// database in it for each Tern instance, so every load starts from an empty store.
import pg from 'pg';
import { startPgCluster, type PgCluster } from '../test/helpers/pg-cluster.js';

export interface BenchPostgres {
  cluster: PgCluster;
  /** "PostgreSQL 15.x …" */
  version: string;
  /** Creates database `name` and returns its URL. */
  createDatabase(name: string): Promise<string>;
  destroy(): Promise<void>;
}

function urlFor(base: string, database: string): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  return url.toString();
}

export async function startBenchPostgres(): Promise<BenchPostgres> {
  const cluster = await startPgCluster();
  const query = async (sql: string): Promise<pg.QueryResult> => {
    const client = new pg.Client({ connectionString: cluster.url, connectionTimeoutMillis: 10_000 });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await client.query(sql);
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  try {
    const version = String((await query('SELECT version() AS v')).rows[0]?.v ?? '?'); // eslint-disable-line @typescript-eslint/no-unsafe-member-access -- one text column
    return {
      cluster,
      version,
      createDatabase: async (name) => {
        if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
        await query(`CREATE DATABASE ${name}`);
        return urlFor(cluster.url, name);
      },
      destroy: () => cluster.destroy(),
    };
  } catch (error) {
    await cluster.destroy();
    throw error;
  }
}
