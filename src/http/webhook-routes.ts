/** Webhooks through the API (admin scope): admin/webhooks.ts holds the rules, shared with `tern webhook`; http/webhooks.ts sends them. */
import type { FastifyInstance } from 'fastify';
import {
  createWebhook,
  deleteWebhook,
  getWebhook,
  listWebhooks,
  parseWebhookEvents,
  publicDelivery,
  publicWebhook,
  testWebhook,
  updateWebhook,
  webhookLog,
} from '../admin/webhooks.js';
import { WEBHOOK_EVENTS, type Store } from '../store/store.js';
import type { ApiKeyAuth } from './auth.js';
import { ERROR_SCHEMA } from './errors.js';

const WEBHOOK = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    url: { type: 'string' },
    events: { type: 'array', items: { type: 'string' } },
    secret: { type: 'string', description: 'the HMAC-SHA256 key of the Tern-Signature header' },
    domain: { type: 'string', nullable: true },
    description: { type: 'string' },
    enabled: { type: 'boolean' },
    createdAt: { type: 'string' },
  },
} as const;
const DELIVERY = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    event: { type: 'string' },
    state: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
    attempts: { type: 'integer' },
    nextAttemptAt: { type: 'string', nullable: true },
    lastStatus: { type: 'integer', nullable: true },
    lastError: { type: 'string', nullable: true },
    createdAt: { type: 'string' },
    finishedAt: { type: 'string', nullable: true },
  },
} as const;
const EVENTS = { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', enum: [...WEBHOOK_EVENTS] } } as const;
const URL_FIELD = { type: 'string', minLength: 8, maxLength: 2048 } as const;
const ID_PARAMS = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9a-f]{12}$' } } } as const;

export function registerWebhookRoutes(app: FastifyInstance, deps: { store: Store; auth: ApiKeyAuth }): void {
  const { store, auth } = deps;
  const common = { tags: ['webhooks'], security: [{ bearer: [] }] };
  const admin = auth.require('admin');
  const errors = { '4xx': ERROR_SCHEMA };
  app.get<{ Querystring: { domain?: string } }>(
    '/api/v1/webhooks',
    {
      onRequest: admin,
      schema: {
        ...common,
        summary: 'Webhook subscriptions',
        querystring: { type: 'object', additionalProperties: false, properties: { domain: { type: 'string', maxLength: 253 } } },
        response: { 200: { type: 'array', items: WEBHOOK }, ...errors },
      },
    },
    async (req) => (await listWebhooks(store, req.apiKey, req.query.domain)).map(publicWebhook),
  );
  app.post<{ Body: { url: string; events: string[]; domain?: string; description?: string } }>(
    '/api/v1/webhooks',
    {
      onRequest: admin,
      schema: {
        ...common,
        summary: 'Subscribe a URL to events; POSTs are signed with the secret in the answer (Tern-Signature: t=…,v1=HMAC-SHA256(secret, "t.body"))',
        body: {
          type: 'object',
          required: ['url', 'events'],
          additionalProperties: false,
          properties: { url: URL_FIELD, events: EVENTS, domain: { type: 'string', maxLength: 253 }, description: { type: 'string', maxLength: 500 } },
        },
        response: { 201: WEBHOOK, ...errors },
      },
    },
    async (req, reply) =>
      reply.code(201).send(publicWebhook(await createWebhook(store, req.apiKey, { ...req.body, events: parseWebhookEvents(req.body.events) }))),
  );
  app.get<{ Params: { id: string } }>(
    '/api/v1/webhooks/:id',
    { onRequest: admin, schema: { ...common, summary: 'One webhook', params: ID_PARAMS, response: { 200: WEBHOOK, ...errors } } },
    async (req) => publicWebhook(await getWebhook(store, req.apiKey, req.params.id)),
  );
  app.patch<{ Params: { id: string }; Body: { url?: string; events?: string[]; description?: string; enabled?: boolean } }>(
    '/api/v1/webhooks/:id',
    {
      onRequest: admin,
      schema: {
        ...common,
        summary: 'Change the URL, the events or the description, or pause (enabled: false; owed POSTs wait) and resume',
        params: ID_PARAMS,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: { url: URL_FIELD, events: EVENTS, description: { type: 'string', maxLength: 500 }, enabled: { type: 'boolean' } },
        },
        response: { 200: WEBHOOK, ...errors },
      },
    },
    async (req) => {
      const { events, ...rest } = req.body;
      return publicWebhook(await updateWebhook(store, req.apiKey, req.params.id, { ...rest, events: events && parseWebhookEvents(events) }));
    },
  );
  app.delete<{ Params: { id: string } }>(
    '/api/v1/webhooks/:id',
    {
      onRequest: admin,
      schema: { ...common, summary: 'Delete a webhook with its owed POSTs and its log', params: ID_PARAMS, response: { 204: { type: 'null' }, ...errors } },
    },
    async (req, reply) => {
      await deleteWebhook(store, req.apiKey, req.params.id);
      return reply.code(204).send();
    },
  );
  app.post<{ Params: { id: string } }>(
    '/api/v1/webhooks/:id/test',
    {
      onRequest: admin,
      schema: {
        ...common,
        summary: 'Send a test event now; its outcome is in the delivery log',
        params: ID_PARAMS,
        response: { 202: { type: 'object', properties: { delivery: { type: 'integer' } } }, ...errors },
      },
    },
    async (req, reply) => reply.code(202).send({ delivery: await testWebhook(store, req.apiKey, req.params.id) }),
  );
  app.get<{ Params: { id: string }; Querystring: { before?: number; limit: number } }>(
    '/api/v1/webhooks/:id/deliveries',
    {
      onRequest: admin,
      schema: {
        ...common,
        summary: 'The delivery log, newest first (cursor: before = the last id); settled entries are kept 7 days',
        params: ID_PARAMS,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { before: { type: 'integer', minimum: 1 }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
        },
        response: { 200: { type: 'array', items: DELIVERY }, ...errors },
      },
    },
    async (req) => (await webhookLog(store, req.apiKey, req.params.id, req.query)).map(publicDelivery),
  );
}
