/** Opens a SQLite connection with Tern's settings: WAL, synchronous=FULL (commit = fsynced), FKs on. */
import Database from 'better-sqlite3';

/** Error codes that mean "the disk or file is in trouble, try later", not a bad request. */
export const TRANSIENT_SQLITE_CODES = /^SQLITE_(FULL|IOERR|BUSY|LOCKED|CANTOPEN|READONLY|PROTOCOL|NOMEM)/;

export function openSqliteConnection(file: string): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  return db;
}
