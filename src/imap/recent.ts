/**
 * \Recent (RFC 3501 2.3.2): a message is recent in the first session that sees it with the
 * mailbox selected read-write. Kept per process, as the highest uid each mailbox has handed
 * out as recent; a restart forgets it (IMAP4rev2 dropped \Recent for this reason). Keyed by
 * mailbox id and UIDVALIDITY: a deleted mailbox's id may be given to a new one.
 */
import type { Mailbox } from '../store/store.js';
import { UidList } from './uid-list.js';

type MailboxKey = Pick<Mailbox, 'id' | 'uidValidity'>;

export class RecentTracker {
  private readonly claimed = new Map<string, number>();

  /** Claims the uids above the mailbox's mark for the caller; returns them. */
  claim(mailbox: MailboxKey, uids: UidList | readonly number[]): number[] {
    const key = `${mailbox.id}:${mailbox.uidValidity}`;
    const mark = this.claimed.get(key) ?? 0;
    const above = uids instanceof UidList ? uids.slice(uids.lowerBound(mark + 1), uids.length) : uids.filter((u) => u > mark);
    if (above.length === 0) return [];
    this.claimed.set(key, above[above.length - 1]!);
    return above;
  }

  /** How many of `uids` nobody has claimed yet (STATUS RECENT, EXAMINE). */
  unclaimed(mailbox: MailboxKey, uids: UidList): number {
    return uids.length - uids.lowerBound((this.claimed.get(`${mailbox.id}:${mailbox.uidValidity}`) ?? 0) + 1);
  }
}
