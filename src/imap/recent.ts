/**
 * \Recent (RFC 3501 2.3.2): a message is recent in the first session that sees it with the
 * mailbox selected read-write. Kept per process, as the highest uid each mailbox has handed
 * out as recent; a restart forgets it (IMAP4rev2 dropped \Recent for this reason).
 */
import type { UidList } from './uid-list.js';

export class RecentTracker {
  private readonly claimed = new Map<number, number>();

  /** Claims the uids above the mailbox's mark for the caller; returns them. */
  claim(mailboxId: number, uids: UidList | readonly number[]): number[] {
    const mark = this.claimed.get(mailboxId) ?? 0;
    const list = Array.isArray(uids) ? uids : null;
    const last = list ? (list[list.length - 1] ?? 0) : (uids as UidList).last;
    if (last <= mark) return [];
    this.claimed.set(mailboxId, last);
    if (list) return list.filter((u) => u > mark);
    const l = uids as UidList;
    return l.slice(l.lowerBound(mark + 1), l.length);
  }

  /** How many of `uids` nobody has claimed yet (STATUS RECENT, EXAMINE). */
  unclaimed(mailboxId: number, uids: UidList): number {
    return uids.length - uids.lowerBound((this.claimed.get(mailboxId) ?? 0) + 1);
  }
}
