/**
 * API keys as an admin action, the same for `tern apikey` and the HTTP API: scopes are
 * checked, the domain must exist, and a caller that is itself a key limited to a domain
 * (an admin key given to a customer) sees and makes only that domain's keys, never with
 * scopes it does not have.
 */
import { newApiToken } from '../auth/api-keys.js';
import { ForbiddenError, NotFoundError, UserError } from '../errors.js';
import { normalizeDomain } from '../mail/address.js';
import type { ApiKey, ApiScope, DirectoryStore } from '../store/store.js';
import { manages, scopeDomain, type Actor } from './actor.js';

export const API_SCOPES: readonly ApiScope[] = ['send', 'read', 'admin'];

export function parseScopes(text: string | string[]): ApiScope[] {
  const list = (Array.isArray(text) ? text : text.split(',')).map((s) => s.trim().toLowerCase()).filter(Boolean);
  if (list.length === 0) throw new UserError(`give at least one scope: ${API_SCOPES.join(', ')}`);
  for (const s of list) if (!API_SCOPES.includes(s as ApiScope)) throw new UserError(`unknown scope ${JSON.stringify(s)} (scopes: ${API_SCOPES.join(', ')})`);
  return API_SCOPES.filter((s) => list.includes(s));
}

/** The key as shown to people and API callers: never its secret hash. */
export function publicKey(k: ApiKey) {
  return {
    id: k.id,
    scopes: k.scopes,
    domain: k.domain,
    description: k.description,
    ratePerMinute: k.ratePerMinute,
    createdAt: k.createdAt.toISOString(),
    lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
    revokedAt: k.revokedAt?.toISOString() ?? null,
  };
}

export async function createApiKey(
  directory: DirectoryStore,
  actor: Actor,
  o: { scopes: ApiScope[]; domain?: string | null; description?: string; ratePerMinute?: number | null },
): Promise<{ key: ApiKey; token: string }> {
  let domain = o.domain ? normalizeDomain(o.domain) : null;
  if (actor?.domain) {
    if (domain !== null && domain !== actor.domain) throw new ForbiddenError(`this key manages only ${actor.domain}`);
    domain = actor.domain;
  }
  if (actor && o.scopes.some((s) => !actor.scopes.includes(s))) throw new ForbiddenError('a key cannot make a key with scopes it does not have');
  if (o.ratePerMinute !== undefined && o.ratePerMinute !== null && (!Number.isSafeInteger(o.ratePerMinute) || o.ratePerMinute < 1))
    throw new UserError('the rate limit is a whole number of requests a minute, at least 1');
  if (domain !== null && !(await directory.isLocalDomain(domain))) throw new NotFoundError(`domain ${domain} does not exist`);
  const { id, token, secretHash } = newApiToken();
  const key = await directory.addApiKey({ id, secretHash, scopes: o.scopes, domain, description: o.description ?? '', ratePerMinute: o.ratePerMinute ?? null });
  return { key, token };
}

/** The keys `actor` may see (a domain's admin: its domain's), only those of `domain` when given. */
export async function listApiKeys(directory: DirectoryStore, actor: Actor, domain?: string): Promise<ApiKey[]> {
  return directory.listApiKeys(scopeDomain(actor, domain ? normalizeDomain(domain) : undefined));
}

export async function revokeApiKey(directory: DirectoryStore, actor: Actor, id: string): Promise<void> {
  const key = await directory.apiKey(id);
  if (!key || !manages(actor, key.domain)) throw new NotFoundError(`API key ${id} does not exist`);
  await directory.revokeApiKey(id);
}
