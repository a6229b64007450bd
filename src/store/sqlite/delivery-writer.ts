/**
 * The SQLite delivery transaction: one blob row (once per SHA-256) and one message row
 * per recipient account, uid/modseq taken from the account's INBOX. If no recipient
 * account exists any more, the delivery throws and its transaction rolls back. A whole group-commit
 * batch is one IMMEDIATE transaction, so one fsync covers all of it.
 */
import type Database from 'better-sqlite3';
import type { Row } from '../rows.js';
import type { DeliveredEntry, NewDelivery } from '../store.js';


export function createDeliveryWriter(db: Database.Database): (batch: NewDelivery[]) => DeliveredEntry[][] {
  const insertBlob = db.prepare('INSERT INTO blobs (hash, size, data, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING');
  const bump = db.prepare(
    "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1 WHERE account_id = ? AND name = 'INBOX' RETURNING id, uidnext - 1 AS uid, highestmodseq",
  );
  const insertMessage = db.prepare(
    'INSERT INTO messages (mailbox_id, uid, modseq, internal_date, size, blob_hash, tern_id, envelope_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const write = db.transaction((batch: NewDelivery[]) =>
    batch.map((d) => {
      insertBlob.run(d.hash, d.blob.length, d.blob, d.internalDate.getTime());
      const entries: DeliveredEntry[] = [];
      for (const accountId of d.accountIds) {
        // An account deleted since RCPT is skipped; the others still get the message.
        const mb = bump.get(accountId) as Row | undefined;
        if (!mb) continue;
        insertMessage.run(mb.id, mb.uid, mb.highestmodseq, d.internalDate.getTime(), d.blob.length, d.hash, d.ternId, d.envelopeFrom);
        entries.push({ accountId, mailboxId: Number(mb.id), uid: Number(mb.uid), modseq: Number(mb.highestmodseq) });
      }
      if (entries.length === 0) throw Object.assign(new Error('no recipient account exists any more'), { code: 'TERN_NO_ACCOUNT' });
      return entries;
    }),
  );
  return (batch) => write.immediate(batch);
}
