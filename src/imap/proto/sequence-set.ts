/**
 * Sequence sets (RFC 3501 9, `sequence-set`): "1:5,7,9:*". Parsed once, then resolved
 * against a mailbox's message count or highest uid. Pure.
 */
import { BadArgs } from './args.js';

/** Ranges with `null` standing for "*" (the largest number in use). */
export type SequenceSet = Array<[number | null, number | null]>;

const MAX_RANGES = 100_000;

export function parseSequenceSet(text: string): SequenceSet {
  const parts = text.split(',');
  if (parts.length > MAX_RANGES) throw new BadArgs('Sequence set too long');
  return parts.map((part) => {
    const m = /^(\d+|\*)(?::(\d+|\*))?$/.exec(part);
    if (!m) throw new BadArgs(`Invalid sequence set ${text.slice(0, 100)}`);
    const a = m[1] === '*' ? null : Number(m[1]);
    const b = m[2] === undefined ? a : m[2] === '*' ? null : Number(m[2]);
    if (a === 0 || b === 0 || (a !== null && a > 0xffffffff) || (b !== null && b > 0xffffffff)) throw new BadArgs('Invalid sequence number 0');
    return [a, b];
  });
}

/** The set as sorted, merged inclusive ranges, with "*" as `largest`. Empty when the mailbox is empty. */
export function resolveRanges(set: SequenceSet, largest: number): Array<[number, number]> {
  if (largest === 0) return [];
  const ranges = set
    .map(([a, b]): [number, number] => {
      const x = a ?? largest;
      const y = b ?? largest;
      return x <= y ? [x, y] : [y, x];
    })
    .sort((p, q) => p[0] - q[0]);
  const merged: Array<[number, number]> = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return merged;
}

/** Whether `n` is in the set ("*" as `largest`). */
export function inSet(set: SequenceSet, n: number, largest: number): boolean {
  return set.some(([a, b]) => {
    const x = a ?? largest;
    const y = b ?? largest;
    return n >= Math.min(x, y) && n <= Math.max(x, y);
  });
}

/** Compact form of ascending numbers: [1,2,3,5] → "1:3,5" (COPYUID, VANISHED, ESEARCH). */
export function formatSequenceSet(numbers: Iterable<number>): string {
  const out: string[] = [];
  let start = -1;
  let prev = -1;
  for (const n of numbers) {
    if (start < 0) start = prev = n;
    else if (n === prev + 1) prev = n;
    else {
      out.push(start === prev ? `${start}` : `${start}:${prev}`);
      start = prev = n;
    }
  }
  if (start >= 0) out.push(start === prev ? `${start}` : `${start}:${prev}`);
  return out.join(',');
}
