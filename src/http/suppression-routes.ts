/** The suppression list through the API (site-wide admin keys): admin/suppressions.ts holds the rules, shared with `tern suppression`. */
import type { FastifyInstance } from 'fastify';
import { addSuppressions, deleteSuppression, listSuppressions, MAX_SUPPRESSIONS_AT_ONCE } from '../admin/suppressions.js';
import type { DirectoryStore } from '../store/store.js';
import type { ApiKeyAuth } from './auth.js';
import { ERROR_SCHEMA } from './errors.js';

export function registerSuppressionRoutes(app: FastifyInstance, deps: { directory: DirectoryStore; auth: ApiKeyAuth }): void {
  const { directory, auth } = deps;
  const common = { tags: ['suppressions'], security: [{ bearer: [] }] };
  app.get<{ Querystring: { after?: string; limit: number } }>(
    '/api/v1/suppressions',
    {
      onRequest: auth.require('admin'),
      schema: {
        ...common,
        summary: 'The suppression list, in address order (cursor: after)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { after: { type: 'string', maxLength: 320 }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
        },
        response: {
          200: {
            type: 'array',
            items: {
              type: 'object',
              properties: { address: { type: 'string' }, source: { type: 'string' }, reason: { type: 'string' }, createdAt: { type: 'string' } },
            },
          },
          '4xx': ERROR_SCHEMA,
        },
      },
    },
    async (req) => (await listSuppressions(directory, req.apiKey, req.query)).map((s) => ({ ...s, createdAt: s.createdAt.toISOString() })),
  );
  app.post<{ Body: { addresses: string[]; reason?: string } }>(
    '/api/v1/suppressions',
    {
      onRequest: auth.require('admin'),
      schema: {
        ...common,
        summary: 'Add (or import) addresses; those already listed keep their entry',
        body: {
          type: 'object',
          required: ['addresses'],
          additionalProperties: false,
          properties: {
            addresses: { type: 'array', minItems: 1, maxItems: MAX_SUPPRESSIONS_AT_ONCE, items: { type: 'string', minLength: 3, maxLength: 320 } },
            reason: { type: 'string', maxLength: 500 },
          },
        },
        response: { 200: { type: 'object', properties: { added: { type: 'integer' } } }, '4xx': ERROR_SCHEMA },
      },
    },
    async (req) => ({
      added: await addSuppressions(directory, req.apiKey, req.body.addresses, {
        source: req.body.addresses.length > 1 ? 'import' : 'manual',
        reason: req.body.reason,
      }),
    }),
  );
  app.delete<{ Params: { address: string } }>(
    '/api/v1/suppressions/:address',
    {
      onRequest: auth.require('admin'),
      schema: {
        ...common,
        summary: 'Remove an address from the list',
        params: { type: 'object', required: ['address'], properties: { address: { type: 'string', minLength: 3, maxLength: 320 } } },
        response: { 204: { type: 'null' }, '4xx': ERROR_SCHEMA },
      },
    },
    async (req, reply) => {
      await deleteSuppression(directory, req.apiKey, req.params.address);
      return reply.code(204).send();
    },
  );
}
