/**
 * `tern import-maildir`, `tern export-maildir`, `tern import-mbox`, `tern export-mbox`: one
 * account's mail to and from Maildir++ trees and mbox files (delivery/maildir-transfer.ts,
 * delivery/mbox-transfer.ts). They parse, show progress and print the summary.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { exportMaildir, importMaildir } from '../delivery/maildir-transfer.js';
import { exportMbox, importMbox } from '../delivery/mbox-transfer.js';
import type { TransferSummary } from '../delivery/transfer.js';
import { maildirDelivery, setMaildirDelivery } from '../admin/maildir.js';
import { UserError } from '../errors.js';
import { printJson, withStore, type GlobalOptions } from './context.js';
import { addLegacyHostOptions, importLegacyHost, type ImportUsersOptions } from './migrate-commands.js';
import { createProgress, type CliProgress } from './progress.js';

type Globals = () => GlobalOptions;

function report(what: string, summary: TransferSummary, json: boolean | undefined): void {
  if (json) return printJson(summary);
  const boxes = summary.mailboxes.map((m) => `${m.name} (${m.messages}${m.keptUids ? '' : ', new uids'})`).join(', ');
  console.log(
    `${what} ${summary.messages} message(s), ${summary.bytes} bytes, for ${summary.account}${summary.failed ? `; ${summary.failed} failed` : ''}: ${boxes}`,
  );
}

async function withProgress<T>(label: string, json: boolean | undefined, run: (p: CliProgress) => Promise<T>): Promise<T> {
  const progress = createProgress(label, { json });
  try {
    return await run(progress);
  } finally {
    progress.finish();
  }
}

export function registerMaildirCommands(program: Command, globals: Globals): void {
  const domain = program.commands.find((c) => c.name() === 'domain') ?? program.command('domain');
  domain
    .command('maildir <domain> [dir]')
    .description(
      "write the domain's mail to DIR/<domain>/<local part>/Maildir for Courier or Dovecot to serve, instead of Tern's mailboxes; `off` sends it to Tern again; without DIR, shows the setting",
    )
    .option('--json', 'print JSON')
    .action(async (name: string, dir: string | undefined, o: { json?: boolean }) => {
      const root = await withStore(globals(), (s) =>
        dir === undefined ? maildirDelivery(s.directory, null, name) : setMaildirDelivery(s.directory, null, name, dir === 'off' ? null : resolve(dir)),
      );
      if (o.json) return printJson({ domain: name.toLowerCase(), maildir: root });
      console.log(root ? `${name}: Maildir delivery under ${root}` : `${name}: mail is stored by Tern (no Maildir delivery)`);
    });
  addLegacyHostOptions(
    program
      .command('import-maildir <dir>')
      .description(
        "import a Maildir++ tree (Courier, Dovecot) into an account (--to): folders, flags, keywords, and Dovecot's uids when the mailboxes are new or empty; or, with --users, a legacy host's mail tree: its users from a Dovecot passwd-file (as tern import-users) and each one's Maildir",
      )
      .option('--to <address>', 'the account')
      .option('--users <passwd-file>', "the old host's Dovecot passwd-file: import its users, then find each one's Maildir in DIR"),
  ).action(async (dir: string, o: ImportUsersOptions & { to?: string; users?: string }) => {
    if (Boolean(o.to) === Boolean(o.users)) throw new UserError('tern import-maildir needs exactly one of --to ADDRESS and --users PASSWD-FILE');
    if (o.users) return importLegacyHost(globals, o.users, resolve(dir), o);
    if (o.domain || o.virtual || o.createDomains || o.updatePasswords || o.dryRun)
      throw new UserError('--domain, --virtual, --create-domains, --update-passwords and --dry-run go with --users');
    const summary = await withProgress('import-maildir', o.json, (p) =>
      withStore(globals(), (s) => importMaildir(s, { dir: resolve(dir), address: o.to! }, p)),
    );
    report('imported', summary, o.json);
  });
  program
    .command('export-maildir <address> <dir>')
    .description('export an account into a new Maildir++ tree, with dovecot-uidlist and dovecot-keywords so Dovecot keeps its uids and keywords')
    .option('--json', 'print a JSON summary')
    .action(async (address: string, dir: string, o: { json?: boolean }) => {
      const summary = await withProgress('export-maildir', o.json, (p) => withStore(globals(), (s) => exportMaildir(s, { address, dir: resolve(dir) }, p)));
      report('exported', summary, o.json);
    });
  program
    .command('import-mbox <file>')
    .description('import an mbox file (mboxrd; mboxo and mboxcl2 are read as well as they can be) into a mailbox of an account')
    .requiredOption('--to <address>', 'the account')
    .option('--mailbox <name>', 'the mailbox (made when missing)', 'INBOX')
    .option('--json', 'print a JSON summary')
    .action(async (file: string, o: { to: string; mailbox: string; json?: boolean }) => {
      const summary = await withProgress('import-mbox', o.json, (p) =>
        withStore(globals(), (s) => importMbox(s, { file: resolve(file), address: o.to, mailbox: o.mailbox }, p)),
      );
      report('imported', summary, o.json);
    });
  program
    .command('export-mbox <address> <mailbox> <file>')
    .description('export a mailbox to a new mbox file (mboxrd)')
    .option('--json', 'print a JSON summary')
    .action(async (address: string, mailbox: string, file: string, o: { json?: boolean }) => {
      const summary = await withProgress('export-mbox', o.json, (p) =>
        withStore(globals(), (s) => exportMbox(s, { address, mailbox, file: resolve(file) }, p)),
      );
      report('exported', summary, o.json);
    });
}
