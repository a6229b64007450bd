/**
 * Per-destination policy of outbound mail, whole-site business kept as settings that a
 * running queue rereads within 30 s: routes (`tern route`, `tern config apply`: a destination
 * domain's mail goes to HOST:PORT instead of its MX hosts, before the smarthost, as
 * `route:DOMAIN`) and rate limits (`tern queue rate`: at most N messages a minute to a
 * destination domain or MX host, as `rate:NAME`).
 */
import { parseInteger } from '../config/parse.js';
import { NotFoundError, UserError } from '../errors.js';
import { normalizeDomain } from '../mail/address.js';
import { parseRoute, RATE_PREFIX, ROUTE_PREFIX } from '../queue/worker.js';
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

export interface RateLimit {
  /** A destination domain or MX host name. */
  destination: string;
  perMinute: number;
}

export async function listRateLimits(directory: DirectoryStore, actor: Actor): Promise<RateLimit[]> {
  requireSiteAdmin(actor, 'rate limits');
  return (await directory.listSettings(RATE_PREFIX)).map((r) => ({ destination: r.key.slice(RATE_PREFIX.length), perMinute: Number(r.value) }));
}

/** At most `perMinute` messages a minute to a destination domain or MX host, over all its connections. */
export async function setRateLimit(directory: DirectoryStore, actor: Actor, destination: string, perMinute: number | string): Promise<RateLimit> {
  requireSiteAdmin(actor, 'rate limits');
  const d = normalizeDomain(destination);
  const n = typeof perMinute === 'number' ? perMinute : parseInteger('per-minute', perMinute, 1);
  if (!Number.isSafeInteger(n) || n < 1) throw new UserError('per-minute: expected a whole number of messages, at least 1');
  await directory.setSetting(`${RATE_PREFIX}${d}`, String(n));
  return { destination: d, perMinute: n };
}

export async function deleteRateLimit(directory: DirectoryStore, actor: Actor, destination: string): Promise<string> {
  requireSiteAdmin(actor, 'rate limits');
  const d = normalizeDomain(destination);
  await directory.deleteSetting(`${RATE_PREFIX}${d}`).catch((err: unknown) => {
    throw err instanceof NotFoundError ? new NotFoundError(`${d} has no rate limit`) : err;
  });
  return d;
}
