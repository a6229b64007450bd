/**
 * Maildir delivery mode: the accounts of a domain set to it (`tern domain maildir DOMAIN
 * DIR`, admin/maildir.ts) get their mail written to `DIR/<domain>/<local part>/Maildir`
 * (tmp → fsync → rename into new/ → fsync new/) for Courier IMAP or Dovecot to serve,
 * instead of the database. Local delivery asks here for every message, so SMTP, LMTP,
 * submission, the HTTP API and `tern send` all follow it; the copy is durable before the
 * reply that accepts it. Each copy is the trace prefix and the body, as the database would
 * have stored it.
 *
 * The domains in Maildir mode and their accounts are read every 5 s (nothing more when no
 * domain is in that mode), so a change reaches a running server within 5 s. When the server
 * runs as root, what it creates belongs to the owner of the nearest directory that exists
 * on its path (make each user's home, owned by the user Dovecot runs as, and Dovecot can
 * read and change the Maildir).
 */
import { stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { MAILDIR_SETTING_PREFIX } from '../admin/maildir.js';
import { StoreUnavailableError } from '../errors.js';
import { deliverToMaildir } from '../mail/maildir-files.js';
import type { DeliveryOutcome, NewDelivery, Store } from '../store/store.js';

const REFRESH_MS = 5000;

export interface MaildirTarget {
  /**
   * Writes the copies of `delivery`'s recipients whose domain is in Maildir mode; returns
   * their outcomes by recipient index and the delivery left for the database (null when
   * nothing is left). Throws StoreUnavailableError when a Maildir cannot be written.
   */
  take(delivery: NewDelivery): Promise<{ written: Map<number, DeliveryOutcome>; rest: NewDelivery | null }>;
}

/** A local part as one safe path component. */
const pathPart = (s: string) => s.replace(/%/g, '%25').replace(/\//g, '%2F').replace(/^\./, '%2E');

export function maildirOf(root: string, address: string): string {
  const at = address.lastIndexOf('@');
  return join(root, pathPart(address.slice(at + 1)), pathPart(address.slice(0, at)), 'Maildir');
}

export function createMaildirTarget(store: Store): MaildirTarget {
  let routes = new Map<number, { root: string; address: string }>();
  let readAt = 0;
  let reading: Promise<void> | null = null;

  async function refresh(): Promise<void> {
    const settings = await store.directory.listSettings(MAILDIR_SETTING_PREFIX);
    const next = new Map<number, { root: string; address: string }>();
    for (const s of settings) {
      for (const a of await store.directory.listAccounts(s.key.slice(MAILDIR_SETTING_PREFIX.length))) next.set(a.id, { root: s.value, address: a.address });
    }
    routes = next;
    readAt = Date.now();
  }

  async function current(): Promise<typeof routes> {
    if (Date.now() - readAt >= REFRESH_MS) {
      reading ??= refresh().finally(() => (reading = null));
      await reading;
    }
    return routes;
  }

  /** Run as root, what is created belongs to the owner of the nearest directory that exists on the way (the user's home, say). */
  async function owner(dir: string, root: string): Promise<{ uid: number; gid: number } | undefined> {
    if (process.getuid?.() !== 0) return undefined;
    for (let at = dir; ; at = dirname(at)) {
      const s = await stat(at).catch(() => null);
      if (s) return { uid: s.uid, gid: s.gid };
      if (at === root || dirname(at) === at) return undefined;
    }
  }

  return {
    async take(delivery) {
      const map = await current();
      const written = new Map<number, DeliveryOutcome>();
      if (map.size === 0) return { written, rest: delivery };
      const rest = delivery.recipients.filter((r) => !map.has(r.accountId));
      const done = new Set<number>();
      for (const [i, r] of delivery.recipients.entries()) {
        const route = map.get(r.accountId);
        if (!route) continue;
        if (!done.has(r.accountId)) {
          const dir = maildirOf(route.root, route.address);
          try {
            await deliverToMaildir(
              dir,
              (async function* () {
                if (r.prefix.length > 0) yield r.prefix;
                yield* store.blobs.staged(delivery.blob);
              })(),
              delivery.internalDate,
              await owner(dir, route.root),
            );
          } catch (err) {
            throw new StoreUnavailableError(`cannot write the Maildir of ${route.address}: ${(err as Error).message}`);
          }
          done.add(r.accountId);
        }
        written.set(i, { status: 'stored', accountId: r.accountId, mailboxId: 0, messageId: 0, uid: 0, modseq: 0 });
      }
      if (written.size === 0) return { written, rest: delivery };
      const left = rest.length > 0 || Boolean(delivery.outbound?.domains.length);
      if (!left && 'upload' in delivery.blob) await store.blobs.discard(delivery.blob.upload);
      return { written, rest: left ? { ...delivery, recipients: rest } : null };
    },
  };
}
