/**
 * API authentication: `Authorization: Bearer tern_<id>_<secret>`, or the portal's session
 * cookie holding such a token (http/session.ts adds its CSRF and expiry checks); the key looked up by id
 * (cached for a few seconds, so a busy client costs no store read per request; a key
 * revoked through this server stops at once, one revoked elsewhere within KEY_CACHE_MS),
 * its scopes checked, and its optional rate limit (requests a minute) applied.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { parseApiToken, secretMatches } from '../auth/api-keys.js';
import type { ApiKey, ApiScope, DirectoryStore } from '../store/store.js';
import { HttpError } from './errors.js';
import type { Guard } from '../auth/guard.js';
import { isBackground, isSessionKey, sessionCookie, type SessionPolicy } from './session.js';

export const KEY_CACHE_MS = 5_000;

declare module 'fastify' {
  interface FastifyRequest {
    apiKey: ApiKey | null;
  }
}

export class ApiKeyAuth {
  private readonly cache = new Map<string, { until: number; key: Promise<ApiKey | null> }>();
  private readonly recent = new Map<string, number[]>();
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly directory: DirectoryStore,
    private readonly guard?: Pick<Guard, 'loginFailed'>,
    private readonly sessions?: SessionPolicy,
  ) {}

  /** Forgets a key at once (it was revoked here). */
  forget(id: string): void {
    this.cache.delete(id);
  }

  private lookup(id: string): Promise<ApiKey | null> {
    const now = Date.now();
    const hit = this.cache.get(id);
    if (hit && hit.until > now) return hit.key;
    if (this.cache.size > 10_000) this.cache.clear();
    const key = this.directory.apiKey(id);
    key.catch(() => this.cache.delete(id));
    this.cache.set(id, { until: now + KEY_CACHE_MS, key });
    return key;
  }

  /** An onRequest hook (before the body is read or validated): the request needs a valid key with one of `scopes`. */
  require(...scopes: ApiScope[]) {
    return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
      const cookie = m || !this.sessions ? null : sessionCookie(req);
      if (!m && !cookie) throw new HttpError(401, 'unauthorized', 'send an API key: Authorization: Bearer KEY (tern apikey create)');
      const token = parseApiToken(m ? m[1]! : cookie!);
      const key = token && (await this.lookup(token.id));
      if (!token || !key || key.revokedAt || !secretMatches(key, token.secret)) {
        // A stale session cookie (after logout or expiry) is not an attack on a password.
        if (!cookie) this.guard?.loginFailed(req.ip, 'http');
        throw new HttpError(401, 'unauthorized', 'the API key is not valid or was revoked');
      }
      // A session's token sent as a Bearer key (copied out of a browser) still idles out; only the cookie needs the CSRF header.
      if (cookie) await this.sessions!.check(req, key, cookie);
      else if (this.sessions && isSessionKey(key)) await this.sessions.check(req, key, null);
      if (!scopes.some((s) => key.scopes.includes(s))) throw new HttpError(403, 'forbidden', `this key lacks the ${scopes.join(' or ')} scope`);
      const wait = this.rateWait(key);
      if (wait > 0) {
        void reply.header('retry-after', String(Math.ceil(wait / 1000)));
        throw new HttpError(429, 'rate_limited', `this key may make ${key.ratePerMinute} requests a minute; try again in ${Math.ceil(wait / 1000)} s`);
      }
      if (!cookie || !isBackground(req)) this.touch(key);
      req.apiKey = key;
    };
  }

  /** Milliseconds until the key may make another request (0: now, and this one is counted). */
  private rateWait(key: ApiKey): number {
    if (!key.ratePerMinute) return 0;
    const now = Date.now();
    const times = (this.recent.get(key.id) ?? []).filter((t) => t > now - 60_000);
    this.recent.set(key.id, times);
    if (times.length >= key.ratePerMinute) return times[0]! + 60_000 - now;
    times.push(now);
    return 0;
  }

  /** Records when the key was last used, at most once a minute (a write per request would cost more than the request). */
  private touch(key: ApiKey): void {
    const now = Date.now();
    if ((this.touched.get(key.id) ?? 0) > now - 60_000) return;
    this.touched.set(key.id, now);
    this.directory.touchApiKey(key.id, new Date(now)).catch(() => undefined);
  }
}
