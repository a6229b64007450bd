/** The outbound queue through the API (site-wide admin keys): admin/queue.ts holds the rules, shared with `tern queue`. */
import type { FastifyInstance } from 'fastify';
import {
  entryJson,
  eventJson,
  listQueue,
  QUEUE_ACTIONS,
  QUEUE_STATES,
  queueAction,
  queueEntry,
  queueFilter,
  queuedHeaders,
  type QueueAction,
  type QueueFilterInput,
} from '../admin/queue.js';
import type { Store } from '../store/store.js';
import type { ApiKeyAuth } from './auth.js';
import { ERROR_SCHEMA } from './errors.js';

const FILTER_PROPERTIES = {
  state: { type: 'string', enum: QUEUE_STATES },
  domain: { type: 'string', maxLength: 253, description: 'destination domain' },
  sender: { type: 'string', maxLength: 320, description: 'envelope sender; "" for bounces' },
  recipient: { type: 'string', maxLength: 320 },
  olderThan: { type: 'string', maxLength: 20, description: 'queued longer ago than this duration, e.g. 1h' },
} as const;
const RECIPIENT = {
  type: 'object',
  properties: { address: { type: 'string' }, status: { type: 'string' }, reply: { type: 'string', nullable: true } },
} as const;
const ENTRY = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    ternId: { type: 'string' },
    envelopeFrom: { type: 'string' },
    domain: { type: 'string' },
    size: { type: 'integer' },
    state: { type: 'string' },
    isBounce: { type: 'boolean' },
    attempts: { type: 'integer' },
    nextAttemptAt: { type: 'string' },
    createdAt: { type: 'string' },
    recipients: { type: 'array', items: RECIPIENT },
  },
} as const;
const EVENT = {
  type: 'object',
  properties: { at: { type: 'string' }, recipient: { type: 'string' }, event: { type: 'string' }, reply: { type: 'string', nullable: true } },
} as const;
const ID_PARAMS = { type: 'object', required: ['id'], properties: { id: { type: 'integer', minimum: 1 } } } as const;

export function registerQueueRoutes(app: FastifyInstance, deps: { store: Store; auth: ApiKeyAuth }): void {
  const { store, auth } = deps;
  const common = { tags: ['queue'], security: [{ bearer: [] }] };
  const admin = auth.require('admin');
  app.get<{ Querystring: Omit<QueueFilterInput, 'ids' | 'all'> & { after?: number; limit: number } }>(
    '/api/v1/queue',
    {
      onRequest: admin,
      schema: {
        ...common,
        summary: 'Queue entries (one per message and destination domain), oldest first; cursor: after = the last id',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { ...FILTER_PROPERTIES, after: { type: 'integer', minimum: 0 }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
        },
        response: { 200: { type: 'array', items: ENTRY }, '4xx': ERROR_SCHEMA },
      },
    },
    async (req) => {
      const { after, limit, ...filter } = req.query;
      return (await listQueue(store, req.apiKey, queueFilter(filter, null), { after, limit })).map(entryJson);
    },
  );
  app.get<{ Params: { id: number } }>(
    '/api/v1/queue/:id',
    {
      onRequest: admin,
      schema: {
        ...common,
        summary: 'One entry with its recipients, its message’s header as it will be sent, and every event of its message',
        params: ID_PARAMS,
        response: {
          200: { type: 'object', properties: { ...ENTRY.properties, headers: { type: 'string' }, events: { type: 'array', items: EVENT } } },
          '4xx': ERROR_SCHEMA,
        },
      },
    },
    async (req) => {
      const { entry, events } = await queueEntry(store, req.apiKey, req.params.id);
      return { ...entryJson(entry), headers: await queuedHeaders(store, req.apiKey, entry.id), events: events.map(eventJson) };
    },
  );
  app.delete<{ Params: { id: number } }>(
    '/api/v1/queue/:id',
    {
      onRequest: admin,
      schema: {
        ...common,
        summary: 'Remove an entry without delivering or bouncing it',
        params: ID_PARAMS,
        response: { 204: { type: 'null' }, '4xx': ERROR_SCHEMA },
      },
    },
    async (req, reply) => {
      await queueEntry(store, req.apiKey, req.params.id);
      await queueAction(store, req.apiKey, 'delete', { ids: [req.params.id] });
      return reply.code(204).send();
    },
  );
  app.post<{ Params: { action: QueueAction }; Body: QueueFilterInput }>(
    '/api/v1/queue/:action',
    {
      onRequest: admin,
      // A POST without a body is read as {}: refused by queueFilter with what to name, not with "body must be object".
      preValidation: async (req) => {
        req.body ??= {};
      },
      schema: {
        ...common,
        summary: 'retry (due now; held ones released), hold, release or delete the entries named by ids, by a filter, or all',
        params: { type: 'object', required: ['action'], properties: { action: { type: 'string', enum: [...QUEUE_ACTIONS] } } },
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { ...FILTER_PROPERTIES, ids: { type: 'array', maxItems: 10_000, items: { type: 'integer', minimum: 1 } }, all: { type: 'boolean' } },
        },
        response: { 200: { type: 'object', properties: { count: { type: 'integer' } } }, '4xx': ERROR_SCHEMA },
      },
    },
    async (req) => ({ count: await queueAction(store, req.apiKey, req.params.action, queueFilter(req.body ?? {}, req.params.action)) }),
  );
}
