/**
 * `tern domain` (with its DKIM keys and DNS records), `tern user` and `tern alias`: site
 * administration on the store.
 * Validation of names happens in mail/address.ts; the store reports conflicts.
 */
import type { Command } from 'commander';
import { generatePassword, hashPassword } from '../auth/password.js';
import { UserError } from '../errors.js';
import { domainOf, normalizeAddress, normalizeAliasSource, normalizeDomain } from '../mail/address.js';
import { parseSize } from '../config/parse.js';
import { siteHostname } from '../config/init-data-dir.js';
import { addDkimKey, dkimRecordName, dkimRecordValue } from '../queue/dkim.js';
import type { DkimAlgorithm, DkimKey } from '../store/store.js';
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
    .description('add a local domain, with a DKIM key to sign its outbound mail (see `tern domain dns`)')
    .option('--dkim <algorithms>', 'DKIM keys to create: rsa, ed25519, both or none', 'rsa')
    .action(async (name: string, o: { dkim: string }) => {
      const n = normalizeDomain(name);
      const algorithms = dkimAlgorithms(o.dkim);
      const keys = await withStore(globals(), async (s) => {
        await s.directory.addDomain(n);
        const made = [];
        for (const a of algorithms) made.push(await addDkimKey(s.directory, n, a, 'active'));
        return made;
      });
      console.log(`domain ${n} added${keys.length ? `; DKIM selector ${keys.map((k) => `${k.selector} (${k.algorithm})`).join(', ')}` : ''}`);
    });
  domain
    .command('dns <name>')
    .description('the DNS records to publish for a domain: MX, SPF, DKIM, DMARC and the RFC 6186 SRV records')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const n = normalizeDomain(name);
      const records = await withStore(globals(), async (s) => {
        if (!(await s.directory.isLocalDomain(n))) throw new UserError(`domain ${n} does not exist`);
        return dnsRecords(n, await siteHostname(s), await s.directory.dkimKeys(n));
      });
      if (o.json) return printJson(records);
      for (const r of records)
        console.log(`${`${r.name}.`.padEnd(40)} ${r.type.padEnd(5)} ${r.type === 'TXT' ? quoteTxt(r.value) : r.value}${r.note ? `  ; ${r.note}` : ''}`);
    });
  const dkim = domain.command('dkim').description("a domain's DKIM keys");
  dkim
    .command('list [domain]')
    .description('DKIM keys and their state (pending: waiting for its record; active: signing; retiring: replaced)')
    .option('--json', 'print JSON')
    .action(async (name: string | undefined, o: { json?: boolean }) => {
      const keys = await withStore(globals(), (s) => s.directory.dkimKeys(name ? normalizeDomain(name) : undefined));
      const shown = keys.map((k) => ({
        domain: k.domain,
        selector: k.selector,
        algorithm: k.algorithm,
        state: k.state,
        createdAt: k.createdAt.toISOString(),
        retireAt: k.retireAt?.toISOString() ?? null,
      }));
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
      const n = normalizeDomain(name);
      const [algorithm] = dkimAlgorithms(o.algorithm);
      if (!algorithm || o.algorithm === 'both') throw new UserError('--algorithm: rsa or ed25519');
      const key = await withStore(globals(), async (s) => {
        if (!(await s.directory.isLocalDomain(n))) throw new UserError(`domain ${n} does not exist`);
        return addDkimKey(s.directory, n, algorithm, 'pending');
      });
      console.log(`new DKIM selector ${key.selector} for ${n}; publish this record:`);
      console.log(`${dkimRecordName(key)}. TXT ${quoteTxt(dkimRecordValue(key))}`);
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

function dkimAlgorithms(value: string): DkimAlgorithm[] {
  const choices: Record<string, DkimAlgorithm[]> = { rsa: ['rsa'], ed25519: ['ed25519'], both: ['rsa', 'ed25519'], none: [] };
  const found = choices[value.toLowerCase()];
  if (!found) throw new UserError(`--dkim: rsa, ed25519, both or none, got ${JSON.stringify(value)}`);
  return found;
}

/** A TXT value as zone files write it: quoted strings of at most 255 bytes. */
function quoteTxt(value: string): string {
  const parts: string[] = [];
  for (let i = 0; i < value.length; i += 255) parts.push(`"${value.slice(i, i + 255)}"`);
  return parts.join(' ');
}

interface DnsRecord {
  name: string;
  type: string;
  value: string;
  note?: string;
}

/** What a domain publishes so its mail flows and authenticates; SRV ports are the standard ones (map Tern's ports to them in production). */
function dnsRecords(domain: string, hostname: string, keys: DkimKey[]): DnsRecord[] {
  const srv = (service: string, port: number): DnsRecord => ({ name: `_${service}._tcp.${domain}`, type: 'SRV', value: `0 1 ${port} ${hostname}.` });
  return [
    { name: domain, type: 'MX', value: `10 ${hostname}.` },
    { name: domain, type: 'TXT', value: 'v=spf1 mx ~all', note: 'SPF: the MX hosts send its mail' },
    ...keys
      .filter((k) => k.state !== 'retiring' || (k.retireAt?.getTime() ?? 0) > Date.now())
      .map((k) => ({ name: dkimRecordName(k), type: 'TXT', value: dkimRecordValue(k), note: `DKIM ${k.algorithm}, ${k.state}` })),
    {
      name: `_dmarc.${domain}`,
      type: 'TXT',
      value: `v=DMARC1; p=none; rua=mailto:postmaster@${domain}`,
      note: 'DMARC: start with p=none, then quarantine or reject',
    },
    srv('submission', 587),
    srv('submissions', 465),
    srv('imap', 143),
    srv('imaps', 993),
    srv('pop3', 110),
    srv('pop3s', 995),
  ];
}
