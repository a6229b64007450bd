/** `tern suppression list|add|del|import`: addresses API sends skip (admin/suppressions.ts holds the rules). */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { addressesFromFile, addSuppressions, deleteSuppression, listSuppressions } from '../admin/suppressions.js';
import { parseInteger } from '../config/parse.js';
import { printJson, printTable, withStore, type GlobalOptions } from './context.js';

export function registerSuppressionCommands(program: Command, globals: () => GlobalOptions): void {
  const suppression = program.command('suppression').description('addresses mail from the HTTP API is not sent to (hard bounces are added by themselves)');
  suppression
    .command('list')
    .description('the list in address order')
    .option('--after <address>', 'start after this address (paging)')
    .option('--limit <n>', 'at most this many', '1000')
    .option('--json', 'print JSON')
    .action(async (o: { after?: string; limit: string; json?: boolean }) => {
      const list = await withStore(globals(), (s) => listSuppressions(s.directory, null, { after: o.after, limit: parseInteger('--limit', o.limit, 1) }));
      if (o.json) return printJson(list.map((x) => ({ ...x, createdAt: x.createdAt.toISOString() })));
      printTable(
        ['ADDRESS', 'SOURCE', 'SINCE', 'REASON'],
        list.map((x) => [x.address, x.source, x.createdAt.toISOString(), x.reason]),
      );
    });
  suppression
    .command('add <addresses...>')
    .description('add addresses')
    .option('--reason <text>', 'why', '')
    .action(async (addresses: string[], o: { reason: string }) => {
      const added = await withStore(globals(), (s) => addSuppressions(s.directory, null, addresses, { reason: o.reason }));
      console.log(`${added} added (${addresses.length - added} already listed)`);
    });
  suppression
    .command('del <address>')
    .description('remove an address: mail may go to it again')
    .action(async (address: string) => {
      await withStore(globals(), (s) => deleteSuppression(s.directory, null, address));
      console.log(`${address} removed from the suppression list`);
    });
  suppression
    .command('import <file>')
    .description('add the addresses of a file: one a line, or the first column of a CSV (header and # lines skipped)')
    .option('--reason <text>', 'why', 'imported')
    .action(async (file: string, o: { reason: string }) => {
      const addresses = addressesFromFile(await readFile(file, 'utf8'));
      const added = await withStore(globals(), (s) => addSuppressions(s.directory, null, addresses, { source: 'import', reason: o.reason }));
      console.log(`${addresses.length} addresses read, ${added} added`);
    });
}
