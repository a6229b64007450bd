/**
 * What sessions of one process share about the mailboxes they have selected, so that a
 * change seen by thousands of sessions (IDLE on one INBOX) costs one store read, not one
 * per session:
 * - the uid list of a mailbox as of a mod-sequence (SELECT), shared by reference;
 * - the mailbox row, read once for every session that was told of the same commit;
 * - the changes and expunges since a mod-sequence, read once per (since, up to) pair.
 * Entries live for a few seconds at most. Keys carry the UIDVALIDITY as well as the id: a
 * database may give a deleted mailbox's id to a new one, never its UIDVALIDITY.
 */
import type { Expunged, FlagChange, Mailbox, Store } from '../store/store.js';
import { UidList } from './uid-list.js';

const KEEP_MS = 5_000;
const MAX_ENTRIES = 1_000;

interface Entry<T> {
  value: Promise<T>;
  startedAt: number;
}

export class MailboxViews {
  private readonly entries = new Map<string, Entry<unknown>>();

  constructor(private readonly store: Store) {}

  private memo<T>(key: string, load: () => Promise<T>, fresherThan = 0): Promise<T> {
    const now = performance.now();
    const hit = this.entries.get(key) as Entry<T> | undefined;
    if (hit && hit.startedAt >= fresherThan && now - hit.startedAt < KEEP_MS) return hit.value;
    if (this.entries.size >= MAX_ENTRIES) this.sweep(now);
    const value = load();
    this.entries.set(key, { value, startedAt: now });
    value.catch(() => this.entries.delete(key));
    return value;
  }

  private sweep(now: number): void {
    for (const [key, e] of this.entries) if (now - e.startedAt >= KEEP_MS) this.entries.delete(key);
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
  }

  /** The mailbox row, from a read started no earlier than `fresherThan` (performance.now()). */
  mailbox(mailbox: Mailbox, fresherThan: number): Promise<Mailbox | null> {
    return this.memo(`mailbox:${mailbox.id}:${mailbox.uidValidity}`, () => this.store.mailboxes.get(mailbox.accountId, mailbox.name), fresherThan);
  }

  /** The mailbox's uids as of `modseq` (its highest mod-sequence when read). */
  uids(mailbox: Mailbox): Promise<UidList> {
    return this.memo(`uids:${mailbox.id}:${mailbox.uidValidity}:${mailbox.highestModseq}:${mailbox.uidNext}`, async () =>
      UidList.from(await this.store.mailboxes.uids(mailbox.id)),
    );
  }

  /** Changes and (when asked) expunges above `since`, for a mailbox whose highest mod-sequence is now `upTo`. */
  changes(mailbox: Mailbox, since: number, upTo: number, expunges: boolean): Promise<{ changes: FlagChange[]; expunged: Expunged[] }> {
    return this.memo(`changes:${mailbox.id}:${mailbox.uidValidity}:${since}:${upTo}:${expunges}`, async () => {
      const [changes, expunged] = await Promise.all([
        this.store.mailboxes.changedSince(mailbox.id, since),
        expunges ? this.store.mailboxes.expungedSince(mailbox.id, since) : Promise.resolve([]),
      ]);
      return { changes, expunged };
    });
  }
}
