/**
 * Sending through the API: `POST /api/v1/messages` composes a message with nodemailer's
 * MIME composer and hands it to the injector, exactly as a message accepted over
 * submission (DKIM-signed, local recipients delivered, the others queued, in one commit);
 * the 202 goes out only after that commit has synced. `GET /api/v1/messages/:id` is the
 * delivery trace: every recipient's events with the remote replies.
 *
 * Who may send what: the From address must be in a local domain (Tern signs for its own
 * domains only), and a key limited to a domain sends only from that domain.
 */
import type { FastifyInstance } from 'fastify';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type { Injector } from '../delivery/inject.js';
import { newTernId } from '../delivery/local-delivery.js';
import { ForbiddenError, UserError } from '../errors.js';
import { domainOf, normalizeAddress } from '../mail/address.js';
import type { QueueEvent, Store } from '../store/store.js';
import type { ApiKeyAuth } from './auth.js';
import { ERROR_SCHEMA, HttpError } from './errors.js';

export interface MessageLimits {
  maxRecipients: number;
  maxAttachments: number;
}

/** Headers the composer writes from the fields: a caller may not set them through `headers`. */
const RESERVED_HEADERS = new Set([
  'from',
  'to',
  'cc',
  'bcc',
  'reply-to',
  'subject',
  'date',
  'message-id',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
]);

const addresses = (max: number) => ({
  anyOf: [
    { type: 'string', minLength: 3, maxLength: 998 },
    { type: 'array', items: { type: 'string', minLength: 3, maxLength: 998 }, minItems: 1, maxItems: max },
  ],
});

const RECIPIENT_RESULT = {
  type: 'object',
  properties: { address: { type: 'string' }, status: { type: 'string', enum: ['delivered', 'queued', 'refused'] }, reason: { type: 'string' } },
} as const;

interface SendBody {
  from: string;
  to: string | string[];
  cc?: string | string[];
  bcc?: string | string[];
  replyTo?: string;
  subject?: string;
  text?: string;
  html?: string;
  headers?: Record<string, string>;
  attachments?: Array<{ filename: string; contentType?: string; content: string }>;
}

/** "Name <a@b>" or "a@b" → the normalized address (UserError naming the field when it is not one). */
function envelopeAddress(field: string, value: string): string {
  const m = /<([^<>]*)>\s*$/.exec(value);
  try {
    return normalizeAddress((m ? m[1]! : value).trim());
  } catch (err) {
    throw new HttpError(400, 'invalid_request', `${field}: ${(err as Error).message}`, field);
  }
}

const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

function compose(body: SendBody, messageId: string): Promise<Buffer> {
  for (const [name, value] of Object.entries(body.headers ?? {})) {
    if (!/^[!-9;-~]+$/.test(name)) throw new HttpError(400, 'invalid_request', `headers: ${JSON.stringify(name)} is not a header name`, `headers.${name}`);
    if (RESERVED_HEADERS.has(name.toLowerCase())) throw new HttpError(400, 'invalid_request', `headers: set ${name} through its own field`, `headers.${name}`);
    if (/[\r\n]/.test(value)) throw new HttpError(400, 'invalid_request', `headers: ${name} must be one line`, `headers.${name}`);
  }
  if (body.text === undefined && body.html === undefined && !body.attachments?.length)
    throw new HttpError(400, 'invalid_request', 'give text, html or attachments', 'text');
  const composer = new MailComposer({
    from: body.from,
    to: body.to,
    cc: body.cc,
    bcc: body.bcc,
    replyTo: body.replyTo,
    subject: body.subject ?? '',
    text: body.text,
    html: body.html,
    headers: body.headers,
    messageId,
    attachments: body.attachments?.map((a) => ({ filename: a.filename, contentType: a.contentType, content: Buffer.from(a.content, 'base64') })),
  });
  return new Promise((resolve, reject) => composer.compile().build((err, message) => (err ? reject(err) : resolve(message))));
}

/** A recipient's trace: its events in order, and where it stands. */
function traceOf(events: QueueEvent[]) {
  const byRecipient = new Map<string, QueueEvent[]>();
  for (const e of events) byRecipient.set(e.recipient, [...(byRecipient.get(e.recipient) ?? []), e]);
  return [...byRecipient].map(([address, list]) => ({
    address,
    status: list.at(-1)!.event,
    events: list.map((e) => ({ at: e.at.toISOString(), event: e.event, reply: e.reply })),
  }));
}

