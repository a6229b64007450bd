/**
 * `tern config export|apply`: the site as a SiteConfig (admin/config-file.ts reads and writes
 * the YAML), and the changes that make the site match one. Rules:
 * - A section the file leaves out is left alone. Within a section, what the file names is
 *   made to match it exactly (an alias's targets, an account's admin flag and quota, a
 *   domain's policy: a field left out means its default); what the file does not name is
 *   kept, unless `prune` removes it.
 * - Everything is checked before the first change: the file (admin/config-file.ts) and
 *   then against the site (an account or alias in a domain that will not be hosted, a
 *   pruned domain that would keep accounts), so a refused file changes nothing.
 * - Changes go through the admin services, in an order that works: domains, accounts,
 *   aliases, settings and routes are added first; removals go last, aliases before
 *   accounts before domains. New domains get an RSA DKIM key, as `tern domain add` does.
 */
import { UserError } from '../errors.js';
import { domainOf } from '../mail/address.js';
import { DEFAULT_POLICY, type InboundPolicy } from '../smtp/inbound-auth.js';
import type { Store } from '../store/store.js';
import { createAccount, deleteAccount, listAccounts, passwordHashOf, setAdmin, setQuota } from './accounts.js';
import type { Actor } from './actor.js';
import { addAlias, deleteAlias, listAliases } from './aliases.js';
import { ConfigFileError, type AccountEntry, type AliasEntry, type DomainEntry, type RouteEntry, type SiteConfig } from './config-file.js';
import { addDomain, deleteDomain, inboundPolicy, listDomains, setInboundPolicy } from './domains.js';
import { deleteRoute, listRoutes, setRoute } from './routes.js';
import { deleteSetting, listSettings, setSetting } from './settings.js';

/** A whole site: every section present. */
export type FullSiteConfig = { [K in keyof SiteConfig]: NonNullable<SiteConfig[K]> };

/** One change: its line (`+ domain example.org`), and the step that makes it, which may return a note to print after the line (a generated password). */
export interface Change {
  line: string;
  run(): Promise<string | void>;
}

const byName =
  <T>(key: (t: T) => string) =>
  (a: T, b: T) =>
    key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;

/** The site as it is, sorted, so two exports of equal sites are equal text. Password hashes only when asked for. */
export async function siteConfig(store: Store, actor: Actor, o: { passwordHashes?: boolean } = {}): Promise<FullSiteConfig> {
  const dir = store.directory;
  const domains: DomainEntry[] = [];
  for (const d of await listDomains(dir, actor)) domains.push({ name: d.name, policy: await inboundPolicy(dir, actor, d.name) });
  const accounts: AccountEntry[] = [];
  for (const a of (await listAccounts(store, actor)).accounts) {
    const hash = o.passwordHashes ? await passwordHashOf(store, actor, a.address) : null;
    accounts.push({ address: a.address, admin: a.admin, quotaBytes: a.quotaBytes, ...(hash ? { passwordHash: hash } : {}) });
  }
  const aliases = new Map<string, string[]>();
  for (const r of await listAliases(dir, actor)) aliases.set(r.address, [...(aliases.get(r.address) ?? []), r.target]);
  const settings = new Map<string, string>();
  for (const s of await listSettings(dir, actor)) if (s.value !== null) settings.set(s.key, s.value);
  return {
    domains: domains.sort(byName((d) => d.name)),
    accounts: accounts.sort(byName((a) => a.address)),
    aliases: [...aliases].map(([source, targets]) => ({ source, targets: targets.sort() })).sort(byName((a) => a.source)),
    settings,
    routes: (await listRoutes(dir, actor)).sort(byName((r) => r.domain)),
  };
}

const quotaText = (q: number | null) => (q === null ? 'unlimited' : String(q));
const aliasDomain = (source: string) => (source.startsWith('@') ? source.slice(1) : domainOf(source));

function policyChanges(from: InboundPolicy, to: InboundPolicy): string[] {
  return (Object.keys(DEFAULT_POLICY) as Array<keyof InboundPolicy>).filter((k) => from[k] !== to[k]).map((k) => `${k} ${from[k]} -> ${to[k]}`);
}

