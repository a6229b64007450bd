/** EXPUNGE, UID EXPUNGE (UIDPLUS), CLOSE, UNSELECT (RFC 3691) and CHECK. */
import { ImapNo } from '../errors.js';
import { parseSequenceSet, formatSequenceSet, inSet } from '../proto/sequence-set.js';
import type { SelectedMailbox } from '../selected.js';
import type { ImapSession } from '../session.js';
import { accountOf, SELECTED, selectedOf, type Command } from './context.js';

/** Tells the client about messages this session removed: EXPUNGE by sequence number, or VANISHED with QRESYNC. */
export function announceExpunged(session: ImapSession, selected: SelectedMailbox, uids: number[]): void {
  const present = uids.filter((u) => selected.seqOf(u) > 0).sort((a, b) => a - b);
  const seqs = selected.removeOwn(present);
  if (session.qresync) {
    if (present.length > 0) session.untagged(`VANISHED ${formatSequenceSet(present)}`);
  } else for (const s of seqs) session.untagged(`${s} EXPUNGE`);
}

async function expungeDeleted(session: ImapSession, selected: SelectedMailbox, only: ((uid: number) => boolean) | null): Promise<number[]> {
  const deleted = (await session.deps.store.mailboxes.deletedUids(selected.id)).filter((u) => !only || only(u));
  if (deleted.length === 0) return [];
  const gone = await session.deps.store.mailboxes.expunge(selected.id, deleted);
  for (const e of gone) selected.noteOwn(e.modseq);
  return gone.map((e) => e.uid);
}

export const EXPUNGE_COMMANDS: Record<string, Command> = {
  EXPUNGE: {
    states: SELECTED,
    async run(ctx) {
      const { session, args } = ctx;
      const selected = selectedOf(ctx);
      const set = ctx.uid ? parseSequenceSet(args.atom('uid set')) : null;
      args.end();
      if (selected.readOnly) throw new ImapNo('READ-ONLY', 'Mailbox is read-only');
      const largest = selected.lastUid;
      const gone = await expungeDeleted(session, selected, set ? (u) => inSet(set, u, largest) : null);
      announceExpunged(session, selected, gone);
    },
  },
  CLOSE: {
    states: SELECTED,
    async run(ctx) {
      ctx.args.end();
      const selected = selectedOf(ctx);
      if (!selected.readOnly) await expungeDeleted(ctx.session, selected, null);
      ctx.session.state = { kind: 'authenticated', account: accountOf(ctx) };
    },
  },
  UNSELECT: {
    states: SELECTED,
    async run(ctx) {
      ctx.args.end();
      ctx.session.state = { kind: 'authenticated', account: accountOf(ctx) };
    },
  },
  CHECK: {
    states: SELECTED,
    async run(ctx) {
      ctx.args.end();
      await ctx.session.syncSelected({ expunges: true, force: true });
    },
  },
};
