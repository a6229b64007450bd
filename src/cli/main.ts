#!/usr/bin/env node
/**
 * The `tern` command. Parses arguments (commander), runs one command, and turns errors
 * into one line on stderr with a non-zero exit: UserError text as it is, anything else
 * as "unexpected error" (set TERN_DEBUG=1 for the stack).
 */
import { registerApiKeyCommands } from './apikey-commands.js';
import { registerSuppressionCommands } from './suppression-commands.js';
import { registerWebhookCommands } from './webhook-commands.js';
import { registerBanCommands } from './ban-commands.js';
import { registerReportCommands } from './report-commands.js';
import { registerSiteCommands } from './site-commands.js';
import { registerMigrateCommands } from './migrate-commands.js';
import { registerSettingCommands } from './setting-commands.js';
import { registerConfigCommands } from './config-commands.js';
import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_DATA_DIR } from '../config/defaults.js';
import { UserError } from '../errors.js';
import { LOG_LEVELS } from '../log.js';
import { registerAliasCommands, registerDomainCommands, registerUserCommands } from './admin-commands.js';
import type { GlobalOptions } from './context.js';
import { registerQueueCommands, registerRouteCommands, registerSendCommand } from './queue-commands.js';
import { registerServeCommands } from './serve-command.js';
import { registerStatusCommand } from './status-command.js';
import { registerMaildirCommands } from './maildir-commands.js';

const program = new Command('tern')
  .description('Tern mail server')
  .version('0.1.0')
  .addOption(new Option('--data <dir>', 'data directory').env('TERN_DATA').default(DEFAULT_DATA_DIR))
  .addOption(new Option('--db <url>', 'database: a SQLite file path (default <data>/tern.db) or postgres://…').env('TERN_DB'))
  .addOption(new Option('--log-level <level>', 'log level').env('TERN_LOG_LEVEL').choices(LOG_LEVELS).default('info'))
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

const globals = (): GlobalOptions => program.opts<GlobalOptions>();

registerServeCommands(program, globals);
registerDomainCommands(program, globals);
registerUserCommands(program, globals);
registerAliasCommands(program, globals);
registerQueueCommands(program, globals);
registerRouteCommands(program, globals);
registerApiKeyCommands(program, globals);
registerSuppressionCommands(program, globals);
registerWebhookCommands(program, globals);
registerBanCommands(program, globals);
registerReportCommands(program, globals);
registerSiteCommands(program, globals);
registerMigrateCommands(program, globals);
registerSettingCommands(program, globals);
registerConfigCommands(program, globals);
registerSendCommand(program, globals);
registerStatusCommand(program, globals);
registerMaildirCommands(program, globals);

// Commander recognises program options after the subcommand too: `tern serve --data DIR`.
for (const cmd of program.commands.flatMap((c) => [c, ...c.commands])) cmd.exitOverride();

function fail(message: string): never {
  process.stderr.write(`tern: ${message}\n`);
  process.exit(1);
}

// `tern user list | head` closes the pipe early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? 0 : 1));

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  if (err instanceof UserError) fail(err.message);
  if (process.env.TERN_DEBUG) console.error(err);
  fail(`unexpected error: ${(err as Error).message ?? String(err)}`);
}
