/** What a command handler gets, and the state lists commands are registered with. */
import type { ArgReader } from '../proto/args.js';
import type { ImapSession, SessionState } from '../session.js';

export interface CommandContext {
  session: ImapSession;
  tag: string;
  /** Upper-case name without the UID prefix. */
  name: string;
  /** The UID form (UID FETCH…): numbers are uids. */
  uid: boolean;
  args: ArgReader;
}

export interface Command {
  states: ReadonlyArray<SessionState['kind']>;
  /** Returns the tagged OK's text (default "<NAME> completed"). */
  run(ctx: CommandContext): Promise<string | void>;
}

export const AUTHENTICATED = ['authenticated', 'selected'] as const;
export const SELECTED = ['selected'] as const;
export const ANY = ['not-authenticated', 'authenticated', 'selected'] as const;

/** The selected mailbox of a command that may only run in the selected state. */
export function selectedOf(ctx: CommandContext) {
  if (ctx.session.state.kind !== 'selected') throw new Error('not selected');
  return ctx.session.state.selected;
}

/** The account of a command that runs after login. */
export function accountOf(ctx: CommandContext) {
  const s = ctx.session.state;
  if (s.kind !== 'authenticated' && s.kind !== 'selected') throw new Error('not authenticated');
  return s.account;
}
