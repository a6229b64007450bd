/**
 * CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE and STATUS (RFC 3501 6.3, RFC 7162
 * HIGHESTMODSEQ, RFC 8438 SIZE). Hierarchy delimiter "/"; CREATE makes missing parents.
 */
import { ConflictError } from '../../errors.js';
import type { Mailbox } from '../../store/store.js';
import { ImapNo } from '../errors.js';
import { BadArgs } from '../proto/args.js';
import type { Token } from '../proto/command-reader.js';
import { astring } from '../proto/format.js';
import type { ImapSession } from '../session.js';
import { accountOf, AUTHENTICATED, type Command } from './context.js';

/** Longest mailbox name, in bytes. */
const MAX_NAME = 512;
/** Mailboxes one account may have. */
const MAX_MAILBOXES = 10_000;

/** Throws unless `name` can be created: no wildcards or control characters, no empty levels. */
export function checkNewName(name: string): void {
  if (name.length === 0 || Buffer.byteLength(name) > MAX_NAME) throw new ImapNo('CANNOT', 'Invalid mailbox name length');
  if (/[%*\x00-\x1f\x7f]/.test(name)) throw new ImapNo('CANNOT', 'Mailbox names cannot contain %, * or control characters');
  if (name.startsWith('/') || name.includes('//')) throw new ImapNo('CANNOT', 'Mailbox names cannot have empty levels');
}

export const STATUS_ITEMS = ['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'HIGHESTMODSEQ', 'SIZE'] as const;

export function parseStatusItems(tokens: Token[]): string[] {
  if (tokens.length === 0) throw new BadArgs('STATUS needs at least one item');
  return tokens.map((t) => {
    const item = t.type === 'atom' ? t.value.toUpperCase() : '';
    if (!(STATUS_ITEMS as readonly string[]).includes(item)) throw new BadArgs(`Unknown STATUS item ${item.slice(0, 30)}`);
    return item;
  });
}

/** The "* STATUS name (…)" line for a mailbox. */
export async function statusLine(session: ImapSession, mailbox: Mailbox, items: string[]): Promise<string> {
  const values: Record<string, number> = {
    MESSAGES: mailbox.messages,
    RECENT: items.includes('RECENT') ? session.deps.recent.unclaimed(mailbox, await session.deps.views.uids(mailbox)) : 0,
    UIDNEXT: mailbox.uidNext,
    UIDVALIDITY: mailbox.uidValidity,
    UNSEEN: mailbox.unseen,
    HIGHESTMODSEQ: mailbox.highestModseq,
    SIZE: mailbox.bytes,
  };
  return `STATUS ${astring(mailbox.name)} (${items.map((i) => `${i} ${values[i]}`).join(' ')})`;
}

export const MAILBOX_COMMANDS: Record<string, Command> = {
  CREATE: {
    states: AUTHENTICATED,
    async run(ctx) {
      const name = ctx.args.mailbox();
      ctx.args.end();
      checkNewName(name);
      const account = accountOf(ctx);
      const mailboxes = ctx.session.deps.store.mailboxes;
      if (name === 'INBOX' || (await mailboxes.get(account.id, name))) throw new ImapNo('ALREADYEXISTS', `Mailbox ${name} already exists`);
      const existing = await mailboxes.list(account.id);
      if (existing.length >= MAX_MAILBOXES) throw new ImapNo('LIMIT', `At most ${MAX_MAILBOXES} mailboxes per account`);
      const names = new Set(existing.map((m) => m.name));
      const levels = name.split('/');
      for (let i = 1; i < levels.length; i++) {
        const parent = levels.slice(0, i).join('/');
        if (names.has(parent)) continue;
        await mailboxes.create(account.id, parent).catch((err: unknown) => {
          if (!(err instanceof ConflictError)) throw err;
        });
      }
      await mailboxes.create(account.id, name);
    },
  },
  DELETE: {
    states: AUTHENTICATED,
    async run(ctx) {
      const name = ctx.args.mailbox();
      ctx.args.end();
      if (name === 'INBOX') throw new ImapNo('CANNOT', 'INBOX cannot be deleted');
      const account = accountOf(ctx);
      const s = ctx.session.state;
      if (s.kind === 'selected' && s.selected.mailbox.name === name) {
        ctx.session.state = { kind: 'authenticated', account };
        ctx.session.untagged('OK [CLOSED] Mailbox deleted');
      }
      await ctx.session.deps.store.mailboxes.delete(account.id, name);
    },
  },
  RENAME: {
    states: AUTHENTICATED,
    async run(ctx) {
      const from = ctx.args.mailbox();
      const to = ctx.args.mailbox();
      ctx.args.end();
      checkNewName(to);
      if (to === 'INBOX') throw new ImapNo('ALREADYEXISTS', 'INBOX already exists');
      const account = accountOf(ctx);
      const mailboxes = ctx.session.deps.store.mailboxes;
      if (!(await mailboxes.get(account.id, from))) throw new ImapNo('NONEXISTENT', `Mailbox ${from} does not exist`);
      const existing = new Set((await mailboxes.list(account.id)).map((m) => m.name));
      const levels = to.split('/');
      for (let i = 1; i < levels.length; i++) {
        const parent = levels.slice(0, i).join('/');
        if (!existing.has(parent) && parent !== from) await mailboxes.create(account.id, parent);
      }
      await mailboxes.rename(account.id, from, to);
    },
  },
  SUBSCRIBE: {
    states: AUTHENTICATED,
    async run(ctx) {
      const name = ctx.args.mailbox();
      ctx.args.end();
      const account = accountOf(ctx);
      if (!(await ctx.session.deps.store.mailboxes.get(account.id, name))) throw new ImapNo('NONEXISTENT', `Mailbox ${name} does not exist`);
      await ctx.session.deps.store.mailboxes.subscribe(account.id, name);
    },
  },
  UNSUBSCRIBE: {
    states: AUTHENTICATED,
    async run(ctx) {
      const name = ctx.args.mailbox();
      ctx.args.end();
      await ctx.session.deps.store.mailboxes.unsubscribe(accountOf(ctx).id, name);
    },
  },
  STATUS: {
    states: AUTHENTICATED,
    async run(ctx) {
      const name = ctx.args.mailbox();
      const items = parseStatusItems(ctx.args.list('status items'));
      ctx.args.end();
      const mailbox = await ctx.session.deps.store.mailboxes.get(accountOf(ctx).id, name);
      if (!mailbox) throw new ImapNo('NONEXISTENT', `Mailbox ${name} does not exist`);
      if (items.includes('HIGHESTMODSEQ')) ctx.session.enabled.add('CONDSTORE');
      ctx.session.untagged(await statusLine(ctx.session, mailbox, items));
    },
  },
};
