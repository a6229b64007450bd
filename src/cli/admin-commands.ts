/**
 * `tern domain` (with its DKIM keys and DNS records), `tern user` and `tern alias`: the
 * rules live in admin/ (shared with the HTTP API); these commands parse and print.
 */
import type { Command } from 'commander';
import { createAccount, deleteAccount, listAccounts, setPassword, setQuota } from '../admin/accounts.js';
import { addAlias, deleteAlias, listAliases } from '../admin/aliases.js';
import {
  addDomain,
  deleteDomain,
  dkimKeys,
  dnsRecords,
  inboundPolicy,
  listDomains,
  parseDkimChoice,
  publicDkimKey,
  rotateDkimKey,
  setInboundPolicy,
} from '../admin/domains.js';
import type { InboundPolicy } from '../smtp/inbound-auth.js';
import { parseSize } from '../config/parse.js';
import { siteHostname } from '../config/init-data-dir.js';
import { UserError } from '../errors.js';
import { printJson, printTable, readStdin, withStore, type GlobalOptions } from './context.js';

type Globals = () => GlobalOptions;

const passwordFrom = (stdin: boolean | undefined) => (stdin ? readStdin() : Promise.resolve(undefined));

export function registerDomainCommands(program: Command, globals: Globals): void {
  const domain = program.command('domain').description('manage the domains this server receives mail for');
  domain
    .command('add <name>')
    .description('add a local domain, with a DKIM key to sign its outbound mail (see `tern domain dns`)')
    .option('--dkim <algorithms>', 'DKIM keys to create: rsa, ed25519, both or none', 'rsa')
    .action(async (name: string, o: { dkim: string }) => {
      const algorithms = parseDkimChoice(o.dkim);
      const { domain: d, keys } = await withStore(globals(), (s) => addDomain(s.directory, null, name, algorithms));
      console.log(`domain ${d.name} added${keys.length ? `; DKIM selector ${keys.map((k) => `${k.selector} (${k.algorithm})`).join(', ')}` : ''}`);
    });
  domain
    .command('dns <name>')
    .description('the DNS records to publish for a domain: MX, SPF, DKIM, DMARC and the RFC 6186 SRV records')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const records = await withStore(globals(), async (s) => dnsRecords(s.directory, null, name, await siteHostname(s)));
      if (o.json) return printJson(records);
      for (const r of records)
        console.log(`${`${r.name}.`.padEnd(40)} ${r.type.padEnd(5)} ${r.type === 'TXT' ? quoteTxt(r.value) : r.value}${r.note ? `  ; ${r.note}` : ''}`);
    });
  domain
    .command('policy <name>')
    .description('what the MX enforces for mail to the domain; without options, shows it')
    .option('--dmarc <mode>', "enforce: refuse (550 5.7.1) or send to Junk as the sender's DMARC record asks; monitor: only record the results")
    .option('--spf <mode>', 'reject: refuse an SPF fail (550 5.7.23) whatever DMARC says; monitor: SPF counts through DMARC only')
    .option('--mta-sts <mode>', 'the MTA-STS policy served for the domain: enforce, testing (the default) or none')
    .option('--greylist <on|off>', "greylist strangers' mail for the domain (451 4.7.1 until they retry after --greylist-delay)")
    .option('--json', 'print JSON')
    .action(async (name: string, o: { dmarc?: string; spf?: string; greylist?: string; mtaSts?: string; json?: boolean }) => {
      if (o.greylist !== undefined && o.greylist !== 'on' && o.greylist !== 'off')
        throw new UserError(`--greylist: on or off, got ${JSON.stringify(o.greylist)}`);
      const change = {
        ...(o.dmarc ? { dmarc: o.dmarc } : {}),
        ...(o.spf ? { spf: o.spf } : {}),
        ...(o.greylist ? { greylist: o.greylist === 'on' } : {}),
        ...(o.mtaSts ? { mtaSts: o.mtaSts } : {}),
      } as Partial<InboundPolicy>;
      const policy = await withStore(globals(), (s) =>
        Object.keys(change).length ? setInboundPolicy(s.directory, null, name, change) : inboundPolicy(s.directory, null, name),
      );
      if (o.json) return printJson(policy);
      console.log(`dmarc: ${policy.dmarc}\nspf: ${policy.spf}\ngreylist: ${policy.greylist ? 'on' : 'off'}\nmta-sts: ${policy.mtaSts}`);
    });
  const dkim = domain.command('dkim').description("a domain's DKIM keys");
  dkim
    .command('list [domain]')
    .description('DKIM keys and their state (pending: waiting for its record; active: signing; retiring: replaced)')
    .option('--json', 'print JSON')
    .action(async (name: string | undefined, o: { json?: boolean }) => {
      const shown = (await withStore(globals(), (s) => dkimKeys(s.directory, null, name))).map(publicDkimKey);
      if (o.json) return printJson(shown);
      printTable(
        ['DOMAIN', 'SELECTOR', 'ALGORITHM', 'STATE', 'CREATED', 'RETIRES'],
        shown.map((k) => [k.domain, k.selector, k.algorithm, k.state, k.createdAt, k.retireAt ?? '-']),
      );
    });
  dkim
    .command('rotate <domain>')
    .description(
      'add a new key next to the current one; it starts signing once its record is published (checked by `tern serve`), and the old one retires after --dkim-retire-after',
    )
    .option('--algorithm <algorithm>', 'rsa or ed25519', 'rsa')
    .action(async (name: string, o: { algorithm: string }) => {
      const algorithms = parseDkimChoice(o.algorithm);
      if (algorithms.length !== 1) throw new UserError('--algorithm: rsa or ed25519');
      const key = publicDkimKey(await withStore(globals(), (s) => rotateDkimKey(s.directory, null, name, algorithms[0]!)));
      console.log(`new DKIM selector ${key.selector} for ${key.domain}; publish this record:`);
      console.log(`${key.record.name}. TXT ${quoteTxt(key.record.value)}`);
    });
  domain
    .command('list')
    .description('list local domains')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const domains = await withStore(globals(), (s) => listDomains(s.directory, null));
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
      const n = await withStore(globals(), (s) => deleteDomain(s.directory, null, name));
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
      const quotaBytes = opts.quota ? parseSize('--quota', opts.quota) : null;
      const given = await passwordFrom(opts.passwordStdin);
      const { account, password, generated } = await withStore(globals(), (s) =>
        createAccount(s, null, { address, password: given, isAdmin: opts.admin, quotaBytes }),
      );
      console.log(`account ${account.address} created${generated ? `; password: ${password}` : ''}`);
    });
  user
    .command('list')
    .description('list accounts and their message counts')
    .option('--domain <name>', 'only accounts in this domain')
    .option('--json', 'print JSON')
    .action(async (opts: { domain?: string; json?: boolean }) => {
      const rows = await withStore(globals(), async (s) => (await listAccounts(s, null, { domain: opts.domain })).accounts);
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
      const given = await passwordFrom(opts.passwordStdin);
      const r = await withStore(globals(), (s) => setPassword(s, null, address, given));
      console.log(`password for ${r.address} changed${r.generated ? `; new password: ${r.password}` : ''}`);
    });
  user
    .command('quota <address> <size>')
    .description('set the mailbox quota, e.g. 2G, or "unlimited"')
    .action(async (address: string, size: string) => {
      const quotaBytes = size.toLowerCase() === 'unlimited' ? null : parseSize('quota', size);
      const a = await withStore(globals(), (s) => setQuota(s, null, address, quotaBytes));
      console.log(`quota for ${a} set to ${quotaBytes === null ? 'unlimited' : `${quotaBytes} bytes`}`);
    });
  user
    .command('del <address>')
    .description('delete an account with all its mailboxes and messages')
    .action(async (address: string) => {
      const a = await withStore(globals(), (s) => deleteAccount(s, null, address));
      console.log(`account ${a} deleted`);
    });
}

