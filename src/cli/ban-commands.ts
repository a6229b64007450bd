/** `tern ban list|add|del`: addresses refused on every port (admin/bans.ts holds the rules; failed logins make most of them). */
import type { Command } from 'commander';
import { addBan, deleteBan, listBans, publicBan } from '../admin/bans.js';
import { parseDuration } from '../config/parse.js';
import { printJson, printTable, withStore, type GlobalOptions } from './context.js';

export function registerBanCommands(program: Command, globals: () => GlobalOptions): void {
  const ban = program.command('ban').description('client addresses refused on every port (repeated failed logins ban one by themselves)');
  ban
    .command('list')
    .description('bans in force')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const bans = (await withStore(globals(), (s) => listBans(s.directory, null))).map(publicBan);
      if (o.json) return printJson(bans);
      printTable(
        ['ADDRESS', 'UNTIL', 'SINCE', 'REASON'],
        bans.map((b) => [b.address, b.expiresAt, b.createdAt, b.reason]),
      );
    });
  ban
    .command('add <address>')
    .description('ban an address by hand')
    .option('--for <duration>', 'how long, e.g. 1h or 7d', '24h')
    .option('--reason <text>', 'why', 'banned by an administrator')
    .action(async (address: string, o: { for: string; reason: string }) => {
      const seconds = parseDuration('--for', o.for) / 1000;
      const b = await withStore(globals(), (s) => addBan(s.directory, null, address, seconds, o.reason));
      console.log(`${b.address} banned until ${b.expiresAt.toISOString()}`);
    });
  ban
    .command('del <address>')
    .description('lift a ban (a running server lets the address in within 5 s)')
    .action(async (address: string) => {
      const a = await withStore(globals(), (s) => deleteBan(s.directory, null, address));
      console.log(`ban of ${a} lifted`);
    });
}
