/**
 * Postfix's `virtual` alias map in its source form (what `postmap` reads; virtual(5)),
 * for `tern import-users --virtual`: `pattern  target, target…`, targets separated by
 * commas or white space; a line starting with white space continues the one before;
 * blank lines and lines whose first non-blank character is `#` are skipped. Patterns are
 * `user@domain`, `@domain` (catch-all), a bare `user`, or a bare domain (a "virtual alias
 * domain" declaration). Regular-expression tables (`/pattern/ result`, `if /…/`) cannot
 * become aliases: their lines are returned as skipped, not dropped. Pure.
 */
import { UserError } from '../errors.js';

export interface VirtualEntry {
  /** Line number of the entry's first line, from 1. */
  line: number;
  /** The pattern as written, lower-cased. */
  key: string;
  kind: 'address' | 'catch-all' | 'bare-user' | 'domain';
  /** The targets as written. */
  targets: string[];
}

export interface SkippedLine {
  line: number;
  text: string;
  reason: string;
}

export interface VirtualMap {
  entries: VirtualEntry[];
  skipped: SkippedLine[];
}

/** The longest logical line read; a longer one is an error rather than a memory hazard. */
const MAX_LOGICAL_LINE = 1024 * 1024;

function kindOf(key: string): VirtualEntry['kind'] {
  if (key.startsWith('@')) return 'catch-all';
  if (key.includes('@')) return 'address';
  return key.includes('.') ? 'domain' : 'bare-user';
}

export function parseVirtualMap(text: string, opts: { fileName: string }): VirtualMap {
  const logical: Array<{ line: number; text: string }> = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    if (raw.trim() === '' || raw.trimStart().startsWith('#')) continue;
    if (/^\s/.test(raw)) {
      const last = logical[logical.length - 1];
      if (!last) throw new UserError(`${opts.fileName}:${i + 1}: a continuation line (starting with white space) with no line before it`);
      last.text += ` ${raw.trim()}`;
      if (last.text.length > MAX_LOGICAL_LINE) throw new UserError(`${opts.fileName}:${last.line}: entry longer than 1 MiB`);
    } else logical.push({ line: i + 1, text: raw.trim() });
  }
  const map: VirtualMap = { entries: [], skipped: [] };
  const seen = new Map<string, number>();
  for (const { line, text: t } of logical) {
    const where = `${opts.fileName}:${line}`;
    if (/^(?:!?\/|if\s+!?\/|endif\b)/i.test(t)) {
      map.skipped.push({ line, text: t, reason: 'a regexp/pcre table entry: write it as explicit aliases' });
      continue;
    }
    const m = /^(\S+)\s+(.*)$/.exec(t);
    if (!m) throw new UserError(`${where}: expected "pattern target[, target…]", got only ${JSON.stringify(t.slice(0, 200))}`);
    const key = m[1]!.toLowerCase();
    const targets = m[2]!.split(/[\s,]+/).filter(Boolean);
    if (targets.length === 0) throw new UserError(`${where}: ${key} has no target`);
    const first = seen.get(key);
    if (first !== undefined) {
      map.skipped.push({ line, text: t, reason: `${key} is listed again (first at line ${first}); postmap uses the first` });
      continue;
    }
    seen.set(key, line);
    map.entries.push({ line, key, kind: kindOf(key), targets });
  }
  return map;
}
