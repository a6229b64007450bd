/** Bans through the API (site-wide admin keys): admin/bans.ts holds the rules, shared with `tern ban`. */
import type { FastifyInstance } from 'fastify';
import { addBan, deleteBan, listBans, publicBan } from '../admin/bans.js';
import type { DirectoryStore } from '../store/store.js';
import type { ApiKeyAuth } from './auth.js';
import { ERROR_SCHEMA } from './errors.js';

const BAN = {
  type: 'object',
  properties: { address: { type: 'string' }, reason: { type: 'string' }, createdAt: { type: 'string' }, expiresAt: { type: 'string' } },
} as const;
const ADDRESS = { type: 'string', minLength: 2, maxLength: 64 } as const;

export function registerBanRoutes(app: FastifyInstance, deps: { directory: DirectoryStore; auth: ApiKeyAuth }): void {
  const { directory, auth } = deps;
  const common = { tags: ['bans'], security: [{ bearer: [] }] };
  const admin = auth.require('admin');
  app.get(
    '/api/v1/bans',
    {
      onRequest: admin,
      schema: { ...common, summary: 'Addresses refused on every port, and until when', response: { 200: { type: 'array', items: BAN }, '4xx': ERROR_SCHEMA } },
    },
    async (req) => (await listBans(directory, req.apiKey)).map(publicBan),
  );
  app.post<{ Body: { address: string; seconds: number; reason?: string } }>(
    '/api/v1/bans',
    {
      onRequest: admin,
      schema: {
        ...common,
        summary: 'Ban an address (running servers refuse it within 5 s)',
        body: {
          type: 'object',
          required: ['address'],
          additionalProperties: false,
          properties: {
            address: ADDRESS,
            seconds: { type: 'integer', minimum: 1, maximum: 31_536_000, default: 86_400 },
            reason: { type: 'string', maxLength: 500 },
          },
        },
        response: { 201: BAN, '4xx': ERROR_SCHEMA },
      },
    },
    async (req, reply) => reply.code(201).send(publicBan(await addBan(directory, req.apiKey, req.body.address, req.body.seconds, req.body.reason))),
  );
  app.delete<{ Params: { address: string } }>(
    '/api/v1/bans/:address',
    {
      onRequest: admin,
      schema: {
        ...common,
        summary: 'Lift a ban (running servers let the address in within 5 s)',
        params: { type: 'object', required: ['address'], properties: { address: ADDRESS } },
        response: { 204: { type: 'null' }, '4xx': ERROR_SCHEMA },
      },
    },
    async (req, reply) => {
      await deleteBan(directory, req.apiKey, req.params.address);
      return reply.code(204).send();
    },
  );
}
