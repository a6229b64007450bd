/**
 * `tern import-users`: the users of a Dovecot/Postfix host (a Dovecot passwd-file, with
 * their password hashes) and their aliases (a Postfix virtual map). The rules live in
 * admin/legacy-users.ts; this parses options and prints what happened to each entry.
 */
import type { Command } from 'commander';
import { importLegacyUsers, importVirtualMap, readPasswdFile, readVirtualMap, type AliasesImport, type UsersImport } from '../admin/legacy-users.js';
import { printJson, withStore, type GlobalOptions } from './context.js';

type Globals = () => GlobalOptions;

interface ImportUsersOptions {
  domain?: string;
  virtual?: string;
  createDomains?: boolean;
  updatePasswords?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

export function registerMigrateCommands(program: Command, globals: Globals): void {
  program
    .command('import-users <passwd-file>')
    .description(
      "create accounts from a Dovecot passwd-file (user:{SCHEME}hash:uid:gid:gecos:home:shell:extra), keeping their password hashes: each is checked at the user's first login and replaced by Tern's own then; with --virtual, aliases from a Postfix virtual map. Re-running is safe: existing accounts and aliases are kept",
    )
    .option('--domain <domain>', 'the domain of user names written without one')
    .option(
      '--virtual <map-file>',
      'a Postfix virtual map (source form, as postmap reads it): entries whose targets are all local become aliases; the others are listed',
    )
    .option('--create-domains', "add the users' domains that are not hosted here (without it, a missing domain stops the import before anything is written)")
    .option('--update-passwords', "give existing accounts the file's password hash (when users kept changing passwords on the old host)")
    .option('--dry-run', 'check the files and show what would be done, writing nothing')
    .option('--json', 'print the summary as JSON')
    .action(async (passwdFile: string, o: ImportUsersOptions) => {
      // Both files are read before anything is written, so a mistake in either changes nothing.
      const entries = await readPasswdFile(passwdFile, o.domain);
      const map = o.virtual ? await readVirtualMap(o.virtual) : undefined;
      const result = await withStore(globals(), async (s) => {
        const users = await importLegacyUsers(s, null, {
          passwdFile: entries,
          createDomains: o.createDomains,
          updatePasswords: o.updatePasswords,
          dryRun: o.dryRun,
        });
        const aliases = map
          ? await importVirtualMap(s, null, {
              mapFile: map,
              dryRun: o.dryRun,
              plannedAccounts: users.users.filter((u) => u.action === 'created').map((u) => u.address),
              plannedDomains: users.domainsCreated,
            })
          : undefined;
        return { users, aliases };
      });
      if (o.json) return printJson(result);
      printUsers(result.users);
      if (result.aliases) printAliases(result.aliases);
      if (o.dryRun) console.log('dry run: nothing was written');
    });
}

function printUsers(r: UsersImport): void {
  const would = r.dryRun ? 'would be ' : '';
  for (const d of r.domainsCreated) console.log(`domain ${d} ${would}created`);
  for (const u of r.users) {
    const scheme = u.scheme ? ` {${u.scheme}}` : '';
    const why = u.reason ? ` (${u.reason})` : '';
    const notes = u.notes.length ? `; ${u.notes.join('; ')}` : '';
    console.log(`${u.action.padEnd(8)} ${u.address}${scheme}${why}${notes}`);
  }
  const c = r.counts;
  console.log(
    `users: ${c.created} ${would}created, ${c.updated} ${would}updated, ${c.kept} kept, ${c.refused} refused` +
      (c.passwordUnusable ? `; ${c.passwordUnusable} without a password Tern can check (set one with tern user passwd)` : ''),
  );
}

function printAliases(r: AliasesImport): void {
  const would = r.dryRun ? 'would be ' : '';
  const lines = [
    ...r.aliases.map((a) => {
      const why = a.reason ? ` (${a.reason})` : '';
      const warnings = a.warnings.length ? `; ${a.warnings.join('; ')}` : '';
      return { line: a.line, text: `alias ${a.action.padEnd(8)} line ${a.line}: ${a.source} -> ${a.targets.join(', ')}${why}${warnings}` };
    }),
    ...r.skippedLines.map((s) => ({ line: s.line, text: `alias skipped  line ${s.line}: ${s.text.slice(0, 200)} (${s.reason})` })),
  ];
  for (const l of lines.sort((a, b) => a.line - b.line)) console.log(l.text);
  const c = r.counts;
  console.log(`aliases: ${c.created} ${would}created, ${c.exists} already there, ${c.skipped + r.skippedLines.length} skipped, ${c.refused} refused`);
}
