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

/** The places a user's Maildir may be in `tree`, most specific first. */
export function maildirCandidates(tree: string, user: Pick<ImportedUser, 'address' | 'maildir'>): string[] {
  const [local = '', domain = ''] = user.address.split('@');
  const out: string[] = [];
  if (user.maildir) {
    if (path.isAbsolute(user.maildir)) out.push(user.maildir);
    // The old path's tail under the copied tree: /var/vmail/example.org/alice/Maildir → TREE/example.org/alice/Maildir, …
    const parts = user.maildir.split('/').filter(Boolean);
    for (let k = parts.length; k >= 1; k--) out.push(path.join(tree, ...parts.slice(parts.length - k)));
  }
  out.push(
    path.join(tree, domain, local, 'Maildir'),
    path.join(tree, domain, local),
    path.join(tree, local, 'Maildir'),
    path.join(tree, user.address, 'Maildir'),
  );
  return [...new Set(out)];
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
  for (const user of o.users) {
    if (user.action === 'refused') continue;
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
    if (o.dryRun) {
      out.push({ address: user.address, maildir: found });
      continue;
    }
    out.push({ address: user.address, maildir: found, summary: await importMaildir(store, { dir: found, address: user.address }, progress(user.address)) });
  }
  return out;
}
