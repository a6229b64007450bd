/**
 * The `http` role: the HTTP API on fastify. Every route declares a JSON schema that
 * validates its input and makes the OpenAPI 3 document (`/api/openapi.json`, browsable at
 * `/api/docs`); health (`/healthz`: the process answers; `/readyz`: the store answers)
 * and Prometheus metrics (`/metrics`). Errors are JSON (http/errors.ts). The admin portal
 * is served at `/` (http/portal.ts) and logs in through `/api/v1/session` (http/session.ts).
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Injector } from '../delivery/inject.js';
import type { Store } from '../store/store.js';
import type { Guard } from '../auth/guard.js';
import { registerAdminRoutes } from './admin-routes.js';
import { registerApiKeyRoutes } from './api-key-routes.js';
import { registerMailRoutes } from './mail-routes.js';
import { registerWellKnownRoutes } from './well-known-routes.js';
import { registerReportRoutes } from './report-routes.js';
import { registerBanRoutes } from './ban-routes.js';
import { registerSettingRoutes } from './setting-routes.js';
import { registerQueueRoutes } from './queue-routes.js';
import { registerWebhookRoutes } from './webhook-routes.js';
import { registerSuppressionRoutes } from './suppression-routes.js';
import { ApiKeyAuth } from './auth.js';
import { errorHandler, HttpError } from './errors.js';
import { registerIdempotency } from './idempotency.js';
import { registerMessageRoutes, type MessageLimits } from './messages.js';
import { createMetrics, registerStatsRoute } from './metrics.js';
import { registerPortal } from './portal.js';
import { registerSessionRoutes, SessionPolicy } from './session.js';
import { registerTraceRoutes } from './trace-routes.js';
import type { Authenticator } from '../auth/authenticate.js';

export interface HttpDeps {
  store: Store;
  injector: Injector;
  hostname: string;
  log: Logger;
  /** Largest message the API accepts (the SMTP limit); a JSON body may be a third larger (base64). */
  maxMessageSize: number;
  limits: MessageLimits;
  /** Bans: a banned address gets 403 on every route, and bad keys count towards a ban. */
  guard?: Pick<Guard, 'banned' | 'loginFailed'>;
  /** Checks portal logins (http/session.ts); without it the portal cannot log anyone in. */
  authenticator?: Authenticator;
  /** The resolvers a domain's DNS check asks (`--dns-server`); the system's when empty. */
  dnsServers?: string[];
}

export const VERSION = '0.1.0';

export async function buildHttpApp(deps: HttpDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: Math.ceil(deps.maxMessageSize * 1.4) + 64 * 1024,
    return503OnClosing: true,
    // Unknown fields are refused, not silently dropped; scalars are not wrapped into arrays.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true } },
  });
  app.decorateRequest('apiKey', null);
  const guard = deps.guard;
  if (guard)
    app.addHook('onRequest', (req, _reply, done) => {
      if (guard.banned(req.ip)) return done(new HttpError(403, 'banned', 'this address is banned for repeated failed logins; try again later'));
      done();
    });
  app.setErrorHandler(errorHandler(deps.log));
  app.setNotFoundHandler((req) => {
    throw new HttpError(404, 'not_found', `no route ${req.method} ${req.url.split('?')[0]}`);
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Tern HTTP API',
        version: VERSION,
        description: 'Send mail, trace it, and manage the site. Authenticate with `Authorization: Bearer KEY` (`tern apikey create`).',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an API key: tern_<id>_<secret>' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/api/docs' });
  app.get('/api/openapi.json', { schema: { hide: true } }, () => app.swagger());

  const metrics = createMetrics(deps.store);
  app.addHook('onResponse', (req, reply, done) => {
    metrics.observeRequest(req.routeOptions.url ?? 'unknown', req.method, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
  app.get('/healthz', { schema: { summary: 'The process answers', tags: ['health'] } }, () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { summary: 'The store answers', tags: ['health'] } }, async (_req, reply) => {
    try {
      await deps.store.directory.getSetting('hostname');
      return { status: 'ready' };
    } catch (err) {
      return reply.code(503).send({ error: { code: 'unavailable', message: `the store does not answer: ${(err as Error).message}` } });
    }
  });
  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['health'] } }, async (_req, reply) =>
    reply.header('content-type', metrics.contentType).send(await metrics.render()),
  );

  // A raw message is taken as bytes, as it is.
  app.addContentTypeParser('message/rfc822', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  const sessions = new SessionPolicy(deps.store.directory);
  const auth = new ApiKeyAuth(deps.store.directory, deps.guard, sessions);
  if (deps.authenticator) registerSessionRoutes(app, { directory: deps.store.directory, auth, authenticator: deps.authenticator, policy: sessions });
  registerIdempotency(app, deps.store.directory);
  registerMessageRoutes(app, { store: deps.store, injector: deps.injector, auth, hostname: deps.hostname, limits: deps.limits });
  registerApiKeyRoutes(app, { directory: deps.store.directory, auth });
  registerSuppressionRoutes(app, { directory: deps.store.directory, auth });
  registerAdminRoutes(app, { store: deps.store, auth, hostname: deps.hostname, dnsServers: deps.dnsServers ?? [] });
  registerStatsRoute(app, { store: deps.store, auth });
  registerTraceRoutes(app, { store: deps.store, auth });
  registerQueueRoutes(app, { store: deps.store, auth });
  registerWebhookRoutes(app, { store: deps.store, auth });
  registerMailRoutes(app, { store: deps.store, auth });
  registerWellKnownRoutes(app, { directory: deps.store.directory, hostname: deps.hostname });
  registerReportRoutes(app, { store: deps.store, auth });
  registerBanRoutes(app, { directory: deps.store.directory, auth });
  registerSettingRoutes(app, { directory: deps.store.directory, auth });
  await registerPortal(app);
  return app;
}

/** Starts the API on host:port; close() stops taking requests and waits for those under way. */
export async function startHttpServer(deps: HttpDeps & { host: string; port: number }): Promise<{ port: number; close(graceMs: number): Promise<void> }> {
  const app = await buildHttpApp(deps);
  await app.listen({ host: deps.host, port: deps.port }).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`cannot listen on ${deps.host}:${deps.port} (http): ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`);
  });
  const address = app.server.address();
  return {
    port: typeof address === 'object' && address ? address.port : deps.port,
    async close(graceMs) {
      const timer = setTimeout(() => app.server.closeAllConnections(), graceMs);
      await app.close();
      clearTimeout(timer);
    },
  };
}
