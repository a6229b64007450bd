/**
 * `tern config export FILE` and `tern config apply FILE [--dry-run] [--prune]`: the site as
 * one YAML file (admin/config-file.ts), and making the site match one (admin/site-config.ts).
 */
import { chmod, readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { formatSiteConfig, parseSiteConfig } from '../admin/config-file.js';
import { applyChanges, planSite, siteConfig } from '../admin/site-config.js';
import { UserError } from '../errors.js';
import { readStdin, withStore, type GlobalOptions } from './context.js';

async function readConfig(file: string): Promise<string> {
  if (file === '-') return readStdin();
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function registerConfigCommands(program: Command, globals: () => GlobalOptions): void {
  const config = program.command('config').description('the site as one YAML file: domains, accounts, aliases, settings and routes');
  config
    .command('export <file>')
    .description('write the site as YAML to FILE ("-": stdout); accounts without passwords unless --password-hashes')
    .option('--password-hashes', 'include each account’s password hash, so apply on another site keeps the passwords (keep the file secret)')
    .action(async (file: string, o: { passwordHashes?: boolean }) => {
      const text = formatSiteConfig(await withStore(globals(), (s) => siteConfig(s, null, { passwordHashes: o.passwordHashes })));
      if (file === '-') return void process.stdout.write(text);
      await writeFile(file, text, { mode: o.passwordHashes ? 0o600 : 0o644 });
      // The mode above applies only to a new file: one written over keeps its own, so set it.
      await chmod(file, o.passwordHashes ? 0o600 : 0o644);
      console.log(`site written to ${file}`);
    });
  config
    .command('apply <file>')
    .description(
      'make the site match FILE ("-": stdin), printing one line per change (+ added, ~ changed, - removed); the whole file is checked first and a mistake changes nothing',
    )
    .option('--dry-run', 'print the changes without making them')
    .option('--prune', 'also remove what the file does not name, in the sections it has (accounts with all their mail)')
    .addHelpText(
      'after',
      `
A section left out of the file is left alone. An account, alias or domain the file names is
made to match it (a field left out takes its default); things it does not name are kept
unless --prune. A new account gets a generated password, printed once, unless the file
gives its password_hash. Settings take effect at the next tern serve start.`,
    )
    .action(async (file: string, o: { dryRun?: boolean; prune?: boolean }) => {
      const name = file === '-' ? 'stdin' : file;
      const parsed = parseSiteConfig(await readConfig(file), name);
      await withStore(globals(), async (s) => {
        const changes = await planSite(s, null, parsed, { prune: Boolean(o.prune), fileName: name });
        if (changes.length === 0) return console.log('no changes: the site matches the file');
        if (o.dryRun) {
          for (const c of changes) console.log(c.line);
          return console.log(`dry run: ${changes.length} change(s) not made`);
        }
        await applyChanges(changes, (line) => console.log(line));
        console.log(`${changes.length} change(s) made`);
      });
    });
}
