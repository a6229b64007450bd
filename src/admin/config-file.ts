/**
 * The declarative site file of `tern config export|apply` (YAML, `version: 1`): reading one
 * into a checked SiteConfig, with every mistake reported by line number before anything is
 * changed, and writing one. Pure: no store; admin/site-config.ts compares it with the site.
 *
 * ```yaml
 * version: 1
 * domains:
 *   - name: example.org
 *     policy: { dmarc: enforce, spf: monitor, greylist: false, mtaSts: testing }
 * accounts:
 *   - { address: alice@example.org, admin: false, quota: 2G }
 * aliases:
 *   postmaster@example.org: [alice@example.org]
 * settings:
 *   smarthost: relay.example.net:587
 * routes:
 *   partner.example: 10.0.0.5:25
 * ```
 */
import { Document, isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair } from 'yaml';
import { UserError } from '../errors.js';
import { parseSize } from '../config/parse.js';
import { normalizeAddress, normalizeAliasSource, normalizeDomain } from '../mail/address.js';
import { parsePolicy, type InboundPolicy } from '../smtp/inbound-auth.js';
import { checkPasswordHash } from './accounts.js';
import { validateRouteTarget } from './routes.js';
import { validateSetting } from './settings.js';

export const CONFIG_VERSION = 1;
const SECTIONS = ['version', 'domains', 'accounts', 'aliases', 'settings', 'routes'] as const;
const DOMAIN_KEYS = ['name', 'policy'];
const ACCOUNT_KEYS = ['address', 'admin', 'quota', 'password_hash'];
const MAX_ERRORS = 20;

export interface DomainEntry {
  /** Where it is in the file (0 when not from a file). */
  line?: number;
  name: string;
  /** Left out: the default policy. */
  policy: InboundPolicy;
}
export interface AccountEntry {
  /** Where it is in the file (0 when not from a file). */
  line?: number;
  address: string;
  admin: boolean;
  quotaBytes: number | null;
  /** Used as it is instead of a generated password; changes the account's password when it differs. */
  passwordHash?: string;
}
export interface AliasEntry {
  /** Where it is in the file (0 when not from a file). */
  line?: number;
  source: string;
  targets: string[];
}
export interface RouteEntry {
  /** Where it is in the file (0 when not from a file). */
  line?: number;
  domain: string;
  target: string;
}

/** A checked file; a section left out of the file is null (and left alone by apply, even with --prune). */
export interface SiteConfig {
  domains: DomainEntry[] | null;
  accounts: AccountEntry[] | null;
  aliases: AliasEntry[] | null;
  settings: Map<string, string> | null;
  routes: RouteEntry[] | null;
}

/** Mistakes found in a file, each `NAME:LINE: message`; thrown as one UserError. */
export class ConfigFileError extends UserError {
  override name = 'ConfigFileError';
}

