/**
 * Maildir delivery per domain: where mail for a domain's accounts is written instead of the
 * database (delivery/maildir-target.ts), kept in the settings table as `maildir:<domain>` →
 * the root directory. Only site administrators may set it: it makes the server write files
 * under a path of their choosing.
 */
import { isAbsolute } from 'node:path';
import { UserError } from '../errors.js';
import type { DirectoryStore } from '../store/store.js';
import { requireSiteAdmin, type Actor } from './actor.js';
import { existingDomain } from './domains.js';

export const MAILDIR_SETTING_PREFIX = 'maildir:';

/** The Maildir root of `domain`'s deliveries; null when its mail goes to the database. */
export async function maildirDelivery(directory: DirectoryStore, actor: Actor, domain: string): Promise<string | null> {
  return directory.getSetting(MAILDIR_SETTING_PREFIX + (await existingDomain(directory, actor, domain)));
}

/** Sends `domain`'s mail to Maildirs under `root` (an absolute path), or back to the database (null). A running server follows within 5 s. */
export async function setMaildirDelivery(directory: DirectoryStore, actor: Actor, domain: string, root: string | null): Promise<string | null> {
  requireSiteAdmin(actor, 'Maildir delivery');
  const name = await existingDomain(directory, actor, domain);
  if (root === null) {
    if (await directory.getSetting(MAILDIR_SETTING_PREFIX + name)) await directory.deleteSetting(MAILDIR_SETTING_PREFIX + name);
    return null;
  }
  if (!isAbsolute(root)) throw new UserError(`the Maildir root must be an absolute path, got ${JSON.stringify(root)}`);
  await directory.setSetting(MAILDIR_SETTING_PREFIX + name, root);
  return root;
}
