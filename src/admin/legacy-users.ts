/**
 * Moving the users of a Dovecot/Postfix host to Tern: accounts from a Dovecot passwd-file
 * with their password hashes kept (verified at login and replaced by scrypt then, see
 * auth/legacy-hashes.ts), and aliases from a Postfix `virtual` map. The same for the CLI
 * (`tern import-users`) and whatever else imports (the Maildir importer finds each user's
 * Maildir in the result).
 *
 * Rules: nothing is written when a file is malformed or a user's domain is not hosted
 * here (unless `createDomains`); re-running is safe (existing accounts are kept, or get
 * the file's hash with `updatePasswords`; existing aliases are kept); what cannot be
 * carried over is reported entry by entry, never dropped in silence.
 */
import { readFile } from 'node:fs/promises';
import { legacyHashFromField, legacyHashInfo } from '../auth/legacy-hashes.js';
import { ConflictError, UserError } from '../errors.js';
import { domainOf, normalizeAddress } from '../mail/address.js';
import type { Store } from '../store/store.js';
import { createAccount, setPasswordHash } from './accounts.js';
import { manages, type Actor } from './actor.js';
import { addAlias } from './aliases.js';
import { addDomain } from './domains.js';
import { parsePasswdFile, type PasswdEntry } from './dovecot-passwd.js';
import { parseVirtualMap, type VirtualEntry, type VirtualMap } from './postfix-virtual.js';

/** Larger files than this are refused: a passwd-file or virtual map of 64 MiB is already a very large site. */
const MAX_FILE_BYTES = 64 * 1024 * 1024;

