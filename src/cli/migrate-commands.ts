/**
 * `tern import-users` (and `tern import-maildir TREE --users`): the users of a
 * Dovecot/Postfix host (a Dovecot passwd-file, with their password hashes), their aliases
 * (a Postfix virtual map) and, with a mail tree, their Maildirs. The rules live in
 * admin/legacy-users.ts and admin/legacy-host.ts; this parses options and prints what
 * happened to each entry.
 */
import type { Command } from 'commander';
import { importLegacyUsers, importVirtualMap, readPasswdFile, readVirtualMap, type AliasesImport, type UsersImport } from '../admin/legacy-users.js';
import { importLegacyMail, type UserMail } from '../admin/legacy-host.js';
import { printJson, withStore, type GlobalOptions } from './context.js';
import { createProgress } from './progress.js';

type Globals = () => GlobalOptions;

export interface ImportUsersOptions {
  domain?: string;
  virtual?: string;
  createDomains?: boolean;
  updatePasswords?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

/** The options `tern import-users` and `tern import-maildir --users` share. */
function legacyOptions(cmd: Command): Command {
  return cmd
    .option('--domain <domain>', 'the domain of user names written without one')
    .option(
      '--virtual <map-file>',
      'a Postfix virtual map (source form, as postmap reads it): entries whose targets are all local become aliases; the others are listed',
    )
    .option('--create-domains', "add the users' domains that are not hosted here (without it, a missing domain stops the import before anything is written)")
    .option('--update-passwords', "give existing accounts the file's password hash (when users kept changing passwords on the old host)")
    .option('--dry-run', 'check the files and show what would be done, writing nothing')
    .option('--json', 'print the summary as JSON');
}

/**
 * Users (and aliases) from a legacy host, then, given a mail tree, each user's Maildir. Both
 * files are read before anything is written, so a mistake in either changes nothing.
 */
export async function importLegacyHost(globals: Globals, passwdFile: string, tree: string | null, o: ImportUsersOptions): Promise<void> {
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
    const mail = tree
      ? await importLegacyMail(s, { tree, users: users.users, dryRun: o.dryRun }, (address) => createProgress(`mail of ${address}`, { json: o.json }))
      : undefined;
    return { users, aliases, mail };
  });
  if (o.json) return printJson(result);
  printUsers(result.users);
  if (result.aliases) printAliases(result.aliases);
  if (result.mail) printMail(result.mail, Boolean(o.dryRun));
  if (o.dryRun) console.log('dry run: nothing was written');
}

export function registerMigrateCommands(program: Command, globals: Globals): void {
  legacyOptions(
    program
      .command('import-users <passwd-file>')
      .description(
        "create accounts from a Dovecot passwd-file (user:{SCHEME}hash:uid:gid:gecos:home:shell:extra), keeping their password hashes: each is checked at the user's first login and replaced by Tern's own then; with --virtual, aliases from a Postfix virtual map. Re-running is safe: existing accounts and aliases are kept",
      ),
  ).action((passwdFile: string, o: ImportUsersOptions) => importLegacyHost(globals, passwdFile, null, o));
}

/** `tern import-maildir TREE --users PASSWD-FILE`: the options of import-users on the command of maildir-commands.ts. */
export const addLegacyHostOptions = legacyOptions;

function printMail(mail: UserMail[], dryRun: boolean): void {
  for (const m of mail) {
    if (!m.maildir) console.log(`mail     ${m.address}: ${m.reason}`);
    else if (dryRun || !m.summary) console.log(`mail     ${m.address}: would import ${m.maildir}`);
    else
      console.log(
        `mail     ${m.address}: ${m.summary.messages} message(s) in ${m.summary.mailboxes.length} mailbox(es) from ${m.maildir}${m.summary.failed ? `, ${m.summary.failed} failed` : ''}`,
      );
  }
  const found = mail.filter((m) => m.maildir);
  console.log(
    `mail: ${found.length} Maildir(s)${dryRun ? ' found' : ` imported, ${found.reduce((n, m) => n + (m.summary?.messages ?? 0), 0)} messages`}; ${mail.length - found.length} user(s) without one`,
  );
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