export function registerMessageRoutes(
  app: FastifyInstance,
  deps: { store: Store; injector: Injector; auth: ApiKeyAuth; hostname: string; limits: MessageLimits },
): void {
  const { store, injector, auth, limits } = deps;
  app.post<{ Body: SendBody }>(
    '/api/v1/messages',
    {
      onRequest: auth.require('send'),
      schema: {
        summary: 'Send a message',
        description: 'Composes a MIME message, DKIM-signs it and delivers or queues it; 202 once it is durable.',
        tags: ['messages'],
        security: [{ bearer: [] }],
        body: {
          type: 'object',
          required: ['from', 'to'],
          additionalProperties: false,
          properties: {
            from: { type: 'string', minLength: 3, maxLength: 998, description: '"Name <address>" or an address of a local domain' },
            to: addresses(limits.maxRecipients),
            cc: addresses(limits.maxRecipients),
            bcc: addresses(limits.maxRecipients),
            replyTo: { type: 'string', maxLength: 998 },
            subject: { type: 'string', maxLength: 998 },
            text: { type: 'string' },
            html: { type: 'string' },
            headers: { type: 'object', additionalProperties: { type: 'string', maxLength: 998 }, maxProperties: 50 },
            attachments: {
              type: 'array',
              maxItems: limits.maxAttachments,
              items: {
                type: 'object',
                required: ['filename', 'content'],
                additionalProperties: false,
                properties: {
                  filename: { type: 'string', minLength: 1, maxLength: 255 },
                  contentType: { type: 'string', maxLength: 255 },
                  content: { type: 'string', description: 'base64' },
                },
              },
            },
          },
        },
        response: {
          202: { type: 'object', properties: { id: { type: 'string' }, recipients: { type: 'array', items: RECIPIENT_RESULT } } },
          '4xx': ERROR_SCHEMA,
        },
      },
    },
    async (req, reply) => {
      const body = req.body;
      const from = envelopeAddress('from', body.from);
      const fromDomain = domainOf(from);
      const key = req.apiKey!;
      if (key.domain && key.domain !== fromDomain) throw new ForbiddenError(`this key sends only from ${key.domain}`);
      if (!(await store.directory.isLocalDomain(fromDomain)))
        throw new ForbiddenError(`${fromDomain} is not a local domain: Tern sends only from its own domains`);
      const recipients = [
        ...new Set([
          ...list(body.to).map((a) => envelopeAddress('to', a)),
          ...list(body.cc).map((a) => envelopeAddress('cc', a)),
          ...list(body.bcc).map((a) => envelopeAddress('bcc', a)),
        ]),
      ];
      if (recipients.length > limits.maxRecipients) throw new UserError(`at most ${limits.maxRecipients} recipients a message`);
      const ternId = newTernId();
      const data = await compose(body, `${ternId}@${deps.hostname}`);
      const result = await injector.inject({ ternId, from, to: recipients, data });
      return reply.code(202).send({ id: result.ternId, recipients: result.recipients });
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/messages/:id',
    {
      onRequest: auth.require('read', 'send'),
      schema: {
        summary: 'A message’s delivery trace',
        description:
          'Every recipient queued for other hosts with each event (queued, deferred, delivered, failed, bounced…) and the remote reply; and how many local copies were stored.',
        tags: ['messages'],
        security: [{ bearer: [] }],
        params: { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9A-Za-z]{1,64}$' } }, required: ['id'] },
        response: {
          200: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              sender: { type: 'string', nullable: true },
              localCopies: { type: 'integer' },
              recipients: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    address: { type: 'string' },
                    status: { type: 'string' },
                    events: {
                      type: 'array',
                      items: { type: 'object', properties: { at: { type: 'string' }, event: { type: 'string' }, reply: { type: 'string', nullable: true } } },
                    },
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
      const id = req.params.id.toUpperCase();
      const [events, copies] = await Promise.all([store.queue.events({ ternId: id, limit: 10_000 }), store.mailboxes.findByTernId(id)]);
      const sender = events.find((e) => e.sender !== undefined)?.sender ?? null;
      const key = req.apiKey!;
      // A key limited to a domain reads only what was sent from it (a message with no queued copy has no sender on record).
      const visible = !key.domain || (sender !== null && sender !== '' && domainOf(sender) === key.domain);
      if ((events.length === 0 && copies.length === 0) || !visible) throw new HttpError(404, 'not_found', `no message ${id}`);
      return { id, sender, localCopies: copies.filter((c) => c.status === 'stored').length, recipients: traceOf(events) };
    },
  );
}
