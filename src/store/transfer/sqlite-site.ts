/**
 * The SQLite side of the site archive. The source reads one snapshot: a read transaction
 * on its own connection, which WAL lets run beside the server's writer without stopping
 * it. The sink builds the new database in a file next to the target, without a journal
 * (a failed import deletes the file), and renames it into place only once everything has
 * been read, checked, committed and synced.
 */
import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { fsyncPath } from '../../fsync.js';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { UserError } from '../../errors.js';
import { openSqliteConnection } from '../sqlite/connection.js';
import { migrateSqlite, sqliteSchemaVersion } from '../sqlite/index.js';
import { normalizeValue, type Value } from './archive.js';
import { LARGE_ROWS, SITE_TABLES, TABLE_FILTER, type SiteSink, type SiteSource } from './site.js';

const BATCH = 500;

export function openSqliteSource(file: string): SiteSource {
  if (!existsSync(file)) throw new UserError(`there is no database at ${file}`);
  const db = openSqliteConnection(file, { readonly: true });
  db.exec('BEGIN');
  // The snapshot starts at the first read, so every table below comes from the same one.
  const schema = sqliteSchemaVersionReadonly(db);
  const present = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as Array<{ name: string }>).map(
    (r) => r.name,
  );
  const tables = SITE_TABLES.filter((t) => present.includes(t));
  const where = (t: string) => (TABLE_FILTER[t] ? ` WHERE ${TABLE_FILTER[t]}` : '');
  return {
    backend: 'sqlite',
    schema,
    tables,
    async count(table) {
      return (db.prepare(`SELECT count(*) AS n FROM ${table}${where(table)}`).get() as { n: number }).n;
    },
    async *rows(table) {
      const stmt = db.prepare(`SELECT * FROM ${table}${where(table)}`).raw(true);
      const columns = stmt.columns().map((c) => c.name);
      const size = LARGE_ROWS.has(table) ? 16 : BATCH;
      let batch: Value[][] = [];
      for (const r of stmt.iterate() as IterableIterator<unknown[]>) {
        batch.push(r.map(normalizeValue));
        if (batch.length >= size) {
          yield { columns, rows: batch };
          batch = [];
        }
      }
      yield { columns, rows: batch };
    },
    async close() {
      if (db.inTransaction) db.exec('COMMIT');
      db.close();
    },
  };
}

/** The schema version without creating schema_migrations (the connection is read-only). */
function sqliteSchemaVersionReadonly(db: Database.Database): number {
  const has = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
  return has ? (db.prepare('SELECT coalesce(max(version), 0) AS v FROM schema_migrations').get() as { v: number }).v : 0;
}

/** Whether the SQLite database at `file` holds a site: anything beyond an empty schema. */
export function sqliteHoldsSite(file: string): boolean {
  if (!existsSync(file) || statSync(file).size === 0) return false;
  const db = openSqliteConnection(file, { readonly: true });
  try {
    if (sqliteSchemaVersionReadonly(db) === 0) return false;
    return ['domains', 'accounts', 'messages', 'queue'].some((t) => db.prepare(`SELECT 1 FROM ${t} LIMIT 1`).get() !== undefined);
  } finally {
    db.close();
  }
}

/** A sink that becomes the SQLite database `file`, which must not hold a site yet. */
export function openSqliteSink(file: string): SiteSink {
  if (sqliteHoldsSite(file)) throw new UserError(`${file} already holds a site: restore or import only into an empty data directory or database`);
  const temp = `${file}.importing`;
  const remove = () => {
    for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(temp + suffix, { force: true });
  };
  remove();
  const db = openSqliteConnection(temp, { synchronous: 'OFF' });
  db.pragma('journal_mode = OFF');
  let insert: Database.Statement | null = null;
  return {
    async begin(schema) {
      db.exec('BEGIN');
      migrateSqlite(db, schema);
      if (sqliteSchemaVersion(db) !== schema) throw new UserError(`this Tern cannot create schema ${schema}`);
    },
    async table(name, columns) {
      if (!(SITE_TABLES as readonly string[]).includes(name)) throw new UserError(`the archive has a table this Tern does not know: ${name}`);
      db.exec(`DELETE FROM ${name}`); // rows the migrations seed (counters) come from the archive
      insert = db.prepare(`INSERT INTO ${name} (${columns.map((c) => `"${c}"`).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`);
    },
    async row(values) {
      insert!.run(...values);
    },
    async commit() {
      migrateSqlite(db);
      db.exec('COMMIT');
      db.pragma('journal_mode = WAL');
      db.close();
      await fsyncPath(temp);
      for (const suffix of ['-wal', '-shm']) rmSync(file + suffix, { force: true });
      renameSync(temp, file);
      await fsyncPath(path.dirname(path.resolve(file)));
    },
    async abort() {
      if (db.open) db.close();
      remove();
    },
  };
}
