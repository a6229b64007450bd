/**
 * Per-domain routes (`tern route`, `tern config apply`): a destination domain's outbound mail
 * goes to HOST:PORT instead of its MX hosts, before the smarthost. Kept as `route:DOMAIN`
 * settings; a running queue rereads them within 30 s. Whole-site business.
 */
import { NotFoundError, UserError } from '../errors.js';
import { normalizeDomain } from '../mail/address.js';
import { parseRoute, ROUTE_PREFIX } from '../queue/worker.js';
import type { DirectoryStore } from '../store/store.js';
import { requireSiteAdmin, type Actor } from './actor.js';

export interface Route {
  domain: string;
  target: string;
}

/** The target as stored, or a UserError. */
export function validateRouteTarget(target: string): string {
  if (!parseRoute(target)) throw new UserError(`route: expected HOST:PORT, got ${JSON.stringify(target)}`);
  return target.trim();
}

export async function listRoutes(directory: DirectoryStore, actor: Actor): Promise<Route[]> {
  requireSiteAdmin(actor, 'routes');
  return (await directory.listSettings(ROUTE_PREFIX)).map((r) => ({ domain: r.key.slice(ROUTE_PREFIX.length), target: r.value }));
}

/** Routes the domain (replacing its route if it has one). */
export async function setRoute(directory: DirectoryStore, actor: Actor, domain: string, target: string): Promise<Route> {
  requireSiteAdmin(actor, 'routes');
  const d = normalizeDomain(domain);
  const t = validateRouteTarget(target);
  await directory.setSetting(`${ROUTE_PREFIX}${d}`, t);
  return { domain: d, target: t };
}

export async function deleteRoute(directory: DirectoryStore, actor: Actor, domain: string): Promise<string> {
  requireSiteAdmin(actor, 'routes');
  const d = normalizeDomain(domain);
  await directory.deleteSetting(`${ROUTE_PREFIX}${d}`).catch((err: unknown) => {
    throw err instanceof NotFoundError ? new NotFoundError(`${d} has no route`) : err;
  });
  return d;
}
