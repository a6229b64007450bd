/**
 * \Recent (RFC 3501 2.3.2): a message is recent in the first session that sees it with the
 * mailbox selected read-write. Kept per process, as the highest uid each mailbox has handed
 * out as recent; a restart forgets it (IMAP4rev2 dropped \Recent for this reason).
 */
export class RecentTracker {
  private readonly claimed = new Map<number, number>();

  /** Claims the uids above the mailbox's mark for the caller; returns them. `uids` ascend. */
  claim(mailboxId: number, uids: readonly number[]): number[] {
    const mark = this.claimed.get(mailboxId) ?? 0;
    const last = uids[uids.length - 1] ?? 0;
    if (last <= mark) return [];
    this.claimed.set(mailboxId, last);
    let i = uids.length;
    while (i > 0 && uids[i - 1]! > mark) i--;
    return uids.slice(i);
  }

  /** How many of `uids` nobody has claimed yet (STATUS RECENT, EXAMINE). */
  unclaimed(mailboxId: number, uids: readonly number[]): number {
    const mark = this.claimed.get(mailboxId) ?? 0;
    let n = 0;
    for (let i = uids.length - 1; i >= 0 && uids[i]! > mark; i--) n++;
    return n;
  }
}
