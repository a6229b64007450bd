/**
 * Imports (Maildir, mbox): readying a mailbox so an import may keep the source's UIDVALIDITY
 * and uids, and raising UIDNEXT afterwards. The messages themselves go in as ordinary
 * deliveries (sql/deliver.ts, with `DeliveryRecipient.uid`), so bodies, structures, counters
 * and quota are handled exactly as for mail that arrives.
 *
 * UIDs are only taken from the source while no client can have seen the mailbox's own: it is
 * new, or holds no message (RFC 3501 2.3.1.1 lets a mailbox change its UIDVALIDITY; with a
 * new one, uids start again).
 */
import { NotFoundError } from '../../errors.js';
import type { Mailbox } from '../store.js';
import { toMailbox } from './rows.js';
import { one, type Sql } from './sql.js';

const isUidValidity = (n: number | null): n is number => n !== null && Number.isInteger(n) && n > 0 && n < 2 ** 32;

export const IMPORT_OPS = {
  async prepareImport(
    sql: Sql,
    a: { accountId: number; name: string; uidValidity: number | null; lowestUid?: number; specialUse?: string | null },
  ): Promise<{ mailbox: Mailbox; created: boolean; keepUids: boolean }> {
    if (sql.dialect === 'postgres') await sql.all('SELECT id FROM accounts WHERE id = ? FOR UPDATE', [a.accountId]);
    if (!(await one(sql, 'SELECT 1 AS x FROM accounts WHERE id = ?', [a.accountId]))) throw new NotFoundError(`account ${a.accountId} does not exist`);
    const given = isUidValidity(a.uidValidity) ? a.uidValidity : null;
    // The counter new mailboxes take their UIDVALIDITY from must pass the source's, or a mailbox made later could repeat it.
    if (given !== null) await sql.run("UPDATE counters SET value = CASE WHEN value < ? THEN ? ELSE value END WHERE name = 'uidvalidity'", [given, given]);
    const existing = await one(sql, `SELECT * FROM mailboxes WHERE account_id = ? AND name = ?${sql.dialect === 'postgres' ? ' FOR UPDATE' : ''}`, [
      a.accountId,
      a.name,
    ]);
    if (!existing) {
      const uidValidity = given ?? Number((await one(sql, "UPDATE counters SET value = value + 1 WHERE name = 'uidvalidity' RETURNING value"))!.value);
      const row = (await one(sql, 'INSERT INTO mailboxes (account_id, name, special_use, uidvalidity) VALUES (?, ?, ?, ?) RETURNING *', [
        a.accountId,
        a.name,
        a.specialUse ?? null,
        uidValidity,
      ]))!;
      await sql.run('INSERT INTO subscriptions (account_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING', [a.accountId, a.name]);
      return { mailbox: toMailbox(row), created: true, keepUids: given !== null };
    }
    const mailbox = toMailbox(existing);
    if (given === null || mailbox.messages > 0) return { mailbox, created: false, keepUids: false };
    if (given === mailbox.uidValidity) {
      // Same UIDVALIDITY: uids it has given out must not come back.
      return { mailbox, created: false, keepUids: (a.lowestUid ?? 1) >= mailbox.uidNext };
    }
    const row = (await one(sql, 'UPDATE mailboxes SET uidvalidity = ?, uidnext = 1 WHERE id = ? RETURNING *', [given, mailbox.id]))!;
    // Tombstones of the old UIDVALIDITY mean nothing under the new one (QRESYNC).
    await sql.run('DELETE FROM expunged WHERE mailbox_id = ?', [mailbox.id]);
    return { mailbox: toMailbox(row), created: false, keepUids: true };
  },

  async finishImport(sql: Sql, a: { mailboxId: number; uidNext: number }): Promise<Mailbox> {
    await sql.run('UPDATE mailboxes SET uidnext = ? WHERE id = ? AND uidnext < ?', [a.uidNext, a.mailboxId, a.uidNext]);
    const row = await one(sql, 'SELECT * FROM mailboxes WHERE id = ?', [a.mailboxId]);
    if (!row) throw new NotFoundError(`mailbox ${a.mailboxId} does not exist`);
    return toMailbox(row);
  },
} as const;
