/**
 * Logical integrity checks shared by every backend: plain SQL that runs unchanged on
 * SQLite and PostgreSQL. Besides uids and modseqs, they check that every maintained
 * counter (mailbox messages/unseen/bytes, account used bytes, blob reference counts from
 * messages and queue entries)
 * matches the rows it counts. Each row a check returns is one problem, described for people.
 * Backends add their own engine checks (e.g. SQLite's PRAGMA integrity_check) on top.
 */

export interface IntegrityCheck {
  sql: string;
  describe(row: Record<string, unknown>): string;
}

const LIMIT = 100; // enough to see what is wrong without flooding the report

export const INTEGRITY_CHECKS: ReadonlyArray<IntegrityCheck> = [
  {
    sql: `SELECT m.id, m.blob_hash FROM messages m
          WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.hash = m.blob_hash)
          ORDER BY m.id LIMIT ${LIMIT}`,
    describe: (r) => `message ${String(r.id)} references missing blob ${String(r.blob_hash)}`,
  },
  {
    sql: `SELECT mailbox_id, uid, count(*) AS n FROM messages
          GROUP BY mailbox_id, uid HAVING count(*) > 1
          ORDER BY mailbox_id, uid LIMIT ${LIMIT}`,
    describe: (r) => `mailbox ${String(r.mailbox_id)} has ${String(r.n)} messages with uid ${String(r.uid)}`,
  },
  {
    sql: `SELECT mb.id, a.address, mb.name, mb.uidnext, max(m.uid) AS max_uid
          FROM mailboxes mb JOIN accounts a ON a.id = mb.account_id JOIN messages m ON m.mailbox_id = mb.id
          GROUP BY mb.id, a.address, mb.name, mb.uidnext HAVING mb.uidnext <= max(m.uid)
          ORDER BY mb.id LIMIT ${LIMIT}`,
    describe: (r) => `mailbox ${String(r.id)} (${String(r.address)} ${String(r.name)}) has uidnext ${String(r.uidnext)} but holds uid ${String(r.max_uid)}`,
  },
  {
    sql: `SELECT mb.id, a.address, mb.name, mb.highestmodseq, max(m.modseq) AS max_modseq
          FROM mailboxes mb JOIN accounts a ON a.id = mb.account_id JOIN messages m ON m.mailbox_id = mb.id
          GROUP BY mb.id, a.address, mb.name, mb.highestmodseq HAVING mb.highestmodseq < max(m.modseq)
          ORDER BY mb.id LIMIT ${LIMIT}`,
    describe: (r) =>
      `mailbox ${String(r.id)} (${String(r.address)} ${String(r.name)}) has highestmodseq ${String(r.highestmodseq)} but holds modseq ${String(r.max_modseq)}`,
  },
  {
    sql: `SELECT mb.id, mb.name, mb.messages, mb.unseen, mb.bytes, count(m.id) AS n, coalesce(sum(1 - m.seen), 0) AS u, coalesce(sum(m.size), 0) AS b
          FROM mailboxes mb LEFT JOIN messages m ON m.mailbox_id = mb.id
          GROUP BY mb.id, mb.name, mb.messages, mb.unseen, mb.bytes
          HAVING mb.messages <> count(m.id) OR mb.unseen <> coalesce(sum(1 - m.seen), 0) OR mb.bytes <> coalesce(sum(m.size), 0)
          ORDER BY mb.id LIMIT ${LIMIT}`,
    describe: (r) =>
      `mailbox ${String(r.id)} (${String(r.name)}) counts ${String(r.messages)}/${String(r.unseen)}/${String(r.bytes)} (messages/unseen/bytes) but holds ${String(r.n)}/${String(r.u)}/${String(r.b)}`,
  },
  {
    sql: `SELECT a.address, a.used_bytes, coalesce(sum(m.size), 0) AS b
          FROM accounts a LEFT JOIN mailboxes mb ON mb.account_id = a.id LEFT JOIN messages m ON m.mailbox_id = mb.id
          GROUP BY a.id, a.address, a.used_bytes HAVING a.used_bytes <> coalesce(sum(m.size), 0)
          ORDER BY a.address LIMIT ${LIMIT}`,
    describe: (r) => `account ${String(r.address)} counts ${String(r.used_bytes)} bytes used but holds ${String(r.b)}`,
  },
  {
    sql: `SELECT b.hash, b.refcount, n FROM (
            SELECT hash, refcount, (SELECT count(*) FROM messages m WHERE m.blob_hash = blobs.hash) + (SELECT count(*) FROM queue q WHERE q.blob_hash = blobs.hash) AS n
            FROM blobs) b
          WHERE b.refcount <> b.n
          ORDER BY b.hash LIMIT ${LIMIT}`,
    describe: (r) => `blob ${String(r.hash)} has reference count ${String(r.refcount)} but ${String(r.n)} references`,
  },
  {
    sql: `SELECT q.id, q.blob_hash FROM queue q
          WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.hash = q.blob_hash)
          ORDER BY q.id LIMIT ${LIMIT}`,
    describe: (r) => `queue entry ${String(r.id)} references missing blob ${String(r.blob_hash)}`,
  },
  {
    sql: `SELECT b.hash, b.size, (SELECT coalesce(sum(length(c.data)), 0) FROM blob_chunks c WHERE c.upload = b.upload) AS stored
          FROM blobs b WHERE b.upload IS NOT NULL
          AND b.size <> (SELECT coalesce(sum(length(c.data)), 0) FROM blob_chunks c WHERE c.upload = b.upload)
          ORDER BY b.hash LIMIT ${LIMIT}`,
    describe: (r) => `blob ${String(r.hash)} has size ${String(r.size)} but its chunks hold ${String(r.stored)} bytes`,
  },
];
