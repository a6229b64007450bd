/**
 * A legacy Dovecot/Postfix (or cPanel) host's mail, user by user, after its users were
 * imported (admin/legacy-users.ts): `tern import-maildir TREE --users PASSWD-FILE`. Each
 * user's Maildir is found in TREE, a copy of the old host's mail tree: at the path the
 * passwd-file gives (`userdb_mail` or `HOME/Maildir`), or that path's tail under TREE,
 * or the usual layouts (`TREE/DOMAIN/USER/Maildir`, `TREE/DOMAIN/USER`, `TREE/USER/Maildir`).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { importMaildir } from '../delivery/maildir-transfer.js';
import { quietProgress, type TransferProgress, type TransferSummary } from '../delivery/transfer.js';
import { isMaildir } from '../mail/maildir-files.js';
import type { Store } from '../store/store.js';
import type { ImportedUser } from './legacy-users.js';

/**
 * The places a user's Maildir may be, most specific first: the mail location the passwd-file
 * gives, then its tails under `tree` down to the last two parts (`…/alice/Maildir`), then the
 * usual layouts. Paths that would leave `tree` are dropped (except the given location itself).
 */
export function maildirCandidates(tree: string, user: Pick<ImportedUser, 'address' | 'maildir'>): string[] {
  const [local = '', domain = ''] = user.address.split('@');
  const root = path.resolve(tree);
  const inside = (p: string) => p.startsWith(root + path.sep);
  const out: string[] = [];
  if (user.maildir) {
    if (path.isAbsolute(user.maildir)) out.push(path.normalize(user.maildir));
    // The old path's tail under the copied tree: /var/vmail/example.org/alice/Maildir → TREE/example.org/alice/Maildir, …
    const parts = user.maildir.split('/').filter((p) => p && p !== '.' && p !== '..');
    for (let k = parts.length; k >= 2; k--) out.push(path.join(root, ...parts.slice(parts.length - k)));
  }
  const usual = [
    path.join(root, domain, local, 'Maildir'),
    path.join(root, domain, local),
    path.join(root, local, 'Maildir'),
    path.join(root, user.address, 'Maildir'),
  ];
  return [...new Set([...out.slice(0, user.maildir && path.isAbsolute(user.maildir) ? 1 : 0), ...[...out, ...usual].filter(inside)])];
}

export interface UserMail {
  address: string;
  maildir: string | null;
  summary?: TransferSummary;
  reason?: string;
}

/** Finds each user's Maildir in `tree` and imports it into the account (or, with dryRun, only finds it). */
export async function importLegacyMail(
  store: Store,
  o: { tree: string; users: ImportedUser[]; dryRun?: boolean },
  progress: (address: string) => TransferProgress = () => quietProgress,
): Promise<UserMail[]> {
  const out: UserMail[] = [];
  const claimed = new Map<string, string>();
  for (const user of o.users) {
    if (user.action === 'refused') continue;
    // An account that was there before this run keeps its mail: importing it again would add every message twice.
    if (user.action === 'kept') {
      out.push({
        address: user.address,
        maildir: null,
        reason: 'the account was already there: its mail is not imported again (tern import-maildir DIR --to ADDRESS imports a Maildir into it)',
      });
      continue;
    }
    const candidates = maildirCandidates(o.tree, user);
    let found: string | null = null;
    for (const c of candidates) {
      if (existsSync(c) && (await isMaildir(c))) {
        found = c;
        break;
      }
    }
    if (!found) {
      out.push({ address: user.address, maildir: null, reason: `no Maildir found (looked in ${candidates.slice(0, 4).join(', ')}…)` });
      continue;
    }
    const owner = claimed.get(found);
    if (owner) {
      out.push({ address: user.address, maildir: null, reason: `the Maildir found, ${found}, is ${owner}'s: not imported twice` });
      continue;
    }
    claimed.set(found, user.address);
    if (o.dryRun) {
      out.push({ address: user.address, maildir: found });
      continue;
    }
    out.push({ address: user.address, maildir: found, summary: await importMaildir(store, { dir: found, address: user.address }, progress(user.address)) });
  }
  return out;
}
