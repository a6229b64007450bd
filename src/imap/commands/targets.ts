/** The uids a sequence set names in the selected mailbox (by sequence number, or by uid for UID commands). */
import { resolveRanges, type SequenceSet } from '../proto/sequence-set.js';
import type { SelectedMailbox } from '../selected.js';
import { BadArgs } from '../proto/args.js';

export function resolveTargets(selected: SelectedMailbox, set: SequenceSet, uid: boolean): number[] {
  const all = selected.uids;
  const out: number[] = [];
  if (uid) {
    const largest = all[all.length - 1] ?? 0;
    for (const [a, b] of resolveRanges(set, largest)) {
      // Binary search for the first uid >= a, then walk to b.
      let lo = 0;
      let hi = all.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (all[mid]! < a) lo = mid + 1;
        else hi = mid;
      }
      for (let i = lo; i < all.length && all[i]! <= b; i++) out.push(all[i]!);
    }
    return out;
  }
  for (const [a, b] of resolveRanges(set, all.length)) {
    if (b > all.length) throw new BadArgs(`No message with sequence number ${b} (${all.length} exist)`);
    for (let s = a; s <= b; s++) out.push(all[s - 1]!);
  }
  return out;
}
