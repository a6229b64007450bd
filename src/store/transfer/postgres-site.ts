/**
 * The PostgreSQL side of the site archive. The source reads one snapshot (a REPEATABLE READ
 * READ ONLY transaction, which blocks no writer) through cursors. The sink fills an empty
 * database in one transaction: the schema at the archive's version, every table by COPY,
 * the later migrations, the id sequences moved past the imported ids; a failure anywhere
 * rolls all of it back.
 */
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { UserError } from '../../errors.js';
import { MIGRATION_LOCK, migratePostgres, postgresSchemaVersion, TYPES } from '../postgres/index.js';
import { normalizeValue, type Value } from './archive.js';
import { LARGE_ROWS, SITE_TABLES, TABLE_FILTER, type SiteSink, type SiteSource } from './site.js';

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, types: TYPES, application_name: 'tern-transfer' });
  client.on('error', () => undefined); // a lost connection fails the query in flight
  try {
    await client.connect();
  } catch (err) {
    throw new UserError(`cannot connect to PostgreSQL: ${(err as Error).message}`);
  }
  return client;
}

async function tablesOf(client: pg.Client): Promise<string[]> {
  const r = await client.query<{ name: string }>('SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()');
  return r.rows.map((x) => x.name);
}

export async function openPostgresSource(url: string): Promise<SiteSource> {
  const client = await connect(url);
  let schema: number;
  let present: string[];
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    schema = await postgresSchemaVersion(client);
    present = await tablesOf(client);
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
  const where = (t: string) => (TABLE_FILTER[t] ? ` WHERE ${TABLE_FILTER[t]}` : '');
  return {
    backend: 'postgres',
    schema,
    tables: SITE_TABLES.filter((t) => present.includes(t)),
    async count(table) {
      return Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}${where(table)}`)).rows[0]!.n);
    },
    async *rows(table) {
      await client.query(`DECLARE site_rows NO SCROLL CURSOR FOR SELECT * FROM ${table}${where(table)}`);
      const size = LARGE_ROWS.has(table) ? 16 : 1000;
      try {
        for (;;) {
          const r = await client.query({ text: `FETCH ${size} FROM site_rows`, rowMode: 'array' });
          const columns = r.fields.map((f) => f.name);
          yield { columns, rows: (r.rows as unknown[][]).map((row) => row.map(normalizeValue)) };
          if (r.rows.length < size) break;
        }
      } finally {
        await client.query('CLOSE site_rows');
      }
    },
    async close() {
      await client.query('COMMIT').catch(() => undefined);
      await client.end();
    },
  };
}

/** One value in COPY's text format. */
function copyText(v: Value): string {
  if (v === null) return '\\N';
  if (typeof v === 'number') return String(v);
  if (Buffer.isBuffer(v)) return `\\\\x${v.toString('hex')}`;
  return v.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
}

/** Whether the database holds a site: anything beyond an empty schema. */
async function holdsSite(client: pg.Client): Promise<boolean> {
  if ((await postgresSchemaVersion(client)) === 0) return false;
  for (const t of ['domains', 'accounts', 'messages', 'queue']) if ((await client.query(`SELECT 1 FROM ${t} LIMIT 1`)).rowCount) return true;
  return false;
}

/** A sink into the PostgreSQL database at `url`, which must not hold a site yet. */
export async function openPostgresSink(url: string): Promise<SiteSink> {
  const client = await connect(url);
  if (await holdsSite(client)) {
    await client.end();
    throw new UserError('the PostgreSQL database already holds a site: restore or import only into an empty database');
  }
  let copy: Writable | null = null;
  let copyDone: Promise<unknown> = Promise.resolve();
  // Rows go to COPY in batches: one CopyData message per row costs more than the row.
  let lines: string[] = [];
  let lineBytes = 0;
  const flush = async () => {
    if (lines.length === 0) return;
    const data = lines.join('');
    lines = [];
    lineBytes = 0;
    if (!copy!.write(data)) await Promise.race([once(copy!, 'drain'), copyDone]);
  };
  const endCopy = async () => {
    if (!copy) return;
    await flush();
    copy.end();
    await copyDone;
    copy = null;
  };
  return {
    async begin(schema) {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      if (await holdsSite(client)) throw new UserError('the PostgreSQL database already holds a site');
      // An empty schema newer than the archive's (made by an earlier command) is made again at the archive's version.
      if ((await postgresSchemaVersion(client)) > schema) await client.query(`DROP TABLE ${[...SITE_TABLES, 'schema_migrations'].join(', ')} CASCADE`);
      await migratePostgres(client, schema);
      if ((await postgresSchemaVersion(client)) !== schema) throw new UserError(`this Tern cannot create schema ${schema}`);
    },
    async table(name, columns) {
      await endCopy();
      if (!(SITE_TABLES as readonly string[]).includes(name)) throw new UserError(`the archive has a table this Tern does not know: ${name}`);
      await client.query(`DELETE FROM ${name}`); // rows the migrations seed (counters) come from the archive
      const stream = client.query(copyFrom(`COPY ${name} (${columns.map((c) => `"${c}"`).join(', ')}) FROM STDIN`));
      copy = stream;
      copyDone = new Promise((resolve, reject) => {
        stream.once('finish', resolve);
        stream.once('error', reject);
      });
      copyDone.catch(() => undefined);
    },
    async row(values) {
      const line = `${values.map(copyText).join('\t')}\n`;
      lines.push(line);
      lineBytes += line.length;
      if (lineBytes >= 256 * 1024) await flush();
    },
    async commit() {
      await endCopy();
      await migratePostgres(client);
      // BIGSERIAL ids: the next one must come after what was imported.
      const serials = await client.query<{ t: string; seq: string }>(
        `SELECT c.table_name AS t, pg_get_serial_sequence(c.table_name, c.column_name) AS seq FROM information_schema.columns c
         WHERE c.table_schema = current_schema() AND c.column_default LIKE 'nextval(%'`,
      );
      for (const { t, seq } of serials.rows) await client.query(`SELECT setval($1, coalesce((SELECT max(id) FROM ${t}), 0) + 1, false)`, [seq]);
      await client.query('SET LOCAL synchronous_commit = on');
      await client.query('COMMIT');
      await client.end();
    },
    async abort() {
      copy?.destroy();
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end().catch(() => undefined);
    },
  };
}
