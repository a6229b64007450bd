/**
 * Logical integrity checks shared by every backend: plain SQL that runs unchanged on
 * SQLite and PostgreSQL. Each row a check returns is one problem, described for people.
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
    describe: (r) =>
      `mailbox ${String(r.id)} (${String(r.address)} ${String(r.name)}) has uidnext ${String(r.uidnext)} but holds uid ${String(r.max_uid)}`,
  },
  {
    sql: `SELECT mb.id, a.address, mb.name, mb.highestmodseq, max(m.modseq) AS max_modseq
          FROM mailboxes mb JOIN accounts a ON a.id = mb.account_id JOIN messages m ON m.mailbox_id = mb.id
          GROUP BY mb.id, a.address, mb.name, mb.highestmodseq HAVING mb.highestmodseq < max(m.modseq)
          ORDER BY mb.id LIMIT ${LIMIT}`,
    describe: (r) =>
      `mailbox ${String(r.id)} (${String(r.address)} ${String(r.name)}) has highestmodseq ${String(r.highestmodseq)} but holds modseq ${String(r.max_modseq)}`,
  },
];
