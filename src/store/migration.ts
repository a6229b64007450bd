/**
 * Schema upgrades of an existing site, the same on both backends: a snapshot first (taken
 * by the caller, store/open.ts), then every pending migration in one transaction, so a
 * failure leaves the site as it was and the error says where the snapshot is.
 */
import { UserError } from '../errors.js';

/** Takes a snapshot before the schema goes from `from` to `to`; returns its path. */
export type BeforeMigrate = (from: number, to: number) => Promise<string>;

export function migrationFailed(from: number, to: number, snapshot: string | null, err: unknown): UserError {
  const why = err instanceof Error ? err.message : String(err);
  const kept = snapshot ? `; a snapshot taken before the upgrade is at ${snapshot} (tern restore)` : '';
  return new UserError(`upgrading the database from schema ${from} to ${to} failed (${why}); nothing was changed, the site is still at schema ${from}${kept}`);
}
