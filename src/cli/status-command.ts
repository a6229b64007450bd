/** `tern status`: what the store holds (`--json`: {messages, blobs, domains, accounts:[{address, messages}]}). */
import type { Command } from 'commander';
import { printJson, printTable, withStore, type GlobalOptions } from './context.js';

export function registerStatusCommand(program: Command, globals: () => GlobalOptions): void {
  program
    .command('status')
    .description('show what the store holds: messages, domains, accounts')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const { stats, kind } = await withStore(globals(), async (s) => ({ stats: await s.stats(), kind: s.kind }));
      if (opts.json) return printJson({ store: kind, ...stats });
      console.log(`store: ${kind}; ${stats.domains} domain(s), ${stats.accounts.length} account(s), ${stats.messages} message(s) in ${stats.blobs} blob(s)`);
      if (stats.accounts.length)
        printTable(
          ['ACCOUNT', 'MESSAGES', 'BYTES'],
          stats.accounts.map((a) => [a.address, String(a.messages), String(a.usedBytes)]),
        );
    });
}
