/**
 * PostgreSQL schema, as numbered migrations applied in order, one transaction each,
 * under an advisory lock (see postgres/index.ts). Never edit a released migration: add
 * the next one. Keep in step with sqlite/migrations.ts: same tables and columns; dates
 * are BIGINT epoch milliseconds as in SQLite, flags a space-separated TEXT.
 */
export const POSTGRES_MIGRATIONS: ReadonlyArray<{ version: number; sql: string }> = [
  {
    version: 1,
    sql: `
CREATE TABLE settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE domains (
  id BIGSERIAL PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL
);
CREATE TABLE accounts (
  id BIGSERIAL PRIMARY KEY,
  address TEXT NOT NULL UNIQUE,
  domain_id BIGINT NOT NULL REFERENCES domains(id),
  password_hash TEXT NOT NULL,
  is_admin BOOLEAN NOT NULL DEFAULT FALSE,
  quota_bytes BIGINT,
  created_at BIGINT NOT NULL
);
CREATE INDEX accounts_domain ON accounts (domain_id);
CREATE TABLE aliases (
  id BIGSERIAL PRIMARY KEY,
  address TEXT NOT NULL,
  target TEXT NOT NULL,
  domain_id BIGINT NOT NULL REFERENCES domains(id),
  created_at BIGINT NOT NULL,
  UNIQUE (address, target)
);
CREATE INDEX aliases_domain ON aliases (domain_id);
CREATE TABLE mailboxes (
  id BIGSERIAL PRIMARY KEY,
  account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  special_use TEXT,
  uidvalidity BIGINT NOT NULL,
  uidnext BIGINT NOT NULL DEFAULT 1,
  highestmodseq BIGINT NOT NULL DEFAULT 1,
  subscribed BOOLEAN NOT NULL DEFAULT TRUE,
  UNIQUE (account_id, name)
);
CREATE TABLE blobs (
  hash TEXT PRIMARY KEY,
  size BIGINT NOT NULL,
  data BYTEA NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE messages (
  id BIGSERIAL PRIMARY KEY,
  mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  uid BIGINT NOT NULL,
  modseq BIGINT NOT NULL,
  flags TEXT NOT NULL DEFAULT '',
  internal_date BIGINT NOT NULL,
  size BIGINT NOT NULL,
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