/** Reads and checks a site file; throws ConfigFileError listing every mistake with its line. */
export function parseSiteConfig(text: string, fileName: string): SiteConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: true });
  const errors: Array<{ line: number; message: string }> = [];
  const report = () =>
    new ConfigFileError(
      errors
        .sort((a, b) => a.line - b.line)
        .slice(0, MAX_ERRORS)
        .map((e) => `${fileName}${e.line ? `:${e.line}` : ''}: ${e.message}`)
        .join('\n') + (errors.length > MAX_ERRORS ? `\n… and ${errors.length - MAX_ERRORS} more` : ''),
    );
  const lineOf = (node: Node | Pair | null | undefined): number => {
    const range = node && 'range' in node ? node.range : node && 'key' in node ? (node.key as Node | null)?.range : undefined;
    return range ? lines.linePos(range[0]).line : 0;
  };
  const at = (node: Node | Pair | null | undefined, message: string) => {
    errors.push({ line: lineOf(node), message });
  };
  for (const e of doc.errors) errors.push({ line: e.linePos?.[0].line ?? 0, message: e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '') });
  if (errors.length) throw report();

  /** Runs a check; its UserError becomes a line of the report. */
  const check = <T>(node: Node | Pair | null | undefined, run: () => T): T | undefined => {
    try {
      return run();
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      at(node, err.message);
      return undefined;
    }
  };
  const scalar = (node: Node | null | undefined, what: string): string | undefined => {
    if (isScalar(node) && (typeof node.value === 'string' || typeof node.value === 'number')) return String(node.value);
    at(node, `${what}: expected a text value`);
    return undefined;
  };
  const keyOf = (p: Pair) => (isScalar(p.key) ? String(p.key.value) : '');
  const fields = (node: Node, allowed: string[], what: string): Map<string, Node | null> => {
    const out = new Map<string, Node | null>();
    if (!isMap(node)) {
      at(node, `${what}: expected a mapping`);
      return out;
    }
    for (const p of node.items) {
      const k = keyOf(p);
      if (!allowed.includes(k)) at(p, `${what}: unknown key ${JSON.stringify(k)} (expected ${allowed.join(', ')})`);
      else out.set(k, p.value as Node | null);
    }
    return out;
  };
  const list = (node: Node | null | undefined, what: string): Node[] => {
    if (node == null || (isScalar(node) && node.value === null)) return [];
    if (isSeq(node)) return node.items as Node[];
    at(node, `${what}: expected a list`);
    return [];
  };
  const mapping = (node: Node | null | undefined, what: string): Pair[] => {
    if (node == null || (isScalar(node) && node.value === null)) return [];
    if (isMap(node)) return node.items;
    at(node, `${what}: expected a mapping`);
    return [];
  };

  const root = doc.contents;
  const top = root && isMap(root) ? root : null;
  if (!top) {
    at(root, 'expected a mapping with version: 1 and the sections domains, accounts, aliases, settings, routes');
    throw report();
  }
  const section = new Map<string, Node | null>();
  for (const p of top.items) {
    const k = keyOf(p);
    if (!(SECTIONS as readonly string[]).includes(k)) at(p, `unknown key ${JSON.stringify(k)} (expected ${SECTIONS.join(', ')})`);
    else section.set(k, p.value);
  }
  const version = section.get('version');
  if (version === undefined) at(top, `version: missing; the first line should be version: ${CONFIG_VERSION}`);
  else if (!isScalar(version) || version.value !== CONFIG_VERSION) at(version, `version: expected ${CONFIG_VERSION}`);

  const seen = (set: Set<string>, node: Node | Pair, name: string, what: string) => {
    if (set.has(name)) at(node, `${what} ${name} appears twice`);
    set.add(name);
  };

  let domains: DomainEntry[] | null = null;
  if (section.has('domains')) {
    domains = [];
    const names = new Set<string>();
    for (const item of list(section.get('domains'), 'domains')) {
      const f = isScalar(item) ? new Map<string, Node | null>([['name', item]]) : fields(item, DOMAIN_KEYS, 'domain');
      const raw = f.has('name') ? scalar(f.get('name'), 'domain name') : (at(item, 'domain: name is missing'), undefined);
      const name = raw === undefined ? undefined : check(f.get('name'), () => normalizeDomain(raw));
      const policyNode = f.get('policy');
      const policy = check(policyNode, () => parsePolicy(policyNode ? (policyNode.toJSON() as unknown) : {}));
      if (name === undefined || policy === undefined) continue;
      seen(names, item, name, 'domain');
      domains.push({ name, policy, line: lineOf(item) });
    }
  }

  let accounts: AccountEntry[] | null = null;
  if (section.has('accounts')) {
    accounts = [];
    const addresses = new Set<string>();
    for (const item of list(section.get('accounts'), 'accounts')) {
      const f = fields(item, ACCOUNT_KEYS, 'account');
      if (!isMap(item)) continue;
      if (!f.has('address')) {
        at(item, 'account: address is missing');
        continue;
      }
      const raw = scalar(f.get('address'), 'account address');
      const address = raw === undefined ? undefined : check(f.get('address'), () => normalizeAddress(raw));
      const adminNode = f.get('admin');
      const admin = adminNode == null ? false : isScalar(adminNode) && typeof adminNode.value === 'boolean' ? adminNode.value : undefined;
      if (admin === undefined) at(adminNode, 'account admin: expected true or false');
      const quotaNode = f.get('quota');
      const quotaBytes = check(quotaNode, () => quotaOf(quotaNode));
      const hashNode = f.get('password_hash');
      const passwordHash = hashNode == null ? undefined : scalar(hashNode, 'password_hash');
      if (passwordHash !== undefined) check(hashNode, () => checkPasswordHash(passwordHash));
      if (address === undefined || admin === undefined || quotaBytes === undefined) continue;
      seen(addresses, item, address, 'account');
      accounts.push({ line: lineOf(item), address, admin, quotaBytes, ...(passwordHash !== undefined ? { passwordHash } : {}) });
    }
  }

  let aliases: AliasEntry[] | null = null;
  if (section.has('aliases')) {
    aliases = [];
    for (const p of mapping(section.get('aliases'), 'aliases')) {
      const source = check(p, () => normalizeAliasSource(keyOf(p)));
      const v = p.value as Node | null;
      const items = isSeq(v) ? (v.items as Node[]) : [v];
      const targets: string[] = [];
      let bad = source === undefined;
      for (const t of items) {
        const raw = scalar(t, `alias ${keyOf(p)} target`);
        const target = raw === undefined ? undefined : check(t ?? p, () => normalizeAddress(raw));
        if (target === undefined) bad = true;
        else if (!targets.includes(target)) targets.push(target);
      }
      if (items.length === 0) at(p, `alias ${keyOf(p)}: give at least one target`);
      else if (!bad) aliases.push({ line: lineOf(p), source: source!, targets: targets.sort() });
    }
  }

  let settings: Map<string, string> | null = null;
  if (section.has('settings')) {
    settings = new Map();
    for (const p of mapping(section.get('settings'), 'settings')) {
      const raw = scalar(p.value as Node | null, `setting ${keyOf(p)}`);
      const value = raw === undefined ? undefined : check(p, () => validateSetting(keyOf(p), raw));
      if (value !== undefined) settings.set(keyOf(p).trim().toLowerCase(), value);
    }
  }

  let routes: RouteEntry[] | null = null;
  if (section.has('routes')) {
    routes = [];
    for (const p of mapping(section.get('routes'), 'routes')) {
      const domain = check(p, () => normalizeDomain(keyOf(p)));
      const raw = scalar(p.value as Node | null, `route ${keyOf(p)}`);
      const target = raw === undefined ? undefined : check(p.value as Node, () => validateRouteTarget(raw));
      if (domain !== undefined && target !== undefined) routes.push({ line: lineOf(p), domain, target });
    }
  }

  if (errors.length) throw report();
  return { domains, accounts, aliases, settings, routes };
}

