/**
 * SELECT and EXAMINE (RFC 3501 6.3.1-2) with CONDSTORE and QRESYNC parameters (RFC 7162
 * 3.1.8, 3.2.5): the mailbox's counts, flags and identifiers, and for QRESYNC the changes
 * and expunges since the client's last known mod-sequence.
 */
import { SYSTEM_FLAGS } from '../../store/store.js';
import { ImapNo } from '../errors.js';
import { BadArgs, parseNumber } from '../proto/args.js';
import type { Token } from '../proto/command-reader.js';
import { formatSequenceSet, inSet, parseSequenceSet, type SequenceSet } from '../proto/sequence-set.js';
import { SelectedMailbox } from '../selected.js';
import { accountOf, AUTHENTICATED, type Command, type CommandContext } from './context.js';

interface QresyncParams {
  uidValidity: number;
  modseq: number;
  knownUids: SequenceSet | null;
}

function parseSelectParams(ctx: CommandContext): { condstore: boolean; qresync: QresyncParams | null } {
  const params = ctx.args.optionalList();
  ctx.args.end();
  const out = { condstore: false, qresync: null as QresyncParams | null };
  for (let i = 0; params && i < params.length; i++) {
    const t = params[i]!;
    const name = t.type === 'atom' ? t.value.toUpperCase() : '';
    if (name === 'CONDSTORE') out.condstore = true;
    else if (name === 'QRESYNC') {
      const list = params[++i];
      if (list?.type !== 'list' || list.items.length < 2) throw new BadArgs('QRESYNC needs (uidvalidity modseq [known-uids])');
      const atom = (tk: Token | undefined, what: string) => {
        if (tk?.type !== 'atom') throw new BadArgs(`Invalid ${what}`);
        return tk.value;
      };
      out.qresync = {
        uidValidity: parseNumber(atom(list.items[0], 'uidvalidity'), 'uidvalidity'),
        modseq: parseNumber(atom(list.items[1], 'mod-sequence'), 'mod-sequence'),
        knownUids: list.items[2]?.type === 'atom' ? parseSequenceSet(list.items[2].value) : null,
      };
    } else throw new BadArgs('Unknown SELECT parameter');
  }
  return out;
}

async function select(ctx: CommandContext, readOnly: boolean): Promise<string> {
  const { session } = ctx;
  const account = accountOf(ctx);
  const name = ctx.args.mailbox();
  const params = parseSelectParams(ctx);
  if (params.qresync && !session.qresync) throw new BadArgs('QRESYNC must be enabled first (ENABLE QRESYNC)');
  if (params.condstore) session.enabled.add('CONDSTORE');
  // A failed SELECT leaves no mailbox selected (RFC 3501 6.3.1).
  if (session.state.kind === 'selected') {
    session.state = { kind: 'authenticated', account };
    session.untagged('OK [CLOSED] Previous mailbox closed');
  }
  const mailbox = await session.deps.store.mailboxes.get(account.id, name);
  if (!mailbox) throw new ImapNo('NONEXISTENT', `Mailbox ${name} does not exist`);
  const [uids, firstUnseen] = await Promise.all([
    session.deps.views.uids(mailbox),
    mailbox.unseen > 0 ? session.deps.store.mailboxes.firstUnseen(mailbox.id) : Promise.resolve(null),
  ]);
  const recent = readOnly ? [] : session.deps.recent.claim(mailbox, uids);
  const selected = new SelectedMailbox(mailbox, readOnly, uids, recent);
  const recentCount = readOnly ? session.deps.recent.unclaimed(mailbox, uids) : recent.length;

  session.untagged(`FLAGS (${SYSTEM_FLAGS.join(' ')})`);
  session.untagged(`OK [PERMANENTFLAGS (${readOnly ? '' : `${SYSTEM_FLAGS.join(' ')} \\*`})] Flags permitted`);
  session.untagged(`${uids.length} EXISTS`);
  session.untagged(`${recentCount} RECENT`);
  if (firstUnseen !== null && selected.seqOf(firstUnseen) > 0) session.untagged(`OK [UNSEEN ${selected.seqOf(firstUnseen)}] First unseen`);
  session.untagged(`OK [UIDVALIDITY ${mailbox.uidValidity}] UIDs valid`);
  session.untagged(`OK [UIDNEXT ${mailbox.uidNext}] Predicted next UID`);
  session.untagged(`OK [HIGHESTMODSEQ ${mailbox.highestModseq}] Highest`);

  if (params.qresync && params.qresync.uidValidity === mailbox.uidValidity) {
    const q = params.qresync;
    const last = uids.last;
    const vanished = (await session.deps.store.mailboxes.expungedSince(mailbox.id, q.modseq))
      .map((e) => e.uid)
      .filter((u) => !q.knownUids || inSet(q.knownUids, u, last));
    if (vanished.length > 0) session.untagged(`VANISHED (EARLIER) ${formatSequenceSet(vanished)}`);
    for (const c of await session.deps.store.mailboxes.changedSince(mailbox.id, q.modseq)) {
      const seq = selected.seqOf(c.uid);
      if (seq === 0) continue;
      const flags = selected.recent.has(c.uid) ? [...c.flags, '\\Recent'] : c.flags;
      session.untagged(`${seq} FETCH (UID ${c.uid} FLAGS (${flags.join(' ')}) MODSEQ (${c.modseq}))`);
      await session.flushIfFull();
    }
  }
  session.state = { kind: 'selected', account, selected };
  return `[${readOnly ? 'READ-ONLY' : 'READ-WRITE'}] ${readOnly ? 'EXAMINE' : 'SELECT'} completed`;
}

export const SELECT_COMMANDS: Record<string, Command> = {
  SELECT: { states: AUTHENTICATED, run: (ctx) => select(ctx, false) },
  EXAMINE: { states: AUTHENTICATED, run: (ctx) => select(ctx, true) },
};
