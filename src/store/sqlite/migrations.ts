/**
 * SQLite schema, as numbered migrations applied in order inside one transaction each.
 * Never edit a released migration: add the next one. Keep in step with postgres/migrations.ts.
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
  {
    // Counters, flags as columns plus keywords, tombstones, a UIDVALIDITY counter,
    // subscriptions, blob reference counts and chunked blobs, per-recipient prefixes.
    // No earlier release wrote flags (the column was always empty), so none are converted.
    version: 2,
    sql: `
ALTER TABLE accounts ADD COLUMN used_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN messages INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN unseen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN seen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN answered INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN flagged INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN draft INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN prefix BLOB NOT NULL DEFAULT x'';
ALTER TABLE messages DROP COLUMN flags;
CREATE INDEX messages_tern_id ON messages (tern_id);
CREATE TABLE keywords (
  message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  keyword TEXT NOT NULL,
  PRIMARY KEY (message_id, keyword)
);
CREATE TABLE expunged (
  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  uid INTEGER NOT NULL,
  modseq INTEGER NOT NULL,
  PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX expunged_modseq ON expunged (mailbox_id, modseq);
CREATE TABLE counters (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
INSERT INTO counters (name, value) SELECT 'uidvalidity', coalesce(max(uidvalidity), 0) FROM mailboxes;
CREATE TABLE subscriptions (
  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  PRIMARY KEY (account_id, name)
);
INSERT INTO subscriptions (account_id, name) SELECT account_id, name FROM mailboxes WHERE subscribed = 1;
ALTER TABLE mailboxes DROP COLUMN subscribed;
ALTER TABLE blobs ADD COLUMN upload TEXT;
ALTER TABLE blobs ADD COLUMN refcount INTEGER NOT NULL DEFAULT 0;
CREATE INDEX blobs_upload ON blobs (upload);
CREATE TABLE blob_chunks (
  upload TEXT NOT NULL,
  seq INTEGER NOT NULL,
  data BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (upload, seq)
);
UPDATE blobs SET refcount = (SELECT count(*) FROM messages m WHERE m.blob_hash = blobs.hash);
UPDATE mailboxes SET
  messages = (SELECT count(*) FROM messages m WHERE m.mailbox_id = mailboxes.id),
  unseen = (SELECT count(*) FROM messages m WHERE m.mailbox_id = mailboxes.id),
  bytes = (SELECT coalesce(sum(m.size), 0) FROM messages m WHERE m.mailbox_id = mailboxes.id);
UPDATE accounts SET used_bytes = (SELECT coalesce(sum(mb.bytes), 0) FROM mailboxes mb WHERE mb.account_id = accounts.id);
`,
  },
  {
    // Each body's parsed MIME structure (mail/mime, JSON) and, lower-cased for SEARCH, its
    // decoded header lines and text, written at delivery in a table of their own so reading
    // them never walks a body's pages; the short header lines come first and the long text
    // last, as SQLite reads a row's columns in order. `parsed` = 0 marks bodies stored
    // before this; they are parsed when the store opens (sql/backfill-structures.ts). A
    // partial index finds a mailbox's first unseen message (IMAP SELECT) without a scan.
    version: 3,
    sql: `
ALTER TABLE blobs ADD COLUMN parsed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX blobs_unparsed ON blobs (hash) WHERE parsed = 0;
CREATE INDEX messages_unseen ON messages (mailbox_id, uid) WHERE seen = 0;
CREATE TABLE blob_structures (
  hash TEXT PRIMARY KEY REFERENCES blobs(hash) ON DELETE CASCADE,
  search_headers TEXT NOT NULL,
  structure TEXT NOT NULL,
  search_text TEXT NOT NULL
);
`,
  },
  {
    // The values of the header fields SEARCH has keys for, in short columns of their own
    // (sql/search-fields.ts), filled here from the stored header lines by the function the
    // connection registers (the same code delivery runs). WITHOUT ROWID: the rows are
    // small, and one B-tree instead of a table and its key's index costs a delivery less.
    version: 4,
    sql: `
CREATE TABLE blob_search (
  hash TEXT PRIMARY KEY REFERENCES blobs(hash) ON DELETE CASCADE,
  hdr_from TEXT,
  hdr_to TEXT,
  hdr_cc TEXT,
  hdr_bcc TEXT,
  hdr_subject TEXT
) WITHOUT ROWID;
INSERT INTO blob_search (hash, hdr_from, hdr_to, hdr_cc, hdr_bcc, hdr_subject)
SELECT hash, tern_header_values(search_headers, 'from'), tern_header_values(search_headers, 'to'), tern_header_values(search_headers, 'cc'),
  tern_header_values(search_headers, 'bcc'), tern_header_values(search_headers, 'subject')
FROM blob_structures;
`,
  },
  {
    // The outbound queue (sql/queue.ts): one entry per message and destination domain,
    // holding a reference on the body's blob, with per-recipient status, a lease for the
    // worker delivering it, and an event log per recipient that outlives the entry (trace).
    // state: queued (due at next_attempt_at), held (by an operator), bounce (every
    // recipient is final and the failures' DSN is still to be sent). And each domain's DKIM
    // keys (queue/dkim.ts): pending (published, not signing yet), active, retiring.
    version: 5,
    sql: `
CREATE TABLE queue (
  id INTEGER PRIMARY KEY,
  tern_id TEXT NOT NULL,
  blob_hash TEXT NOT NULL REFERENCES blobs(hash),
  prefix BLOB NOT NULL,
  envelope_from TEXT NOT NULL,
  domain TEXT NOT NULL,
  size INTEGER NOT NULL,
  state TEXT NOT NULL,
  is_bounce INTEGER NOT NULL DEFAULT 0,
  dsn_ret TEXT,
  dsn_envid TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  lease_owner TEXT,
  lease_until INTEGER,
  created_at INTEGER NOT NULL
);
CREATE INDEX queue_due ON queue (next_attempt_at) WHERE state = 'queued';
CREATE INDEX queue_domain ON queue (domain, id);
CREATE INDEX queue_state ON queue (state, id);
CREATE INDEX queue_sender ON queue (envelope_from, id);
CREATE INDEX queue_tern_id ON queue (tern_id);
CREATE INDEX queue_blob ON queue (blob_hash);
CREATE TABLE queue_recipients (
  queue_id INTEGER NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
  address TEXT NOT NULL,
  status TEXT NOT NULL,
  reply TEXT,
  notify TEXT,
  orcpt TEXT,
  PRIMARY KEY (queue_id, address)
);
CREATE INDEX queue_recipients_address ON queue_recipients (address);
CREATE TABLE queue_events (
  id INTEGER PRIMARY KEY,
  tern_id TEXT NOT NULL,
  queue_id INTEGER NOT NULL,
  recipient TEXT NOT NULL,
  at INTEGER NOT NULL,
  event TEXT NOT NULL,
  reply TEXT
);
CREATE INDEX queue_events_tern_id ON queue_events (tern_id, id);
CREATE INDEX queue_events_recipient ON queue_events (recipient, at);
CREATE TABLE dkim_keys (
  domain TEXT NOT NULL,
  selector TEXT NOT NULL,
  algorithm TEXT NOT NULL,
  private_key TEXT NOT NULL,
  public_key TEXT NOT NULL,
  state TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  activated_at INTEGER,
  retire_at INTEGER,
  PRIMARY KEY (domain, selector)
);
`,
  },
  {
    version: 6,
    sql: `
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  scopes TEXT NOT NULL,
  domain TEXT,
  description TEXT NOT NULL DEFAULT '',
  rate_per_minute INTEGER,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER,
  revoked_at INTEGER
);
CREATE INDEX api_keys_domain ON api_keys (domain);
ALTER TABLE queue_events ADD COLUMN sender TEXT;
CREATE TABLE idempotency (
  key_id TEXT NOT NULL,
  idem_key TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  status INTEGER,
  response TEXT,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (key_id, idem_key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);
CREATE TABLE suppressions (
  address TEXT PRIMARY KEY,
  source TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
);
`,
  },
  {
    version: 7,
    sql: `
CREATE TABLE webhooks (
  id TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  events TEXT NOT NULL,
  secret TEXT NOT NULL,
  domain TEXT,
  description TEXT NOT NULL DEFAULT '',
  enabled INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL
);
CREATE INDEX webhooks_domain ON webhooks (domain);
CREATE TABLE webhook_deliveries (
  id INTEGER PRIMARY KEY,
  webhook_id TEXT NOT NULL,
  event TEXT NOT NULL,
  payload TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  lease_until INTEGER,
  last_status INTEGER,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  finished_at INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at);
`,
  },
  {
    version: 8,
    sql: `
CREATE TABLE bans (
  address TEXT PRIMARY KEY,
  reason TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE greylist (
  triplet TEXT PRIMARY KEY,
  first_seen INTEGER NOT NULL,
  passed_at INTEGER,
  last_seen INTEGER NOT NULL
);
CREATE INDEX greylist_last_seen ON greylist (last_seen);
`,
  },
  {
    version: 9,
    sql: `
CREATE TABLE reports (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  domain TEXT NOT NULL,
  reporter TEXT NOT NULL,
  report_id TEXT NOT NULL,
  begin_at INTEGER NOT NULL,
  end_at INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  rows TEXT NOT NULL,
  UNIQUE (kind, reporter, report_id)
);
CREATE INDEX reports_domain ON reports (domain, end_at);
`,
  },
  {
    // The DMARC results of strangers' mail, counted per day, for the aggregate reports Tern sends (delivery/dmarc-reports.ts).
    version: 10,
    sql: `
CREATE TABLE dmarc_records (
  day TEXT NOT NULL,
  domain TEXT NOT NULL,
  result TEXT NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (day, domain, result)
);
CREATE TABLE dmarc_policies (
  day TEXT NOT NULL,
  domain TEXT NOT NULL,
  policy TEXT NOT NULL,
  PRIMARY KEY (day, domain)
);
`,
  },
  {
    // Message trace search (sql/trace.ts): the Message-ID and Subject on the events that start
    // a recipient's trace (queued for another host, stored in a local mailbox), looked up by
    // Message-ID and by sender; stored events have queue_id 0.
    version: 11,
    sql: `
ALTER TABLE queue_events ADD COLUMN message_id TEXT;
ALTER TABLE queue_events ADD COLUMN subject TEXT;
CREATE INDEX queue_events_message_id ON queue_events (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX queue_events_sender ON queue_events (sender, id) WHERE sender IS NOT NULL;
`,
  },
];
