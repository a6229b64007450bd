/**
 * SQLite schema, as numbered migrations applied in order inside one transaction each.
 * Never edit a released migration: add the next one. Keep in step with postgres/migrations.ts.
 *
 * messages carries uid and modseq per mailbox and the mailbox keeps uidvalidity, uidnext
 * and highestmodseq, so IMAP (CONDSTORE/QRESYNC) and POP3 are served without a rewrite.
 */
export const SQLITE_MIGRATIONS: ReadonlyArray<{ version: number; sql: string }> = [
  {
    version: 1,
    sql: `
CREATE TABLE settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE domains (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);
CREATE TABLE accounts (
  id INTEGER PRIMARY KEY,
  address TEXT NOT NULL UNIQUE,
  domain_id INTEGER NOT NULL REFERENCES domains(id),
  password_hash TEXT NOT NULL,
  is_admin INTEGER NOT NULL DEFAULT 0,
  quota_bytes INTEGER,
  created_at INTEGER NOT NULL
);
CREATE TABLE aliases (
  id INTEGER PRIMARY KEY,
  address TEXT NOT NULL,
  target TEXT NOT NULL,
  domain_id INTEGER NOT NULL REFERENCES domains(id),
  created_at INTEGER NOT NULL,
  UNIQUE (address, target)
);
CREATE TABLE mailboxes (
  id INTEGER PRIMARY KEY,
  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  special_use TEXT,
  uidvalidity INTEGER NOT NULL,
  uidnext INTEGER NOT NULL DEFAULT 1,
  highestmodseq INTEGER NOT NULL DEFAULT 1,
  subscribed INTEGER NOT NULL DEFAULT 1,
  UNIQUE (account_id, name)
);
CREATE TABLE blobs (
  hash TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  data BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  uid INTEGER NOT NULL,
  modseq INTEGER NOT NULL,
  flags TEXT NOT NULL DEFAULT '',
  internal_date INTEGER NOT NULL,
  size INTEGER NOT NULL,
  blob_hash TEXT NOT NULL REFERENCES blobs(hash),
  tern_id TEXT NOT NULL,
  envelope_from TEXT NOT NULL,
  UNIQUE (mailbox_id, uid)
);
CREATE INDEX messages_mailbox_modseq ON messages (mailbox_id, modseq);
CREATE INDEX messages_blob ON messages (blob_hash);
`,
  },
];
