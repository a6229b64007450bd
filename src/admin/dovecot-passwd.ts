/**
 * Dovecot's passwd-file format (https://doc.dovecot.org/configuration_manual/authentication/passwd_file/),
 * read for `tern import-users`: one user a line,
 * `user:password:uid:gid:gecos:home:shell:extra_fields`, later fields optional, the extra
 * fields space-separated `key=value` (`userdb_mail=maildir:~/Maildir`,
 * `userdb_quota_rule=*:storage=1G`, `nopassword`…) and free to contain colons. Lines that
 * are blank or start with `#` are skipped. Pure: text in, typed entries or a UserError
 * naming the file and line out.
 */
import { UserError } from '../errors.js';
import { normalizeAddress, normalizeDomain } from '../mail/address.js';

export interface PasswdEntry {
  /** Line number in the file, from 1. */
  line: number;
  /** The user field as written. */
  user: string;
  /** The address: `user@domain` normalized, or the bare user at the default domain. */
  address: string;
  /** The password field as written (`{SCHEME}…`, a bare crypt string, or empty). */
  password: string;
  uid: string;
  gid: string;
  home: string;
  /** `key=value` extra fields (a key without `=` has value ''); the `userdb_` prefix is kept. */
  extra: Record<string, string>;
  /** The Maildir the user's mail is in, when the entry says so or home/Maildir is the convention; null when unknown. */
  maildir: string | null;
  /** From `userdb_quota_rule=*:storage=…`; null when absent. */
  quotaBytes: number | null;
  /** What was read but cannot be carried over (a quota rule Tern does not understand). */
  notes: string[];
}

/** Dovecot's size units in quota rules: B, K, M, G, T (powers of 1024), with an optional trailing B. */
function quotaSize(value: string): number | null {
  const m = /^(\d+)\s*([KMGT]?)B?$/i.exec(value.trim());
  if (!m) return null;
  const power = ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
  const bytes = Number(m[1]) * 1024 ** power;
  return Number.isSafeInteger(bytes) ? bytes : null;
}

/** Expands Dovecot's `%u`, `%n`, `%d` (and their long `%{…}` forms) and `~` in a mail location path. */
function expandPath(path: string, user: string, local: string, domain: string, home: string): string | null {
  let p = path.replace(/%\{(user|username|domain)\}|%([und%])/g, (_, long: string | undefined, short: string | undefined) => {
    const k = long ?? short;
    return k === 'user' || k === 'u' ? user : k === 'username' || k === 'n' ? local : k === 'domain' || k === 'd' ? domain : '%';
  });
  if (p.startsWith('~')) {
    if (!home) return null;
    p = home.replace(/\/$/, '') + p.slice(1);
  }
  return p;
}

function maildirOf(extra: Record<string, string>, home: string, address: string): string | null {
  const at = address.lastIndexOf('@');
  const [local, domain] = [address.slice(0, at), address.slice(at + 1)];
  const location = extra.userdb_mail ?? extra.mail;
  if (location !== undefined) {
    // `maildir:PATH[:KEY=VALUE…]`; other formats (mdbox, sdbox, mbox) have no Maildir.
    const m = /^maildir:([^:]+)/.exec(location);
    return m ? expandPath(m[1]!, address, local, domain, home) : null;
  }
  return home ? `${home.replace(/\/$/, '')}/Maildir` : null;
}

function parseExtra(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const field of text.split(/\s+/).filter(Boolean)) {
    const eq = field.indexOf('=');
    if (eq < 0) out[field] = '';
    else out[field.slice(0, eq)] = field.slice(eq + 1);
  }
  return out;
}

/**
 * Parses a passwd-file. `defaultDomain` is the domain of bare user names; without it a
 * bare name is an error. Throws UserError `FILE:LINE: why` for a malformed line and for a
 * user listed twice.
 */
export function parsePasswdFile(text: string, opts: { fileName: string; defaultDomain?: string }): PasswdEntry[] {
  const defaultDomain = opts.defaultDomain === undefined ? undefined : normalizeDomain(opts.defaultDomain);
  const entries: PasswdEntry[] = [];
  const seen = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const where = `${opts.fileName}:${i + 1}`;
    if (raw.trim() === '' || raw.trimStart().startsWith('#')) continue;
    const fields = raw.split(':');
    if (fields.length < 2) throw new UserError(`${where}: expected user:password[:uid:gid:gecos:home:shell:extra fields], got no colon`);
    const [user, password, uid = '', gid = '', , home = '', , ...rest] = fields;
    const extraText = rest.join(':');
    if (!user) throw new UserError(`${where}: the user name is empty`);
    if (/\s/.test(user)) throw new UserError(`${where}: the user name ${JSON.stringify(user)} contains white space`);
    if (home !== '' && !home.startsWith('/')) throw new UserError(`${where}: the home directory ${JSON.stringify(home)} is not an absolute path`);
    let address: string;
    try {
      if (user.includes('@')) address = normalizeAddress(user);
      else if (defaultDomain) address = normalizeAddress(`${user}@${defaultDomain}`);
      else throw new UserError(`user ${JSON.stringify(user)} has no domain; give the default domain (--domain)`);
    } catch (err) {
      if (err instanceof UserError) throw new UserError(`${where}: ${err.message}`);
      throw err;
    }
    const first = seen.get(address);
    if (first !== undefined) throw new UserError(`${where}: ${address} is listed twice (first at line ${first})`);
    seen.set(address, i + 1);
    const extra = parseExtra(extraText);
    const rule = extra.userdb_quota_rule ?? extra.quota_rule;
    const storage = rule ? /^\*:storage=(.+)$/.exec(rule) : null;
    const quotaBytes = storage ? quotaSize(storage[1]!) : null;
    const notes = rule && quotaBytes === null ? [`quota rule ${JSON.stringify(rule)} not carried over (only *:storage=SIZE is)`] : [];
    entries.push({ line: i + 1, user, address, password: password!, uid, gid, home, extra, maildir: maildirOf(extra, home, address), quotaBytes, notes });
  }
  return entries;
}
