/**
 * Who asks for an admin action: the CLI (null: the whole site) or an API key. A key
 * limited to a domain (an admin key given to a customer) acts on that domain only; to it a
 * thing of another domain is as good as missing.
 */
import { ForbiddenError } from '../errors.js';
import type { ApiKey } from '../store/store.js';

export type Actor = Pick<ApiKey, 'scopes' | 'domain'> | null;

/** True when `actor` may manage things of `domain`. */
export function manages(actor: Actor, domain: string | null): boolean {
  return !actor?.domain || actor.domain === domain;
}

/** Throws unless `actor` manages the whole site (adding domains, the suppression list…). */
export function requireSiteAdmin(actor: Actor, what: string): void {
  if (actor?.domain) throw new ForbiddenError(`${what}: a key limited to ${actor.domain} cannot do this`);
}

/** The domain a listing is limited to: the actor's own, or the one asked for (which must be the actor's). */
export function scopeDomain(actor: Actor, wanted: string | undefined): string | undefined {
  if (actor?.domain && wanted && wanted !== actor.domain) throw new ForbiddenError(`this key manages only ${actor.domain}`);
  return actor?.domain ?? wanted;
}