/** `quota:` as bytes: a whole number, a size like 2G, or unlimited (also null or left out). */
function quotaOf(node: Node | null | undefined): number | null {
  if (node == null || !isScalar(node) || node.value === null || node.value === 'unlimited') {
    if (node != null && !isScalar(node)) throw new UserError('account quota: expected bytes, a size like 2G, or unlimited');
    return null;
  }
  const v = node.value;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v !== 'string') throw new UserError('account quota: expected bytes, a size like 2G, or unlimited');
  return parseSize('account quota', v);
}

/** The file for a site as it is (everything SiteConfig holds), with `version: 1` first. */
export function formatSiteConfig(c: { [K in keyof SiteConfig]: NonNullable<SiteConfig[K]> }): string {
  const doc = new Document({
    version: CONFIG_VERSION,
    domains: c.domains.map((d) => ({ name: d.name, policy: d.policy })),
    accounts: c.accounts.map((a) => ({
      address: a.address,
      admin: a.admin,
      quota: a.quotaBytes ?? 'unlimited',
      ...(a.passwordHash ? { password_hash: a.passwordHash } : {}),
    })),
    aliases: Object.fromEntries(c.aliases.map((a) => [a.source, a.targets])),
    settings: Object.fromEntries(c.settings),
    routes: Object.fromEntries(c.routes.map((r) => [r.domain, r.target])),
  });
  // One line per domain policy and per alias: the file reads like a table.
  for (const d of (doc.get('domains') as { items: Node[] }).items) {
    const policy = isMap(d) ? d.get('policy', true) : null;
    if (isMap(policy)) policy.flow = true;
  }
  const aliases = doc.get('aliases');
  if (isMap(aliases)) for (const p of aliases.items) if (isSeq(p.value)) p.value.flow = true;
  return doc.toString({ lineWidth: 0 });
}
