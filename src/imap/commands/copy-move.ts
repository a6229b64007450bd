/** COPY, MOVE (RFC 6851) and their UID forms, answering COPYUID (UIDPLUS, RFC 4315). */
import { ImapNo } from '../errors.js';
import { parseSequenceSet } from '../proto/sequence-set.js';
import { formatSequenceSet } from '../proto/sequence-set.js';
import { accountOf, SELECTED, selectedOf, type Command, type CommandContext } from './context.js';
import { announceExpunged } from './expunge.js';
import { resolveTargets } from './targets.js';

async function copy(ctx: CommandContext, move: boolean): Promise<string | void> {
  const { session, args } = ctx;
  const selected = selectedOf(ctx);
  const set = parseSequenceSet(args.atom('sequence set'));
  const name = args.mailbox();
  args.end();
  if (move && selected.readOnly) throw new ImapNo('READ-ONLY', 'Mailbox is read-only');
  const target = await session.deps.store.mailboxes.get(accountOf(ctx).id, name);
  if (!target) throw new ImapNo('TRYCREATE', `Mailbox ${name} does not exist`);
  const uids = resolveTargets(selected, set, ctx.uid);
  if (uids.length === 0) return `${move ? 'MOVE' : 'COPY'} completed (no messages)`;
  const pairs = await session.deps.store.mailboxes.copy(selected.id, uids, target.id, move);
  if (pairs.length === 0) return `${move ? 'MOVE' : 'COPY'} completed (no messages)`;
  pairs.sort((a, b) => a[0] - b[0]);
  const code = `COPYUID ${target.uidValidity} ${formatSequenceSet(pairs.map((p) => p[0]))} ${formatSequenceSet(pairs.map((p) => p[1]))}`;
  if (!move) return `[${code}] COPY completed`;
  session.untagged(`OK [${code}] Moved`);
  announceExpunged(
    session,
    selected,
    pairs.map((p) => p[0]),
  );
  return 'MOVE completed';
}

export const COPY_COMMANDS: Record<string, Command> = {
  COPY: { states: SELECTED, run: (ctx) => copy(ctx, false) },
  MOVE: { states: SELECTED, run: (ctx) => copy(ctx, true) },
};
