/**
 * Message trace search (`GET /api/v1/trace`): the messages, inbound and outbound, whose trace
 * starts with a match, by Message-ID, envelope sender, recipient and time; each one's
 * events and remote replies are at `GET /api/v1/messages/{id}`. Site-wide admin keys only:
 * a trace names everyone's correspondents.
 */
import type { FastifyInstance } from 'fastify';
import { requireSiteAdmin } from '../admin/actor.js';
import { UserError } from '../errors.js';
import { normalizeAddress } from '../mail/address.js';
import type { Store } from '../store/store.js';
import type { ApiKeyAuth } from './auth.js';
import { ERROR_SCHEMA } from './errors.js';

interface TraceQuerystring {
  messageId?: string;
  sender?: string;
  recipient?: string;
  since?: string;
  until?: string;
  limit: number;
}

function dateOf(name: string, value: string | undefined): Date | undefined {
  if (!value) return undefined;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new UserError(`${name}: expected a date and time like 2026-11-25T10:00:00Z, got ${JSON.stringify(value)}`);
  return d;
}

/** An address filter: none when empty. */
const addressOf = (value: string | undefined) => (value?.trim() ? normalizeAddress(value) : undefined);

export function registerTraceRoutes(app: FastifyInstance, deps: { store: Store; auth: ApiKeyAuth }): void {
  const text = (max: number) => ({ type: 'string', maxLength: max }) as const;
  app.get<{ Querystring: TraceQuerystring }>(
    '/api/v1/trace',
    {
      onRequest: deps.auth.require('admin'),
      schema: {
        tags: ['messages'],
        security: [{ bearer: [] }],
        summary: 'Find messages by Message-ID, envelope sender, recipient and time; newest first',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            messageId: { ...text(998), description: 'with or without its angle brackets' },
            sender: { ...text(320), description: 'envelope sender; <> for bounces' },
            recipient: text(320),
            since: { ...text(40), description: 'ISO 8601' },
            until: { ...text(40), description: 'ISO 8601' },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              messages: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    id: { type: 'string' },
                    at: { type: 'string' },
                    direction: { type: 'string', enum: ['inbound', 'outbound', 'both'] },
                    sender: { type: 'string', nullable: true },
                    messageId: { type: 'string', nullable: true },
                    subject: { type: 'string', nullable: true },
                    recipients: { type: 'array', items: { type: 'string' } },
                  },
                },
              },
            },
          },
          '4xx': ERROR_SCHEMA,
        },
      },
    },
    async (req) => {
      requireSiteAdmin(req.apiKey, 'a trace names the whole site’s correspondents');
      const q = req.query;
      const hits = await deps.store.queue.traceSearch({
        messageId: q.messageId?.trim() || undefined,
        sender: q.sender?.trim() === '<>' ? '' : addressOf(q.sender),
        recipient: addressOf(q.recipient),
        since: dateOf('since', q.since),
        until: dateOf('until', q.until),
        limit: q.limit,
      });
      return {
        messages: hits.map((h) => ({
          id: h.ternId,
          at: h.at.toISOString(),
          direction: h.local.length > 0 && h.outbound.length > 0 ? 'both' : h.local.length > 0 ? 'inbound' : 'outbound',
          sender: h.sender,
          messageId: h.messageId,
          subject: h.subject,
          recipients: [...h.local, ...h.outbound],
        })),
      };
    },
  );
}
