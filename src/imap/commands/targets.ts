/** The uids a sequence set names in the selected mailbox (by sequence number, or by uid for UID commands). */
import { resolveRanges, type SequenceSet } from '../proto/sequence-set.js';
import type { SelectedMailbox } from '../selected.js';
import { BadArgs } from '../proto/args.js';

export function resolveTargets(selected: SelectedMailbox, set: SequenceSet, uid: boolean): number[] {
  const all = selected.uids;
  const out: number[] = [];
  if (uid) {
    for (const [a, b] of resolveRanges(set, all.last)) {
      for (let i = all.lowerBound(a); i < all.length; i++) {
        const u = all.at(i);
        if (u > b) break;
        out.push(u);
      }
    }
    return out;
  }
  for (const [a, b] of resolveRanges(set, all.length)) {
    if (b > all.length) throw new BadArgs(`No message with sequence number ${b} (${all.length} exist)`);
    for (const u of all.slice(a - 1, b)) out.push(u);
  }
  return out;
}
