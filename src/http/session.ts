/**
 * Portal sessions. An administrator logs in with address and password (auth/authenticate.ts:
 * every failure is logged and counts towards a ban) and gets an API key of their own, with
 * the admin, read and send scopes and the description "portal session: ADDRESS", whose token
 * is kept in an HttpOnly, SameSite=Strict cookie. The portal then calls the same public API
 * as any script; what makes a cookie different from a Bearer header is checked here:
 *
 * - CSRF: a request that changes something must also send `X-CSRF-Token`, an HMAC of the
 *   cookie's secret that the login answer (and GET /api/v1/session) hands to the page. A
 *   page of another site can make the browser send the cookie, but cannot read the token.
 * - Expiry: a session unused for `portal_idle_timeout` (default 30m), or older than
 *   SESSION_MAX_AGE_MS, is revoked at its next use. The dashboard's polls say they are
 *   background reads and do not count as use, so an open dashboard still idles out.
 *   Logout revokes a session at once. Sessions are listed with the other API keys, so an
 *   administrator can end someone's session there.
 */
import crypto from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { newApiToken, parseApiToken } from '../auth/api-keys.js';
import type { Authenticator } from '../auth/authenticate.js';
import { DEFAULT_IDLE_TIMEOUT, IDLE_TIMEOUT_SETTING } from '../admin/settings.js';
import { parseDuration } from '../config/parse.js';
import type { ApiKey, DirectoryStore } from '../store/store.js';
import type { ApiKeyAuth } from './auth.js';
import { ERROR_SCHEMA, HttpError } from './errors.js';

export const SESSION_COOKIE = 'tern_session';
export const SESSION_DESCRIPTION = 'portal session: ';
/** A session ends this long after login however busy it is. */
export const SESSION_MAX_AGE_MS = 12 * 3_600_000;
/** Failed logins after which one client address must wait (up to a minute) before trying again, on top of the ban after repeated failures. */
const LOGINS_PER_MINUTE = 10;
/** How long the idle timeout setting is cached (a change is seen within this). */
const SETTING_CACHE_MS = 10_000;

export const isSessionKey = (key: ApiKey) => key.description.startsWith(SESSION_DESCRIPTION);

/** The CSRF token of a session: an HMAC of its secret, so it needs no storage and dies with the session. */
export function csrfToken(token: string): string {
  const secret = parseApiToken(token)?.secret ?? '';
  return crypto.createHmac('sha256', secret).update('tern portal csrf').digest('base64url');
}

