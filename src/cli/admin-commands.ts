/**
 * `tern domain`, `tern user` and `tern alias`: site administration on the store.
 * Validation of names happens in mail/address.ts; the store reports conflicts.
 */
import type { Command } from 'commander';
import { generatePassword, hashPassword } from '../auth/password.js';
import { UserError } from '../errors.js';
import { domainOf, normalizeAddress, normalizeAliasSource, normalizeDomain } from '../mail/address.js';
import { parseSize } from '../config/parse.js';
import { printJson, printTable, readStdin, withStore, type GlobalOptions } from './context.js';

const MIN_PASSWORD_LENGTH = 8;

type Globals = () => GlobalOptions;

async function newPassword(fromStdin: boolean): Promise<{ password: string; generated: boolean }> {
  if (!fromStdin) return { password: generatePassword(), generated: true };
  const password = await readStdin();
  if (password.length < MIN_PASSWORD_LENGTH) throw new UserError(`password must be at least ${MIN_PASSWORD_LENGTH} characters`);
  return { password, generated: false };
}

export function registerDomainCommands(program: Command, globals: Globals): void {
  const domain = program.command('domain').description('manage the domains this server receives mail for');
  domain
    .command('add <name>')
    .description('add a local domain')
    .action(async (name: string) => {
      const n = normalizeDomain(name);
      await withStore(globals(), (s) => s.directory.addDomain(n));
      console.log(`domain ${n} added`);
    });
  domain
    .command('list')
    .description('list local domains')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const domains = await withStore(globals(), (s) => s.directory.listDomains());
      if (opts.json) return printJson(domains.map((d) => ({ name: d.name, createdAt: d.createdAt.toISOString() })));
      printTable(
        ['DOMAIN', 'CREATED'],
        domains.map((d) => [d.name, d.createdAt.toISOString()]),
      );
    });
  domain
    .command('del <name>')
    .description('delete a domain (it must have no accounts or aliases left)')
    .action(async (name: string) => {
      const n = normalizeDomain(name);
      await withStore(globals(), (s) => s.directory.deleteDomain(n));
      console.log(`domain ${n} deleted`);
    });
}

export function registerUserCommands(program: Command, globals: Globals): void {
  const user = program.command('user').description('manage mail accounts');
  user
    .command('add <address>')
    .description('create an account with INBOX, Drafts, Sent, Trash, Junk and Archive; prints a generated password unless --password-stdin')
    .option('--password-stdin', 'read the password from standard input')
    .option('--admin', 'make the account an administrator')
    .option('--quota <size>', 'mailbox quota, e.g. 2G (default: unlimited)')
    .action(async (address: string, opts: { passwordStdin?: boolean; admin?: boolean; quota?: string }) => {
      const a = normalizeAddress(address);
      const quotaBytes = opts.quota ? parseSize('--quota', opts.quota) : null;
      const { password, generated } = await newPassword(Boolean(opts.passwordStdin));
      const passwordHash = await hashPassword(password);
      await withStore(globals(), (s) => s.directory.addAccount({ address: a, passwordHash, isAdmin: Boolean(opts.admin), quotaBytes }));
      console.log(`account ${a} created${generated ? `; password: ${password}` : ''}`);
    });
  user
    .command('list')
    .description('list accounts and their message counts')
    .option('--domain <name>', 'only accounts in this domain')
    .option('--json', 'print JSON')
    .action(async (opts: { domain?: string; json?: boolean }) => {
      const domain = opts.domain ? normalizeDomain(opts.domain) : undefined;
      const { accounts, counts } = await withStore(globals(), async (s) => ({
        accounts: await s.directory.listAccounts(domain),
        counts: new Map((await s.stats()).accounts.map((a) => [a.address, a.messages])),
      }));
      const rows = accounts.map((a) => ({
        address: a.address,
        admin: a.isAdmin,
        quotaBytes: a.quotaBytes,
        messages: counts.get(a.address) ?? 0,
        createdAt: a.createdAt.toISOString(),
      }));
      if (opts.json) return printJson(rows);
      printTable(
        ['ADDRESS', 'ADMIN', 'MESSAGES', 'QUOTA'],
        rows.map((r) => [r.address, r.admin ? 'yes' : '', String(r.messages), r.quotaBytes == null ? 'unlimited' : String(r.quotaBytes)]),
      );
    });
  user
    .command('passwd <address>')
    .description('set a new password (generated and printed unless --password-stdin)')
    .option('--password-stdin', 'read the password from standard input')
    .action(async (address: string, opts: { passwordStdin?: boolean }) => {
      const a = normalizeAddress(address);
      const { password, generated } = await newPassword(Boolean(opts.passwordStdin));
      const passwordHash = await hashPassword(password);
      await withStore(globals(), (s) => s.directory.setPasswordHash(a, passwordHash));
      console.log(`password for ${a} changed${generated ? `; new password: ${password}` : ''}`);
    });
  user
    .command('del <address>')
    .description('delete an account with all its mailboxes and messages')
    .action(async (address: string) => {
      const a = normalizeAddress(address);
      await withStore(globals(), (s) => s.directory.deleteAccount(a));
      console.log(`account ${a} deleted`);
    });
}

export function registerAliasCommands(program: Command, globals: Globals): void {
  const alias = program.command('alias').description('manage aliases (address → addresses) and catch-alls (@domain → address)');
  alias
    .command('add <source> <targets...>')
    .description('deliver mail for <source> (user@domain, or @domain for a catch-all) to each local target address')
    .action(async (source: string, targets: string[]) => {
      const src = normalizeAliasSource(source);
      const normalized = targets.map(normalizeAddress);
      await withStore(globals(), async (s) => {
        for (const t of normalized) {
          // Forwarding to other hosts needs the outbound queue; until then targets must be local.
          if (!(await s.directory.isLocalDomain(domainOf(t)))) throw new UserError(`alias target ${t} is not in a local domain`);
        }
        for (const t of normalized) await s.directory.addAlias(src, t);
      });
      console.log(`alias ${src} -> ${normalized.join(', ')} added`);
    });
  alias
    .command('list')
    .description('list aliases')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const rows = await withStore(globals(), (s) => s.directory.listAliases());
      if (opts.json) return printJson(rows);
      printTable(
        ['ALIAS', 'TARGET'],
        rows.map((r) => [r.address, r.target]),
      );
    });
  alias
    .command('del <source> [target]')
    .description('delete one target of an alias, or the whole alias')
    .action(async (source: string, target?: string) => {
      const src = normalizeAliasSource(source);
      const t = target ? normalizeAddress(target) : undefined;
      await withStore(globals(), (s) => s.directory.deleteAlias(src, t));
      console.log(`alias ${src}${t ? ` -> ${t}` : ''} deleted`);
    });
}
