/**
 * QUOTA (RFC 9208): one quota root "" per account with the STORAGE resource in KiB, the
 * same limit delivery enforces. Limits are set by the administrator (tern user), so
 * SETQUOTA is refused.
 */
import { ImapNo } from '../errors.js';
import { astring } from '../proto/format.js';
import { accountOf, AUTHENTICATED, type Command, type CommandContext } from './context.js';

async function quotaLine(ctx: CommandContext): Promise<string | null> {
  const account = await ctx.session.deps.store.directory.getAccount(accountOf(ctx).address);
  if (!account || account.quotaBytes === null) return null;
  return `QUOTA "" (STORAGE ${Math.ceil(account.usedBytes / 1024)} ${Math.floor(account.quotaBytes / 1024)})`;
}

export const QUOTA_COMMANDS: Record<string, Command> = {
  GETQUOTAROOT: {
    states: AUTHENTICATED,
    async run(ctx) {
      const name = ctx.args.mailbox();
      ctx.args.end();
      if (!(await ctx.session.deps.store.mailboxes.get(accountOf(ctx).id, name))) throw new ImapNo('NONEXISTENT', `Mailbox ${name} does not exist`);
      const line = await quotaLine(ctx);
      ctx.session.untagged(`QUOTAROOT ${astring(name)}${line ? ' ""' : ''}`);
      if (line) ctx.session.untagged(line);
    },
  },
  GETQUOTA: {
    states: AUTHENTICATED,
    async run(ctx) {
      const root = ctx.args.astring('quota root');
      ctx.args.end();
      const line = root === '' ? await quotaLine(ctx) : null;
      if (!line) throw new ImapNo('NONEXISTENT', 'No such quota root');
      ctx.session.untagged(line);
    },
  },
  SETQUOTA: {
    states: AUTHENTICATED,
    async run() {
      throw new ImapNo('NOPERM', 'Quotas are set by the administrator');
    },
  },
};