/** The session token in the request's cookie, if any. */
export function sessionCookie(req: FastifyRequest): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    try {
      return decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return null; // not percent-encoded properly: no token of ours
    }
  }
  return null;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** A read the portal makes by itself (the dashboard's poll, `X-Tern-Background: 1`): it does not count as use of the session. */
export const isBackground = (req: FastifyRequest) => SAFE_METHODS.has(req.method) && req.headers['x-tern-background'] === '1';

/** Checks a request authenticated by the session cookie: its CSRF header, and that the session has not expired. */
export class SessionPolicy {
  private readonly seen = new Map<string, number>();
  private idle: { until: number; ms: Promise<number> } | null = null;

  constructor(private readonly directory: DirectoryStore) {}

  idleTimeoutMs(): Promise<number> {
    const now = Date.now();
    if (this.idle && this.idle.until > now) return this.idle.ms;
    const ms = this.directory.getSetting(IDLE_TIMEOUT_SETTING).then(
      (v) => parseDuration(IDLE_TIMEOUT_SETTING, v ?? DEFAULT_IDLE_TIMEOUT),
      () => parseDuration(IDLE_TIMEOUT_SETTING, DEFAULT_IDLE_TIMEOUT),
    );
    this.idle = { until: now + SETTING_CACHE_MS, ms };
    return ms;
  }

  /**
   * Throws 403 (no CSRF token, for a request authenticated by the cookie `token`) or 401
   * (expired: the key is revoked) for a request of a session; records the use.
   */
  async check(req: FastifyRequest, key: ApiKey, token: string | null): Promise<void> {
    if (!isSessionKey(key)) throw new HttpError(401, 'unauthorized', 'the session cookie does not hold a portal session');
    if (token !== null && !SAFE_METHODS.has(req.method)) {
      const sent = req.headers['x-csrf-token'];
      const want = csrfToken(token);
      if (typeof sent !== 'string' || sent.length !== want.length || !crypto.timingSafeEqual(Buffer.from(sent), Buffer.from(want)))
        throw new HttpError(403, 'csrf', 'this request needs the X-CSRF-Token header of the session (reload the portal)');
    }
    const now = Date.now();
    const last = Math.max(key.lastUsedAt?.getTime() ?? 0, key.createdAt.getTime(), this.seen.get(key.id) ?? 0);
    if (now - last > (await this.idleTimeoutMs()) || now - key.createdAt.getTime() > SESSION_MAX_AGE_MS) {
      this.seen.delete(key.id);
      await this.directory.revokeApiKey(key.id).catch(() => undefined);
      throw new HttpError(401, 'session_expired', 'the session expired; log in again');
    }
    if (isBackground(req)) return;
    if (this.seen.size > 10_000) this.seen.clear();
    this.seen.set(key.id, now);
  }

  forget(id: string): void {
    this.seen.delete(id);
  }
}

const SESSION = {
  type: 'object',
  properties: {
    address: { type: 'string' },
    csrfToken: { type: 'string', description: 'send it as X-CSRF-Token with every request that changes something' },
    idleTimeoutSeconds: { type: 'integer' },
    expiresAt: { type: 'string', description: 'when the session ends however busy it is' },
  },
} as const;

export function registerSessionRoutes(
  app: FastifyInstance,
  deps: { directory: DirectoryStore; auth: ApiKeyAuth; authenticator: Authenticator; policy: SessionPolicy },
): void {
  const { directory, auth, authenticator, policy } = deps;
  const attempts = new Map<string, number[]>();
  const view = async (key: ApiKey, token: string) => ({
    address: key.description.slice(SESSION_DESCRIPTION.length),
    csrfToken: csrfToken(token),
    idleTimeoutSeconds: Math.round((await policy.idleTimeoutMs()) / 1000),
    expiresAt: new Date(key.createdAt.getTime() + SESSION_MAX_AGE_MS).toISOString(),
  });
  const cookie = (req: FastifyRequest, value: string, maxAge: number) =>
    `${SESSION_COOKIE}=${encodeURIComponent(value)}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${req.protocol === 'https' ? '; Secure' : ''}`;
  const tagged = { tags: ['session'] };

  app.post<{ Body: { address: string; password: string } }>(
    '/api/v1/session',
    {
      schema: {
        ...tagged,
        summary: "Log in to the portal (an administrator's address and password): sets the session cookie",
        body: {
          type: 'object',
          required: ['address', 'password'],
          additionalProperties: false,
          properties: { address: { type: 'string', minLength: 1, maxLength: 320 }, password: { type: 'string', minLength: 1, maxLength: 1024 } },
        },
        response: { 200: SESSION, '4xx': ERROR_SCHEMA },
      },
    },
    async (req, reply) => {
      const now = Date.now();
      const recent = (attempts.get(req.ip) ?? []).filter((t) => t > now - 60_000);
      if (recent.length >= LOGINS_PER_MINUTE) {
        void reply.header('retry-after', String(Math.ceil((recent[0]! + 60_000 - now) / 1000)));
        throw new HttpError(429, 'rate_limited', `${LOGINS_PER_MINUTE} failed logins from this address in a minute; try again shortly`);
      }
      const account = await authenticator.login(req.body.address, req.body.password, { protocol: 'portal', remoteAddress: req.ip });
      // An account that is not an administrator gets the same answer as a wrong password.
      if (!account || !account.isAdmin) {
        if (attempts.size > 10_000) attempts.clear();
        attempts.set(req.ip, [...recent, now]);
        throw new HttpError(401, 'unauthorized', 'wrong address or password, or not an administrator');
      }
      const { id, token, secretHash } = newApiToken();
      const key = await directory.addApiKey({
        id,
        secretHash,
        scopes: ['send', 'read', 'admin'],
        domain: null,
        description: `${SESSION_DESCRIPTION}${account.address}`,
        ratePerMinute: null,
      });
      void reply.header('set-cookie', cookie(req, token, SESSION_MAX_AGE_MS / 1000));
      return view(key, token);
    },
  );

  const sessionOnly = async (req: FastifyRequest) => {
    const token = sessionCookie(req);
    if (!token) throw new HttpError(401, 'unauthorized', 'not logged in');
    return token;
  };
  // Asked by the portal as it loads: "no session" is an ordinary answer (204), not an error a browser logs.
  const signedIn = auth.require('admin');
  app.get(
    '/api/v1/session',
    {
      schema: {
        ...tagged,
        summary: 'The portal session of the cookie sent; 204 when there is none (no cookie, logged out, expired)',
        response: { 200: SESSION, 204: { type: 'null' }, '4xx': ERROR_SCHEMA },
      },
    },
    async (req, reply) => {
      const token = sessionCookie(req);
      if (token) {
        try {
          await signedIn(req, reply);
          return await view(req.apiKey!, token);
        } catch (err) {
          if (!(err instanceof HttpError) || err.status !== 401) throw err;
        }
      }
      return reply
        .code(204)
        .header('set-cookie', cookie(req, '', 0))
        .send();
    },
  );
  app.delete(
    '/api/v1/session',
    {
      onRequest: auth.require('admin'),
      schema: { ...tagged, summary: 'Log out: ends the session and clears its cookie', response: { 204: { type: 'null' }, '4xx': ERROR_SCHEMA } },
    },
    async (req, reply: FastifyReply) => {
      await sessionOnly(req);
      const key = req.apiKey!;
      await directory.revokeApiKey(key.id);
      auth.forget(key.id);
      policy.forget(key.id);
      return reply
        .code(204)
        .header('set-cookie', cookie(req, '', 0))
        .send();
    },
  );
}
