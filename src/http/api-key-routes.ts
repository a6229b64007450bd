/** API keys through the API (admin scope): the rules are admin/api-keys.ts, shared with `tern apikey`. */
import type { FastifyInstance } from 'fastify';
import { API_SCOPES, createApiKey, listApiKeys, parseScopes, publicKey, revokeApiKey } from '../admin/api-keys.js';
import type { DirectoryStore } from '../store/store.js';
import type { ApiKeyAuth } from './auth.js';
import { ERROR_SCHEMA } from './errors.js';

const KEY = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    scopes: { type: 'array', items: { type: 'string' } },
    domain: { type: 'string', nullable: true },
    description: { type: 'string' },
    ratePerMinute: { type: 'integer', nullable: true },
    createdAt: { type: 'string' },
    lastUsedAt: { type: 'string', nullable: true },
    revokedAt: { type: 'string', nullable: true },
  },
} as const;

export function registerApiKeyRoutes(app: FastifyInstance, deps: { directory: DirectoryStore; auth: ApiKeyAuth }): void {
  const { directory, auth } = deps;
  const common = { tags: ['api keys'], security: [{ bearer: [] }] };
  app.get(
    '/api/v1/keys',
    {
      onRequest: auth.require('admin'),
      schema: { ...common, summary: 'List API keys (never their secrets)', response: { 200: { type: 'array', items: KEY }, '4xx': ERROR_SCHEMA } },
    },
    async (req) => (await listApiKeys(directory, req.apiKey)).map(publicKey),
  );
  app.post<{ Body: { scopes: string[]; domain?: string; description?: string; ratePerMinute?: number } }>(
    '/api/v1/keys',
    {
      onRequest: auth.require('admin'),
      schema: {
        ...common,
        summary: 'Create an API key; the key is in this answer only',
        body: {
          type: 'object',
          required: ['scopes'],
          additionalProperties: false,
          properties: {
            scopes: { type: 'array', items: { type: 'string', enum: [...API_SCOPES] }, minItems: 1, uniqueItems: true },
            domain: { type: 'string', maxLength: 253 },
            description: { type: 'string', maxLength: 500 },
            ratePerMinute: { type: 'integer', minimum: 1 },
          },
        },
        response: { 201: { type: 'object', properties: { key: { type: 'string' }, ...KEY.properties } }, '4xx': ERROR_SCHEMA },
      },
    },
    async (req, reply) => {
      const { key, token } = await createApiKey(directory, req.apiKey, { ...req.body, scopes: parseScopes(req.body.scopes) });
      return reply.code(201).send({ ...publicKey(key), key: token });
    },
  );
  app.delete<{ Params: { id: string } }>(
    '/api/v1/keys/:id',
    {
      onRequest: auth.require('admin'),
      schema: {
        ...common,
        summary: 'Revoke an API key at once',
        params: { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9a-f]{12}$' } }, required: ['id'] },
        response: { 204: { type: 'null' }, '4xx': ERROR_SCHEMA },
      },
    },
    async (req, reply) => {
      await revokeApiKey(directory, req.apiKey, req.params.id);
      auth.forget(req.params.id);
      return reply.code(204).send();
    },
  );
}
