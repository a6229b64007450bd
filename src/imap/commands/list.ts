/**
 * LIST (RFC 3501 6.3.8 with LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819, SPECIAL-USE RFC
 * 6154, CHILDREN RFC 3348) and LSUB. Patterns: "*" matches anything, "%" anything but "/".
 */
import type { Mailbox } from '../../store/store.js';
import { BadArgs, mailboxName } from '../proto/args.js';
import type { Token } from '../proto/command-reader.js';
import { astring } from '../proto/format.js';
import { accountOf, AUTHENTICATED, type Command, type CommandContext } from './context.js';
import { parseStatusItems, statusLine } from './mailboxes.js';

/**
 * A pattern as a matcher; "INBOX" in any case matches INBOX. Matching is a table walk,
 * linear in name × pattern (a backtracking regular expression lets a pattern such as
 * "%%%%…x" stall the whole server).
 */
export function patternMatcher(pattern: string): (name: string) => boolean {
  const normal = /^inbox(\/|$)/i.test(pattern) ? `INBOX${pattern.slice(5)}` : pattern;
  // Runs of wildcards are one wildcard: "*" if the run has one, else "%".
  const p = normal.replace(/[*%]{2,}/g, (run) => (run.includes('*') ? '*' : '%'));
  const literalChars = p.replace(/[*%]/g, '').length;
  return (name) => {
    if (literalChars > name.length) return false;
    // reach[j]: the part of the name read so far matches the first j pattern characters.
    let reach = new Uint8Array(p.length + 1);
    reach[0] = 1;
    for (let j = 1; j <= p.length && (p[j - 1] === '*' || p[j - 1] === '%'); j++) reach[j] = 1;
    for (let i = 0; i < name.length; i++) {
      const c = name[i];
      const next = new Uint8Array(p.length + 1);
      for (let j = 1; j <= p.length; j++) {
        const w = p[j - 1];
        if (w === '*' || (w === '%' && c !== '/')) next[j] = reach[j]! | next[j - 1]!;
        else if (w === '%') next[j] = next[j - 1]!;
        else next[j] = w === c ? reach[j - 1]! : 0;
      }
      reach = next;
    }
    return reach[p.length] === 1;
  };
}

function joinReference(reference: string, pattern: string): string {
  if (!reference || pattern.startsWith('/')) return pattern;
  return reference.endsWith('/') ? reference + pattern : `${reference}/${pattern}`;
}

interface ListOptions {
  subscribedOnly: boolean;
  specialUseOnly: boolean;
  recursiveMatch: boolean;
  returnSubscribed: boolean;
  returnSpecialUse: boolean;
  status: string[] | null;
}

function atomValues(tokens: Token[], what: string): string[] {
  return tokens.map((t) => {
    if (t.type !== 'atom') throw new BadArgs(`Invalid ${what}`);
    return t.value.toUpperCase();
  });
}

