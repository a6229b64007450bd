/**
 * IMAP flags as stored: the five system flags are columns (seen, answered, flagged,
 * deleted, draft), anything else is a row in `keywords`.
 */
import { UserError } from '../../errors.js';
import { SYSTEM_FLAGS, type SystemFlag } from '../store.js';
import type { Row } from './sql.js';

export const FLAG_COLUMNS: Record<SystemFlag, string> = {
  '\\Seen': 'seen',
  '\\Answered': 'answered',
  '\\Flagged': 'flagged',
  '\\Deleted': 'deleted',
  '\\Draft': 'draft',
};

/** RFC 3501 flag-keyword: an atom without the characters IMAP gives meaning to. */
const KEYWORD = /^[^\\(){ \x00-\x1f\x7f%*"\]]{1,100}$/;

export interface FlagSet {
  system: Set<SystemFlag>;
  keywords: Set<string>;
}

/** Splits flags into system flags (case-insensitive, canonical case) and keywords; throws UserError on a bad one. */
export function parseFlags(flags: string[]): FlagSet {
  const out: FlagSet = { system: new Set(), keywords: new Set() };
  for (const f of flags) {
    const system = SYSTEM_FLAGS.find((s) => s.toLowerCase() === f.toLowerCase());
    if (system) out.system.add(system);
    else if (KEYWORD.test(f)) out.keywords.add(f);
    else throw new UserError(`invalid flag ${JSON.stringify(f)}`);
  }
  return out;
}

/** The system flags set on a message row. */
export function systemFlagsOf(row: Row): Set<SystemFlag> {
  return new Set(SYSTEM_FLAGS.filter((f) => Boolean(Number(row[FLAG_COLUMNS[f]]))));
}

/** Flags for presentation from the five flag columns' values (in SYSTEM_FLAGS order) and the space-separated keywords, without sets. */
export function flagsOfValues(system: unknown[], keywords: unknown): string[] {
  const out: string[] = [];
  for (let i = 0; i < SYSTEM_FLAGS.length; i++) if (Number(system[i])) out.push(SYSTEM_FLAGS[i]!);
  if (typeof keywords === 'string' && keywords) out.push(...keywords.split(' ').sort());
  return out;
}

/** Flags for presentation: system flags first, then keywords in order. */
export function flagList(system: Iterable<SystemFlag>, keywords: Iterable<string>): string[] {
  const s = new Set(system);
  return [...SYSTEM_FLAGS.filter((f) => s.has(f)), ...[...keywords].sort()];
}
