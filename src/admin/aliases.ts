/**
 * Aliases (address → addresses) and catch-alls (@domain → address), the same for
 * `tern alias` and the HTTP API. Targets must be local addresses; a key limited to a
 * domain manages aliases whose source is in its domain.
 */
import { ForbiddenError, NotFoundError, UserError } from '../errors.js';
import { domainOf, normalizeAddress, normalizeAliasSource, normalizeDomain } from '../mail/address.js';
import type { AliasRow, DirectoryStore } from '../store/store.js';
import { manages, scopeDomain, type Actor } from './actor.js';

const MAX_TARGETS = 1000;

/** The domain of an alias source: `user@domain` or `@domain`. */
function sourceDomain(source: string): string {
  return source.startsWith('@') ? source.slice(1) : domainOf(source);
}

export async function addAlias(directory: DirectoryStore, actor: Actor, source: string, targets: string[]): Promise<{ source: string; targets: string[] }> {
  const src = normalizeAliasSource(source);
  if (!manages(actor, sourceDomain(src))) throw new ForbiddenError(`this key manages only ${actor?.domain}`);
  if (targets.length === 0) throw new UserError('give at least one target address');
  if (targets.length > MAX_TARGETS) throw new UserError(`at most ${MAX_TARGETS} targets`);
  const normalized = [...new Set(targets.map(normalizeAddress))];
  for (const t of normalized) {
    // Forwarding to other hosts would make the site an open relay for whoever writes an alias.
    if (!(await directory.isLocalDomain(domainOf(t)))) throw new UserError(`alias target ${t} is not in a local domain`);
  }
  for (const t of normalized) await directory.addAlias(src, t);
  return { source: src, targets: normalized };
}

export async function listAliases(directory: DirectoryStore, actor: Actor, domain?: string): Promise<AliasRow[]> {
  const only = scopeDomain(actor, domain ? normalizeDomain(domain) : undefined);
  return (await directory.listAliases()).filter((r) => only === undefined || sourceDomain(r.address) === only);
}

/** Deletes one target of an alias, or the whole alias. */
export async function deleteAlias(directory: DirectoryStore, actor: Actor, source: string, target?: string): Promise<{ source: string; target?: string }> {
  const src = normalizeAliasSource(source);
  const t = target ? normalizeAddress(target) : undefined;
  if (!manages(actor, sourceDomain(src))) throw new NotFoundError(`alias ${src} does not exist`);
  await directory.deleteAlias(src, t);
  return { source: src, target: t };
}