/**
 * The changes that make the site match `config` (none when it already does), or a
 * ConfigFileError listing every reason the file cannot be applied; nothing is changed here.
 */
export async function planSite(store: Store, actor: Actor, config: SiteConfig, o: { prune: boolean; fileName: string }): Promise<Change[]> {
  const dir = store.directory;
  const site = await siteConfig(store, actor);
  const errors: string[] = [];
  const fail = (line: number | undefined, message: string) => errors.push(`${o.fileName}${line ? `:${line}` : ''}: ${message}`);
  const adds: Change[] = [];
  const removals: Change[] = [];
  const prunes: Change[] = [];

  // Domains
  const hosted = new Map(site.domains.map((d) => [d.name, d.policy]));
  const fileDomains = config.domains ? new Set(config.domains.map((d) => d.name)) : null;
  const pruneDomains = o.prune && fileDomains ? site.domains.map((d) => d.name).filter((n) => !fileDomains.has(n)) : [];
  const finalDomains = new Set([...(fileDomains ?? []), ...[...hosted.keys()].filter((n) => !pruneDomains.includes(n))]);
  for (const d of config.domains ?? []) {
    const current = hosted.get(d.name);
    if (!current) adds.push({ line: `+ domain ${d.name}`, run: async () => void (await addDomain(dir, actor, d.name, ['rsa'])) });
    const changed = policyChanges(current ?? DEFAULT_POLICY, d.policy);
    if (changed.length)
      adds.push({ line: `~ domain ${d.name} policy: ${changed.join(', ')}`, run: async () => void (await setInboundPolicy(dir, actor, d.name, d.policy)) });
  }

  // Accounts
  const existing = new Map(site.accounts.map((a) => [a.address, a]));
  const fileAccounts = config.accounts ? new Set(config.accounts.map((a) => a.address)) : null;
  const pruneAccounts = o.prune && fileAccounts ? site.accounts.map((a) => a.address).filter((a) => !fileAccounts.has(a)) : [];
  for (const a of config.accounts ?? []) {
    if (!finalDomains.has(domainOf(a.address))) fail(a.line, `account ${a.address}: domain ${domainOf(a.address)} is not hosted (add it under domains)`);
    const current = existing.get(a.address);
    if (!current) {
      const how = a.passwordHash ? 'password from password_hash' : 'a password is generated';
      adds.push({
        line: `+ account ${a.address} (admin ${a.admin}, quota ${quotaText(a.quotaBytes)}, ${how})`,
        run: async () => {
          const made = await createAccount(store, actor, { address: a.address, isAdmin: a.admin, quotaBytes: a.quotaBytes, passwordHash: a.passwordHash });
          return made.generated ? `  password of ${a.address} (shown once): ${made.password}` : undefined;
        },
      });
      continue;
    }
    if (current.admin !== a.admin)
      adds.push({
        line: `~ account ${a.address} admin: ${current.admin} -> ${a.admin}`,
        run: async () => void (await setAdmin(store, actor, a.address, a.admin)),
      });
    if (current.quotaBytes !== a.quotaBytes)
      adds.push({
        line: `~ account ${a.address} quota: ${quotaText(current.quotaBytes)} -> ${quotaText(a.quotaBytes)}`,
        run: async () => void (await setQuota(store, actor, a.address, a.quotaBytes)),
      });
    // password_hash is used only to create an account: a user's own password change (or the
    // upgrade of an imported hash at login) is not undone by the next apply.
  }
  const finalAccounts = [...(config.accounts ?? []).map((a) => a.address), ...site.accounts.map((a) => a.address).filter((a) => !pruneAccounts.includes(a))];

  // Aliases: a named alias gets exactly the file's targets.
  const aliasNow = new Map(site.aliases.map((a) => [a.source, a.targets]));
  const fileAliases = config.aliases ? new Map(config.aliases.map((a) => [a.source, a])) : null;
  const finalAliases: AliasEntry[] = [...(config.aliases ?? [])];
  for (const a of config.aliases ?? []) {
    if (!finalDomains.has(aliasDomain(a.source))) fail(a.line, `alias ${a.source}: domain ${aliasDomain(a.source)} is not hosted`);
    for (const t of a.targets) if (!finalDomains.has(domainOf(t))) fail(a.line, `alias ${a.source}: target ${t} is not in a hosted domain`);
    const now = aliasNow.get(a.source) ?? [];
    const missing = a.targets.filter((t) => !now.includes(t));
    for (const t of missing) adds.push({ line: `+ alias ${a.source} -> ${t}`, run: async () => void (await addAlias(dir, actor, a.source, [t])) });
    for (const t of now.filter((t) => !a.targets.includes(t)))
      removals.push({ line: `- alias ${a.source} -> ${t}`, run: async () => void (await deleteAlias(dir, actor, a.source, t)) });
  }
  for (const a of site.aliases) {
    if (fileAliases?.has(a.source)) continue;
    if (o.prune && fileAliases) {
      for (const t of a.targets) prunes.push({ line: `- alias ${a.source} -> ${t}`, run: async () => void (await deleteAlias(dir, actor, a.source, t)) });
    } else finalAliases.push(a);
  }

  // Settings and routes
  const settingsNow = site.settings;
  for (const [key, value] of config.settings ?? []) {
    const now = settingsNow.get(key);
    if (now === value) continue;
    adds.push({
      line: now === undefined ? `+ setting ${key}: ${value}` : `~ setting ${key}: ${now} -> ${value}`,
      run: async () => void (await setSetting(dir, actor, key, value)),
    });
  }
  if (o.prune && config.settings)
    for (const [key, value] of settingsNow)
      if (!config.settings.has(key)) prunes.push({ line: `- setting ${key} (was ${value})`, run: async () => void (await deleteSetting(dir, actor, key)) });
  const routesNow = new Map(site.routes.map((r) => [r.domain, r.target]));
  for (const r of config.routes ?? []) {
    const now = routesNow.get(r.domain);
    if (now === r.target) continue;
    adds.push({
      line: now === undefined ? `+ route ${r.domain}: ${r.target}` : `~ route ${r.domain}: ${now} -> ${r.target}`,
      run: async () => void (await setRoute(dir, actor, r.domain, r.target)),
    });
  }
  if (o.prune && config.routes) {
    const keep = new Set(config.routes.map((r: RouteEntry) => r.domain));
    for (const r of site.routes)
      if (!keep.has(r.domain)) prunes.push({ line: `- route ${r.domain} (was ${r.target})`, run: async () => void (await deleteRoute(dir, actor, r.domain)) });
  }

  // Pruned accounts and domains go last, once nothing refers to them.
  for (const a of pruneAccounts) prunes.push({ line: `- account ${a} (with all its mail)`, run: async () => void (await deleteAccount(store, actor, a)) });
  for (const d of pruneDomains) {
    const users = finalAccounts.filter((a) => domainOf(a) === d);
    const uses = finalAliases.filter((a) => aliasDomain(a.source) === d || a.targets.some((t) => domainOf(t) === d)).map((a) => a.source);
    if (users.length || uses.length)
      fail(
        undefined,
        `domain ${d} is not in the file, but ${[...users.map((u) => `account ${u}`), ...uses.map((u) => `alias ${u}`)].join(', ')} would stay in it`,
      );
    prunes.push({ line: `- domain ${d} (its API keys are revoked, its webhooks deleted)`, run: async () => void (await deleteDomain(dir, actor, d)) });
  }

  if (errors.length) throw new ConfigFileError(errors.join('\n'));
  return [...adds, ...removals, ...prunes];
}

/** Runs the changes in order, telling `print` each line (and its note) as it is done; stops at the first failure, naming it. */
export async function applyChanges(changes: Change[], print: (line: string) => void): Promise<void> {
  for (const c of changes) {
    let note: string | void;
    try {
      note = await c.run();
    } catch (err) {
      if (err instanceof UserError) throw new UserError(`${c.line.slice(2)}: ${err.message} (the changes printed above were made)`);
      throw err;
    }
    print(c.line);
    if (note) print(note);
  }
}
