/**
 * The IMAP command registry: every command with the states it is allowed in and its
 * handler. The session checks the state and parses nothing itself; a handler reads its
 * arguments, writes untagged answers, and returns the text of its tagged OK (or throws:
 * BadArgs → BAD, ImapNo and store errors → NO).
 */
import { ANY_STATE_COMMANDS } from './any-state.js';
import { APPEND_COMMANDS } from './append.js';
import { AUTH_COMMANDS } from './auth.js';
import { COPY_COMMANDS } from './copy-move.js';
import { EXPUNGE_COMMANDS } from './expunge.js';
import { FETCH_COMMANDS } from './fetch.js';
import { IDLE_COMMANDS } from './idle.js';
import { LIST_COMMANDS } from './list.js';
import { MAILBOX_COMMANDS } from './mailboxes.js';
import { QUOTA_COMMANDS } from './quota.js';
import { SEARCH_COMMANDS } from './search.js';
import { SELECT_COMMANDS } from './select.js';
import { STORE_COMMANDS } from './store.js';

export type { CommandContext } from './context.js';
import type { Command } from './context.js';

export const COMMANDS: Readonly<Record<string, Command>> = {
  ...ANY_STATE_COMMANDS,
  ...AUTH_COMMANDS,
  ...SELECT_COMMANDS,
  ...MAILBOX_COMMANDS,
  ...LIST_COMMANDS,
  ...APPEND_COMMANDS,
  ...FETCH_COMMANDS,
  ...STORE_COMMANDS,
  ...SEARCH_COMMANDS,
  ...COPY_COMMANDS,
  ...EXPUNGE_COMMANDS,
  ...IDLE_COMMANDS,
  ...QUOTA_COMMANDS,
};
