/**
 * The selected mailbox of one session: the uid list that gives sequence numbers (shared
 * with other sessions while it is the same, see uid-list.ts), the mod-sequence this
 * session has caught up to, its \Recent uids, and the sync that turns what other sessions
 * (and deliveries) changed into untagged EXISTS / EXPUNGE / VANISHED / FETCH responses.
 * Expunges are held back while a FETCH, STORE or SEARCH runs (RFC 3501 7.4.1) and
 * reported at the next command that allows them.
 */
import type { Mailbox } from '../store/store.js';
import type { MailboxViews } from './mailbox-views.js';
import { formatSequenceSet } from './proto/sequence-set.js';
import type { UidList } from './uid-list.js';

export interface SyncOptions {
  /** EXPUNGE/VANISHED may be sent now. */
  expunges: boolean;
  condstore: boolean;
  qresync: boolean;
  /** Only a mailbox row read after this moment (performance.now()) will do. */
  fresherThan: number;
}

export class SelectedMailbox {
  /** Uids in sequence order: uids.at(seq - 1). */
  uids: UidList;
  readonly recent: Set<number>;
  /** Highest modseq whose changes this session has reported. */
  knownModseq: number;
  /** Mod-sequences this session's own commands produced (their answers already told the client). */
  private readonly own = new Set<number>();

  constructor(
    readonly mailbox: Mailbox,
    readonly readOnly: boolean,
    uids: UidList,
    recent: number[],
  ) {
    this.uids = uids;
    this.recent = new Set(recent);
    this.knownModseq = mailbox.highestModseq;
  }

  get id(): number {
    return this.mailbox.id;
  }

  get exists(): number {
    return this.uids.length;
  }

  /** The highest uid in the session's view (0 when empty). */
  get lastUid(): number {
    return this.uids.last;
  }

  /** Sequence number of `uid` (1-based), or 0 when it is not in the session's view. */
  seqOf(uid: number): number {
    return this.uids.indexOf(uid) + 1;
  }

  /** Remembers a modseq produced by this session, so the next sync does not repeat it. */
  noteOwn(modseq: number): void {
    this.own.add(modseq);
  }

  /** Removes uids from the view; returns their sequence numbers, highest first (the order to announce them). */
  removeOwn(uids: number[]): number[] {
    const { list, removed } = this.uids.without(new Set(uids));
    this.uids = list;
    for (const u of uids) this.recent.delete(u);
    return removed.map((i) => i + 1).reverse();
  }

  /** Untagged lines for what changed since this session last looked. */
  async sync(views: MailboxViews, claimRecent: (uids: number[]) => number[], opts: SyncOptions): Promise<string[]> {
    const fresh = await views.mailbox(this.mailbox, opts.fresherThan);
    // Gone, or another mailbox by now (deleted and created again under its name): nothing to report.
    if (!fresh || fresh.id !== this.mailbox.id || fresh.uidValidity !== this.mailbox.uidValidity || fresh.highestModseq <= this.knownModseq) return [];
    const { changes, expunged } = await views.changes(this.mailbox, this.knownModseq, fresh.highestModseq, opts.expunges);
    const lines: string[] = [];
    if (opts.expunges) {
      const gone = expunged.map((e) => e.uid).filter((u) => this.seqOf(u) > 0);
      if (gone.length > 0) {
        const seqs = this.removeOwn(gone);
        if (opts.qresync) lines.push(`VANISHED ${formatSequenceSet([...gone].sort((a, b) => a - b))}`);
        else for (const s of seqs) lines.push(`${s} EXPUNGE`);
      }
    }
    const last = this.uids.last;
    const added = changes.filter((c) => c.uid > last).map((c) => c.uid);
    if (added.length > 0) {
      this.uids = this.uids.appended(added);
      for (const u of claimRecent(added)) this.recent.add(u);
      lines.push(`${this.uids.length} EXISTS`, `${this.recent.size} RECENT`);
    }
    for (const c of changes) {
      if (c.uid > last || this.own.has(c.modseq)) continue;
      const seq = this.seqOf(c.uid);
      if (seq === 0) continue;
      const flags = this.recent.has(c.uid) ? [...c.flags, '\\Recent'] : c.flags;
      const extra = `${opts.qresync ? ` UID ${c.uid}` : ''}${opts.condstore ? ` MODSEQ (${c.modseq})` : ''}`;
      lines.push(`${seq} FETCH (FLAGS (${flags.join(' ')})${extra})`);
    }
    // Without expunges reported, the next sync must look at them again from the same point.
    if (opts.expunges) {
      this.knownModseq = fresh.highestModseq;
      this.own.clear();
    }
    return lines;
  }
}
