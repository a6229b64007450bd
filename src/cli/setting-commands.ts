/** `tern setting list|get|set|del`: the editable site settings (admin/settings.ts holds the list and the validators). */
import type { Command } from 'commander';
import { deleteSetting, getSetting, listSettings, setSetting, SETTINGS, type SettingView, type TakesEffect } from '../admin/settings.js';
import { printJson, printTable, withStore, type GlobalOptions } from './context.js';

const WHEN = 'a running tern serve keeps what it read at start, except the backup settings: restart it to apply a change';
const when = (t: TakesEffect) =>
  t === 'minute' ? 'a running tern serve sees it within a minute' : 'a running tern serve keeps what it read at start: restart it to apply a change';

const keysHelp = () => SETTINGS.map((s) => `  ${s.key.padEnd(17)} ${s.description} (unset: ${s.unset}${s.flag ? `; overridden by ${s.flag}` : ''})`).join('\n');

export function registerSettingCommands(program: Command, globals: () => GlobalOptions): void {
  const setting = program
    .command('setting')
    .description('site settings kept in the database (a tern serve flag overrides each)')
    .addHelpText('after', `\nSettings:\n${keysHelp()}\n\nChanges take effect at the next tern serve start.`);
  setting
    .command('list')
    .description('every editable setting with its value')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const all = await withStore(globals(), (s) => listSettings(s.directory, null));
      if (o.json) return printJson(all);
      printTable(
        ['KEY', 'VALUE', 'UNSET MEANS'],
        all.map((v) => [v.key, v.value ?? '-', v.unset]),
      );
    });
  setting
    .command('get <key>')
    .description('one setting: its value alone, or "(not set: …)"')
    .option('--json', 'print JSON')
    .action(async (key: string, o: { json?: boolean }) => {
      const v: SettingView = await withStore(globals(), (s) => getSetting(s.directory, null, key));
      if (o.json) return printJson(v);
      console.log(v.value ?? `(not set: ${v.unset})`);
    });
  setting
    .command('set <key> <value>')
    .description(`check and store a setting (${WHEN})`)
    .addHelpText('after', `\nSettings:\n${keysHelp()}`)
    .option('--json', 'print JSON')
    .action(async (key: string, value: string, o: { json?: boolean }) => {
      const { setting: v, previous } = await withStore(globals(), (s) => setSetting(s.directory, null, key, value));
      if (o.json) return printJson({ ...v, previous });
      console.log(previous === v.value ? `${v.key} is already ${v.value}` : `${v.key} = ${v.value} (${when(v.takesEffect)})`);
    });
  setting
    .command('del <key>')
    .description(`remove a setting, so what applies when it is not set comes back (${WHEN})`)
    .option('--json', 'print JSON')
    .action(async (key: string, o: { json?: boolean }) => {
      const r = await withStore(globals(), (s) => deleteSetting(s.directory, null, key));
      if (o.json) return printJson(r);
      console.log(`${r.key} removed (was ${r.previous})`);
    });
}