export function registerAliasCommands(program: Command, globals: Globals): void {
  const alias = program.command('alias').description('manage aliases (address → addresses) and catch-alls (@domain → address)');
  alias
    .command('add <source> <targets...>')
    .description('deliver mail for <source> (user@domain, or @domain for a catch-all) to each local target address')
    .action(async (source: string, targets: string[]) => {
      const r = await withStore(globals(), (s) => addAlias(s.directory, null, source, targets));
      console.log(`alias ${r.source} -> ${r.targets.join(', ')} added`);
    });
  alias
    .command('list')
    .description('list aliases')
    .option('--domain <name>', 'only aliases in this domain')
    .option('--json', 'print JSON')
    .action(async (opts: { domain?: string; json?: boolean }) => {
      const rows = await withStore(globals(), (s) => listAliases(s.directory, null, opts.domain));
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
      const r = await withStore(globals(), (s) => deleteAlias(s.directory, null, source, target));
      console.log(`alias ${r.source}${r.target ? ` -> ${r.target}` : ''} deleted`);
    });
}

/** A TXT value as zone files write it: quoted strings of at most 255 bytes. */
function quoteTxt(value: string): string {
  const parts: string[] = [];
  for (let i = 0; i < value.length; i += 255) parts.push(`"${value.slice(i, i + 255)}"`);
  return parts.join(' ');
}