async function list(ctx: CommandContext, lsub: boolean): Promise<void> {
  const { args, session } = ctx;
  const opts: ListOptions = {
    subscribedOnly: lsub,
    specialUseOnly: false,
    recursiveMatch: false,
    returnSubscribed: false,
    returnSpecialUse: false,
    status: null,
  };
  let extended = false;
  if (!lsub) {
    const selection = args.optionalList();
    if (selection) {
      extended = true;
      for (const o of atomValues(selection, 'selection option')) {
        if (o === 'SUBSCRIBED') opts.subscribedOnly = opts.returnSubscribed = true;
        else if (o === 'SPECIAL-USE') opts.specialUseOnly = opts.returnSpecialUse = true;
        else if (o === 'RECURSIVEMATCH') opts.recursiveMatch = true;
        else if (o !== 'REMOTE') throw new BadArgs(`Unknown LIST selection option ${o.slice(0, 30)}`);
      }
      if (opts.recursiveMatch && !opts.subscribedOnly && !opts.specialUseOnly) throw new BadArgs('RECURSIVEMATCH needs another selection option');
    }
  }
  const reference = args.astring('reference');
  const patternToken = args.token('mailbox pattern');
  const patterns =
    patternToken.type === 'list'
      ? patternToken.items.map((t) => {
          if (t.type === 'list' || t.type === 'streamed') throw new BadArgs('Invalid pattern');
          return t.value;
        })
      : patternToken.type === 'streamed'
        ? []
        : [patternToken.value];
  if (patternToken.type === 'list') extended = true;
  if (!lsub && !args.done) {
    const word = args.atom('RETURN');
    if (word.toUpperCase() !== 'RETURN') throw new BadArgs('Expected RETURN');
    const returns = args.list('return options');
    extended = true;
    for (let i = 0; i < returns.length; i++) {
      const t = returns[i]!;
      const o = t.type === 'atom' ? t.value.toUpperCase() : '';
      if (o === 'SUBSCRIBED') opts.returnSubscribed = true;
      else if (o === 'SPECIAL-USE') opts.returnSpecialUse = true;
      else if (o === 'CHILDREN') continue;
      else if (o === 'STATUS') {
        const items = returns[++i];
        if (items?.type !== 'list') throw new BadArgs('STATUS needs a list of items');
        opts.status = parseStatusItems(items.items);
      } else throw new BadArgs(`Unknown LIST return option ${o.slice(0, 30)}`);
    }
  }
  args.end();

  // LIST "" "": the hierarchy delimiter and root.
  if (!lsub && patterns.length === 1 && patterns[0] === '') {
    session.untagged('LIST (\\Noselect) "/" ""');
    return;
  }
  const account = accountOf(ctx);
  const [mailboxes, subscriptions] = await Promise.all([
    session.deps.store.mailboxes.list(account.id),
    opts.subscribedOnly || opts.returnSubscribed ? session.deps.store.mailboxes.subscriptions(account.id) : Promise.resolve([]),
  ]);
  const byName = new Map<string, Mailbox>(mailboxes.map((m) => [m.name, m]));
  const subscribed = new Set(subscriptions.map(mailboxName));
  const matchers = patterns.map((p) => patternMatcher(joinReference(reference, p)));
  const matches = (name: string) => matchers.some((m) => m(name));
  const hasChildren = (name: string) => mailboxes.some((m) => m.name.startsWith(`${name}/`));
  const percent = patterns.some((p) => p.includes('%'));

  // Candidates: existing mailboxes, subscribed names (LSUB / SUBSCRIBED), and for "%" patterns the missing parents of deeper names.
  const candidates = new Set<string>(opts.subscribedOnly ? subscribed : byName.keys());
  if (percent && !opts.subscribedOnly) {
    for (const name of byName.keys()) {
      const levels = name.split('/');
      for (let i = 1; i < levels.length; i++) candidates.add(levels.slice(0, i).join('/'));
    }
  }
  const childSubscribed = (name: string) => [...subscribed].some((s) => s.startsWith(`${name}/`));
  if (opts.subscribedOnly && opts.recursiveMatch) for (const s of subscribed) candidates.add(s.split('/')[0]!);

  const sorted = [...candidates].sort((a, b) => (a === 'INBOX' ? -1 : b === 'INBOX' ? 1 : a < b ? -1 : a > b ? 1 : 0));
  for (const name of sorted) {
    if (!matches(name)) continue;
    const mailbox = byName.get(name);
    if (opts.specialUseOnly && !mailbox?.specialUse) continue;
    const flags: string[] = [];
    const isSubscribed = subscribed.has(name);
    if (!mailbox) flags.push(lsub || opts.subscribedOnly ? '\\Noselect' : '\\Noselect', ...(extended && !lsub ? ['\\NonExistent'] : []));
    if (!lsub) flags.push(hasChildren(name) ? '\\HasChildren' : '\\HasNoChildren');
    if (!lsub && (opts.returnSubscribed || opts.subscribedOnly) && isSubscribed) flags.push('\\Subscribed');
    if (mailbox?.specialUse && (!extended || opts.returnSpecialUse || !lsub)) flags.push(mailbox.specialUse);
    const extra = opts.subscribedOnly && opts.recursiveMatch && !isSubscribed && childSubscribed(name) ? ' ("CHILDINFO" ("SUBSCRIBED"))' : '';
    if (opts.subscribedOnly && !isSubscribed && !extra) continue;
    session.untagged(`${lsub ? 'LSUB' : 'LIST'} (${[...new Set(flags)].join(' ')}) "/" ${astring(name)}${extra}`);
    if (opts.status && mailbox) session.untagged(await statusLine(session, mailbox, opts.status));
    await session.flushIfFull();
  }
}

export const LIST_COMMANDS: Record<string, Command> = {
  LIST: { states: AUTHENTICATED, run: (ctx) => list(ctx, false) },
  LSUB: { states: AUTHENTICATED, run: (ctx) => list(ctx, true) },
};