async function readText(path: string, what: string): Promise<string> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    throw new UserError(`cannot read the ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (data.length > MAX_FILE_BYTES) throw new UserError(`the ${what} ${path} is over 64 MiB`);
  return data.toString('utf8');
}

/** Reads and parses a Dovecot passwd-file (UserError `FILE:LINE: why` when malformed). */
export async function readPasswdFile(path: string, defaultDomain?: string): Promise<PasswdEntry[]> {
  return parsePasswdFile(await readText(path, 'passwd-file'), { fileName: path, defaultDomain });
}

/** Reads and parses a Postfix virtual map (UserError `FILE:LINE: why` when malformed). */
export async function readVirtualMap(path: string): Promise<VirtualMap> {
  return parseVirtualMap(await readText(path, 'virtual map'), { fileName: path });
}

export interface ImportedUser {
  address: string;
  /** Line in the passwd-file. */
  line: number;
  /** created; updated (its hash replaced, with updatePasswords); kept (it existed and was left as it is); refused. */
  action: 'created' | 'updated' | 'kept' | 'refused';
  /** The password scheme in the file (`SHA512-CRYPT`, `CRYPT`…). */
  scheme: string;
  /** False when Tern cannot verify the hash: the account exists but needs `tern user passwd`. */
  passwordUsable: boolean;
  /** Why the user was refused, or why the password is not usable. */
  reason?: string;
  home: string | null;
  /** Where the user's Maildir is, by the entry's mail location or `HOME/Maildir`; null when unknown. */
  maildir: string | null;
  quotaBytes: number | null;
  notes: string[];
}

export interface UsersImport {
  dryRun: boolean;
  /** Domains created (or that would be, in a dry run). */
  domainsCreated: string[];
  users: ImportedUser[];
  counts: { created: number; updated: number; kept: number; refused: number; passwordUnusable: number };
}

export interface UsersImportOptions {
  /** A path, or entries already parsed (readPasswdFile). */
  passwdFile: string | PasswdEntry[];
  /** Domain of bare user names. */
  defaultDomain?: string;
  /** Create the users' domains that are not hosted here; otherwise their absence is an error and nothing is imported. */
  createDomains?: boolean;
  /** Give existing accounts the file's hash (when the old host stayed in use); otherwise they are kept as they are. */
  updatePasswords?: boolean;
  dryRun?: boolean;
}

/** What Tern stores for a passwd-file password field, and whether it can be verified. */
function storedHash(e: PasswdEntry): { hash: string; scheme: string; usable: boolean; reason?: string } {
  if (e.password === '') {
    const reason = 'nopassword' in e.extra || 'userdb_nopassword' in e.extra ? 'nopassword: any password was accepted there' : 'no password in the file';
    return { hash: '{CRYPT}*', scheme: '', usable: false, reason: `${reason}; set one with tern user passwd` };
  }
  const hash = legacyHashFromField(e.password);
  const info = legacyHashInfo(hash);
  return info.verifiable
    ? { hash, scheme: info.scheme, usable: true }
    : { hash, scheme: info.scheme, usable: false, reason: `${info.reason}; set a password with tern user passwd` };
}

/**
 * Imports the users of a Dovecot passwd-file as accounts that keep their password hashes.
 * Throws UserError before writing anything when the file is malformed or (without
 * `createDomains`) a domain is missing.
 */
export async function importLegacyUsers(store: Store, actor: Actor, o: UsersImportOptions): Promise<UsersImport> {
  const entries = typeof o.passwdFile === 'string' ? await readPasswdFile(o.passwdFile, o.defaultDomain) : o.passwdFile;
  const dryRun = Boolean(o.dryRun);
  const domains = [...new Set(entries.map((e) => domainOf(e.address)))].sort();
  const missing: string[] = [];
  for (const d of domains) if (manages(actor, d) && !(await store.directory.isLocalDomain(d))) missing.push(d);
  if (missing.length > 0 && !o.createDomains)
    throw new UserError(`not hosted here: ${missing.join(', ')}; add them with tern domain add, or pass --create-domains`);
  if (!dryRun) for (const d of missing) await addDomain(store.directory, actor, d, ['rsa']);

  const users: ImportedUser[] = [];
  for (const e of entries) {
    const { hash, scheme, usable, reason } = storedHash(e);
    const base = { address: e.address, line: e.line, scheme, passwordUsable: usable, home: e.home || null, maildir: e.maildir, quotaBytes: e.quotaBytes };
    const notes = [...e.notes];
    if (!manages(actor, domainOf(e.address))) {
      users.push({ ...base, action: 'refused', reason: `this key manages only ${actor?.domain}`, notes });
      continue;
    }
    const existing = await store.directory.getAccount(e.address);
    if (existing) {
      if (!o.updatePasswords) {
        notes.push('exists: its password and quota were left as they are');
        users.push({ ...base, action: 'kept', ...(reason ? { reason } : {}), notes });
        continue;
      }
      if ((await store.directory.getPasswordHash(e.address)) === hash) {
        notes.push('exists with this hash already');
        users.push({ ...base, action: 'kept', ...(reason ? { reason } : {}), notes });
        continue;
      }
      if (!dryRun) await setPasswordHash(store, actor, e.address, hash);
      notes.push('exists: its password hash was replaced by the file’s');
      users.push({ ...base, action: 'updated', ...(reason ? { reason } : {}), notes });
      continue;
    }
    if (!dryRun) {
      try {
        await createAccount(store, actor, { address: e.address, passwordHash: hash, quotaBytes: e.quotaBytes });
      } catch (err) {
        // Made meanwhile by someone else: kept as it is.
        if (!(err instanceof ConflictError)) throw err;
        notes.push('exists: its password and quota were left as they are');
        users.push({ ...base, action: 'kept', notes });
        continue;
      }
    }
    users.push({ ...base, action: 'created', ...(reason ? { reason } : {}), notes });
  }
  const count = (a: ImportedUser['action']) => users.filter((u) => u.action === a).length;
  return {
    dryRun,
    domainsCreated: missing,
    users,
    counts: {
      created: count('created'),
      updated: count('updated'),
      kept: count('kept'),
      refused: count('refused'),
      passwordUnusable: users.filter((u) => u.action !== 'refused' && !u.passwordUsable).length,
    },
  };
}

export interface ImportedAlias {
  line: number;
  source: string;
  targets: string[];
  /** created (some or all targets added); exists (every target was there); skipped (nothing to do); refused (cannot be an alias here). */
  action: 'created' | 'exists' | 'skipped' | 'refused';
  reason?: string;
  warnings: string[];
}

export interface AliasesImport {
  dryRun: boolean;
  aliases: ImportedAlias[];
  /** Lines of the map that are no entries Tern can read (regexp tables, repeated keys). */
  skippedLines: Array<{ line: number; text: string; reason: string }>;
  counts: { created: number; exists: number; skipped: number; refused: number };
}

export interface AliasesImportOptions {
  /** A path, or a map already parsed (readVirtualMap). */
  mapFile: string | VirtualMap;
  dryRun?: boolean;
  /** Accounts and domains an import in the same run creates (so a dry run counts them as here). */
  plannedAccounts?: string[];
  plannedDomains?: string[];
}

/** One entry's targets as Tern addresses, or why it cannot be a Tern alias. */
async function aliasTargets(
  isLocal: (domain: string) => Promise<boolean>,
  e: VirtualEntry,
  source: string,
): Promise<{ targets: string[] } | { refused: string } | { skipped: string }> {
  const targets: string[] = [];
  const remote: string[] = [];
  for (const t of e.targets) {
    if (t.startsWith('@')) return { refused: `maps a whole domain to another (${e.key} → ${t}); Tern has no domain aliases` };
    if (!t.includes('@')) return { refused: `target ${JSON.stringify(t)} has no domain (Postfix appends $myorigin); write it as an address` };
    let n: string;
    try {
      n = normalizeAddress(t);
    } catch (err) {
      return { refused: `target ${JSON.stringify(t)}: ${(err as Error).message}` };
    }
    if (!(await isLocal(domainOf(n)))) remote.push(n);
    targets.push(n);
  }
  if (remote.length > 0) return { refused: `forwards to addresses outside this server (${remote.join(', ')}); Tern aliases deliver only locally` };
  const unique = [...new Set(targets)];
  if (unique.length === 1 && unique[0] === source) return { skipped: 'maps the address to itself: the account gets its mail without an alias' };
  if (unique.includes(source))
    return {
      refused: `delivers to ${source} itself and to others: a Tern alias takes the place of the account, so ${source} would get no copy`,
    };
  return { targets: unique };
}

/**
 * Imports the entries of a Postfix virtual map whose targets are all local as aliases
 * (admin/aliases.ts); reports every other entry with the reason.
 */
export async function importVirtualMap(store: Store, actor: Actor, o: AliasesImportOptions): Promise<AliasesImport> {
  const map = typeof o.mapFile === 'string' ? await readVirtualMap(o.mapFile) : o.mapFile;
  const dryRun = Boolean(o.dryRun);
  const planned = new Set(o.plannedAccounts ?? []);
  const plannedDomains = new Set(o.plannedDomains ?? []);
  const isLocal = async (domain: string) => plannedDomains.has(domain) || (await store.directory.isLocalDomain(domain));
  const aliases: ImportedAlias[] = [];
  const existing = new Set((await store.directory.listAliases()).map((r) => `${r.address} ${r.target}`));
  for (const e of map.entries) {
    const entry = { line: e.line, source: e.key, targets: e.targets, warnings: [] as string[] };
    if (e.kind === 'domain') {
      const hosted = await isLocal(e.key).catch(() => false);
      aliases.push({ ...entry, action: 'skipped', reason: `declares a virtual alias domain (${hosted ? 'hosted here' : 'not hosted here: tern domain add'})` });
      continue;
    }
    if (e.kind === 'bare-user') {
      aliases.push({ ...entry, action: 'refused', reason: 'a bare local part matches only in $myorigin/$mydestination domains; write it as an address' });
      continue;
    }
    let source: string;
    try {
      source = e.kind === 'catch-all' ? `@${domainOf(normalizeAddress(`x${e.key}`))}` : normalizeAddress(e.key);
    } catch (err) {
      aliases.push({ ...entry, action: 'refused', reason: (err as Error).message });
      continue;
    }
    entry.source = source;
    const domain = source.startsWith('@') ? source.slice(1) : domainOf(source);
    if (!manages(actor, domain) || !(await isLocal(domain))) {
      aliases.push({ ...entry, action: 'refused', reason: `domain ${domain} is not hosted here` });
      continue;
    }
    const decided = await aliasTargets(isLocal, e, source);
    if ('refused' in decided) {
      aliases.push({ ...entry, action: 'refused', reason: decided.refused });
      continue;
    }
    if ('skipped' in decided) {
      aliases.push({ ...entry, action: 'skipped', reason: decided.skipped });
      continue;
    }
    entry.targets = decided.targets;
    for (const t of decided.targets) {
      const facts = await store.directory.lookup(t);
      if (!facts.account && facts.aliasTargets.length === 0 && !planned.has(t)) entry.warnings.push(`${t} is neither an account nor an alias here`);
    }
    const fresh = decided.targets.filter((t) => !existing.has(`${source} ${t}`));
    if (fresh.length === 0) {
      aliases.push({ ...entry, action: 'exists' });
      continue;
    }
    if (!dryRun) await addAlias(store.directory, actor, source, fresh);
    for (const t of fresh) existing.add(`${source} ${t}`);
    aliases.push({ ...entry, action: 'created' });
  }
  const count = (a: ImportedAlias['action']) => aliases.filter((x) => x.action === a).length;
  return {
    dryRun,
    aliases,
    skippedLines: map.skipped,
    counts: { created: count('created'), exists: count('exists'), skipped: count('skipped'), refused: count('refused') },
  };
}
