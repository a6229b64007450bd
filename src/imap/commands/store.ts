/** STORE and UID STORE (RFC 3501 6.4.6) with CONDSTORE's UNCHANGEDSINCE and MODIFIED (RFC 7162 3.1.3). */
import { ImapNo } from '../errors.js';
import { BadArgs, flagsOf, parseNumber } from '../proto/args.js';
import { formatSequenceSet, parseSequenceSet } from '../proto/sequence-set.js';
import { SELECTED, selectedOf, type Command } from './context.js';
import { resolveTargets } from './targets.js';

const MODES = { FLAGS: 'replace', '+FLAGS': 'add', '-FLAGS': 'remove' } as const;

export const STORE_COMMANDS: Record<string, Command> = {
  STORE: {
    states: SELECTED,
    async run(ctx) {
      const { session, args } = ctx;
      const selected = selectedOf(ctx);
      const set = parseSequenceSet(args.atom('sequence set'));
      let unchangedSince: number | null = null;
      const modifiers = args.optionalList();
      if (modifiers) {
        const [name, value] = modifiers;
        if (modifiers.length !== 2 || name?.type !== 'atom' || name.value.toUpperCase() !== 'UNCHANGEDSINCE' || value?.type !== 'atom') {
          throw new BadArgs('Unknown STORE modifier');
        }
        unchangedSince = parseNumber(value.value, 'mod-sequence');
        session.enabled.add('CONDSTORE');
      }
      const item = args.atom('store item').toUpperCase();
      const silent = item.endsWith('.SILENT');
      const mode = MODES[(silent ? item.slice(0, -7) : item) as keyof typeof MODES];
      if (!mode) throw new BadArgs(`Unknown STORE item ${item.slice(0, 30)}`);
      const list = args.optionalList();
      const flags: string[] = list ? flagsOf(list) : [];
      while (!list && !args.done) flags.push(...flagsOf([args.token('flag')]));
      args.end();
      if (selected.readOnly) throw new ImapNo('READ-ONLY', 'Mailbox is read-only');
      const uids = resolveTargets(selected, set, ctx.uid);
      const wanted = flags.filter((f) => f.toLowerCase() !== '\\recent');
      const update =
        uids.length > 0 ? await session.deps.store.mailboxes.updateFlags(selected.id, uids, mode, wanted, unchangedSince) : { changes: [], modified: [] };
      for (const c of update.changes) {
        selected.noteOwn(c.modseq);
        if (silent && !session.condstore) continue;
        const seq = selected.seqOf(c.uid);
        if (seq === 0) continue;
        const shown = selected.recent.has(c.uid) ? [...c.flags, '\\Recent'] : c.flags;
        const data = [
          ...(silent ? [] : [`FLAGS (${shown.join(' ')})`]),
          ...(ctx.uid ? [`UID ${c.uid}`] : []),
          ...(session.condstore ? [`MODSEQ (${c.modseq})`] : []),
        ];
        session.untagged(`${seq} FETCH (${data.join(' ')})`);
        await session.flushIfFull();
      }
      if (update.modified.length > 0) {
        const ids = ctx.uid ? update.modified : update.modified.map((u) => selected.seqOf(u)).sort((a, b) => a - b);
        return `[MODIFIED ${formatSequenceSet(ids)}] Conditional STORE failed`;
      }
      return undefined;
    },
  },
};
