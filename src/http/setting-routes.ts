/**
 * Site settings through the API (admin keys for the whole site; a key limited to a domain
 * gets 403): admin/settings.ts holds the list and the validators, shared with `tern setting`;
 * and the per-destination routes and rate limits of outbound mail (admin/routes.ts, shared
 * with `tern route` and `tern queue rate`).
 */
import type { FastifyInstance } from 'fastify';
import { deleteRateLimit, deleteRoute, listRateLimits, listRoutes, setRateLimit, setRoute } from '../admin/routes.js';
import { deleteSetting, getSetting, listSettings, setSetting } from '../admin/settings.js';
import type { DirectoryStore } from '../store/store.js';
import type { ApiKeyAuth } from './auth.js';
import { ERROR_SCHEMA } from './errors.js';

const SETTING = {
  type: 'object',
  properties: {
    key: { type: 'string' },
    value: { type: 'string', nullable: true, description: 'null when not set' },
    description: { type: 'string' },
    unset: { type: 'string', description: 'what applies while it is not set' },
    flag: { type: ['string', 'null'], description: 'the tern serve flag that overrides it, if any' },
    takesEffect: { type: 'string', enum: ['start', 'minute'], description: 'start: at the next tern serve start; minute: within a minute' },
  },
} as const;
const KEY_PARAMS = { type: 'object', required: ['key'], properties: { key: { type: 'string', minLength: 1, maxLength: 64 } } } as const;

export function registerSettingRoutes(app: FastifyInstance, deps: { directory: DirectoryStore; auth: ApiKeyAuth }): void {
  const { directory, auth } = deps;
  const common = { tags: ['settings'], security: [{ bearer: [] }] };
  const admin = auth.require('admin');
  app.get(
    '/api/v1/settings',
    {
      onRequest: admin,
      schema: { ...common, summary: 'The editable site settings with their values', response: { 200: { type: 'array', items: SETTING }, '4xx': ERROR_SCHEMA } },
    },
    (req) => listSettings(directory, req.apiKey),
  );
  app.get<{ Params: { key: string } }>(
    '/api/v1/settings/:key',
    { onRequest: admin, schema: { ...common, summary: 'One setting', params: KEY_PARAMS, response: { 200: SETTING, '4xx': ERROR_SCHEMA } } },
    (req) => getSetting(directory, req.apiKey, req.params.key),
  );
  app.put<{ Params: { key: string }; Body: { value: string } }>(
    '/api/v1/settings/:key',
    {
      onRequest: admin,
      schema: {
        ...common,
        summary: 'Check and store a setting (400 with the reason when the value is not valid); tern serve applies it at its next start',
        params: KEY_PARAMS,
        body: { type: 'object', required: ['value'], additionalProperties: false, properties: { value: { type: 'string', maxLength: 4096 } } },
        response: { 200: SETTING, '4xx': ERROR_SCHEMA },
      },
    },
    async (req) => (await setSetting(directory, req.apiKey, req.params.key, req.body.value)).setting,
  );
  app.delete<{ Params: { key: string } }>(
    '/api/v1/settings/:key',
    {
      onRequest: admin,
      schema: {
        ...common,
        summary: 'Remove a setting (404 when it is not set), so what applies when it is not set comes back at the next start',
        params: KEY_PARAMS,
        response: { 204: { type: 'null' }, '4xx': ERROR_SCHEMA },
      },
    },
    async (req, reply) => {
      await deleteSetting(directory, req.apiKey, req.params.key);
      return reply.code(204).send();
    },
  );

  // Routes and rate limits: one setting per destination, so each is listed, put and deleted by its name.
  const DESTINATION = { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 253 } } } as const;
  const ROUTE = { type: 'object', properties: { domain: { type: 'string' }, target: { type: 'string' } } } as const;
  const RATE = { type: 'object', properties: { destination: { type: 'string' }, perMinute: { type: 'integer' } } } as const;
  const policy = { tags: ['routes'], security: [{ bearer: [] }] };
  app.get(
    '/api/v1/routes',
    {
      onRequest: admin,
      schema: {
        ...policy,
        summary: 'Destination domains routed to a host instead of their MX',
        response: { 200: { type: 'array', items: ROUTE }, '4xx': ERROR_SCHEMA },
      },
    },
    (req) => listRoutes(directory, req.apiKey),
  );
  app.put<{ Params: { name: string }; Body: { target: string } }>(
    '/api/v1/routes/:name',
    {
      onRequest: admin,
      schema: {
        ...policy,
        summary: "Send a destination domain's mail to HOST:PORT (before the smarthost); the queue applies it within 30 s",
        params: DESTINATION,
        body: { type: 'object', required: ['target'], additionalProperties: false, properties: { target: { type: 'string', minLength: 1, maxLength: 300 } } },
        response: { 200: ROUTE, '4xx': ERROR_SCHEMA },
      },
    },
    (req) => setRoute(directory, req.apiKey, req.params.name, req.body.target),
  );
  app.delete<{ Params: { name: string } }>(
    '/api/v1/routes/:name',
    { onRequest: admin, schema: { ...policy, summary: 'Remove a route', params: DESTINATION, response: { 204: { type: 'null' }, '4xx': ERROR_SCHEMA } } },
    async (req, reply) => {
      await deleteRoute(directory, req.apiKey, req.params.name);
      return reply.code(204).send();
    },
  );
  app.get(
    '/api/v1/rate-limits',
    {
      onRequest: admin,
      schema: {
        ...policy,
        summary: 'Messages a minute allowed to a destination domain or MX host',
        response: { 200: { type: 'array', items: RATE }, '4xx': ERROR_SCHEMA },
      },
    },
    (req) => listRateLimits(directory, req.apiKey),
  );
  app.put<{ Params: { name: string }; Body: { perMinute: number } }>(
    '/api/v1/rate-limits/:name',
    {
      onRequest: admin,
      schema: {
        ...policy,
        summary: 'At most this many messages a minute to a destination domain or MX host, over all its connections',
        params: DESTINATION,
        body: { type: 'object', required: ['perMinute'], additionalProperties: false, properties: { perMinute: { type: 'integer', minimum: 1 } } },
        response: { 200: RATE, '4xx': ERROR_SCHEMA },
      },
    },
    (req) => setRateLimit(directory, req.apiKey, req.params.name, req.body.perMinute),
  );
  app.delete<{ Params: { name: string } }>(
    '/api/v1/rate-limits/:name',
    { onRequest: admin, schema: { ...policy, summary: 'Remove a rate limit', params: DESTINATION, response: { 204: { type: 'null' }, '4xx': ERROR_SCHEMA } } },
    async (req, reply) => {
      await deleteRateLimit(directory, req.apiKey, req.params.name);
      return reply.code(204).send();
    },
  );
}
