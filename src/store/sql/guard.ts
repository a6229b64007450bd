/**
 * Bans and greylisting in SQL both backends run: state every node shares, so a ban made
 * on one node refuses the client on all of them, and a greylisted sender may retry
 * through any node.
 */
import { NotFoundError } from '../../errors.js';
import type { Ban } from '../store.js';
import { one, type Row, type Sql } from './sql.js';

function toBan(r: Row): Ban {
  return { address: String(r.address), reason: String(r.reason), createdAt: new Date(Number(r.created_at)), expiresAt: new Date(Number(r.expires_at)) };
}

/** Greylist rows not seen for longer than keepMs are deleted about once in this many checks. */
const PURGE_ONE_IN = 500;

export const GUARD_OPS = {
  async addBan(sql: Sql, a: { address: string; reason: string; until: number; now: number }): Promise<Ban> {
    await sql.run('DELETE FROM bans WHERE expires_at <= ?', [a.now]);
    const rows = await sql.all(
      `INSERT INTO bans (address, reason, created_at, expires_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (address) DO UPDATE SET reason = excluded.reason,
         expires_at = CASE WHEN excluded.expires_at > bans.expires_at THEN excluded.expires_at ELSE bans.expires_at END
       RETURNING *`,
      [a.address, a.reason, a.now, a.until],
    );
    return toBan(rows[0]!);
  },

  async deleteBan(sql: Sql, a: { address: string; now: number }): Promise<void> {
    if ((await sql.run('DELETE FROM bans WHERE address = ? AND expires_at > ?', [a.address, a.now])) === 0)
      throw new NotFoundError(`${a.address} is not banned`);
  },

  async greylist(sql: Sql, a: { triplet: string; now: number; delayMs: number; retryMs: number; keepMs: number }): Promise<{ pass: boolean; waitMs: number }> {
    if (Math.random() * PURGE_ONE_IN < 1) await sql.run('DELETE FROM greylist WHERE last_seen < ?', [a.now - a.keepMs]);
    const r = await one(sql, 'SELECT first_seen, passed_at, last_seen FROM greylist WHERE triplet = ?', [a.triplet]);
    const passed = r?.passed_at == null ? null : Number(r.passed_at);
    const stale = !r || (passed === null ? a.now - Number(r.first_seen) > a.retryMs : a.now - Number(r.last_seen) > a.keepMs);
    if (stale) {
      await sql.run(
        `INSERT INTO greylist (triplet, first_seen, passed_at, last_seen) VALUES (?, ?, NULL, ?)
         ON CONFLICT (triplet) DO UPDATE SET first_seen = excluded.first_seen, passed_at = NULL, last_seen = excluded.last_seen`,
        [a.triplet, a.now, a.now],
      );
      return { pass: false, waitMs: a.delayMs };
    }
    const waited = a.now - Number(r.first_seen);
    if (passed === null && waited < a.delayMs) return { pass: false, waitMs: a.delayMs - waited };
    await sql.run('UPDATE greylist SET passed_at = COALESCE(passed_at, ?), last_seen = ? WHERE triplet = ?', [a.now, a.now, a.triplet]);
    return { pass: true, waitMs: 0 };
  },
} as const;

export function createGuardReads(sql: Sql) {
  return {
    async listBans(now: number): Promise<Ban[]> {
      return (await sql.all('SELECT * FROM bans WHERE expires_at > ? ORDER BY created_at, address', [now])).map(toBan);
    },
  };
}
