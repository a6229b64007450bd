/**
 * Sending through the API: `POST /api/v1/messages` composes a message with nodemailer's
 * MIME composer and hands it to the injector, exactly as a message accepted over
 * submission (DKIM-signed, local recipients delivered, the others queued, in one commit);
 * the 202 goes out only after that commit has synced. `/batch` sends many such messages
 * (each with its own result), `/template` one personalised message per recipient, `/raw`
 * a message as it is. Suppressed recipients are never tried. `GET /api/v1/messages/:id`
 * is the delivery trace: every recipient's events with the remote replies.
 *
 * Who may send what: the From address must be in a local domain (Tern signs for its own
 * domains only), and a key limited to a domain sends only from that domain.
 */
import type { FastifyInstance } from 'fastify';
import addressparser from 'nodemailer/lib/addressparser/index.js';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type { InjectResult, Injector } from '../delivery/inject.js';
import { newTernId } from '../delivery/local-delivery.js';
import { ForbiddenError, UserError } from '../errors.js';
import { domainOf, normalizeAddress } from '../mail/address.js';
import { rfc5322Date } from '../mail/trace-headers.js';
import type { ApiKey, QueueEvent, Store } from '../store/store.js';
import type { ApiKeyAuth } from './auth.js';
import { ERROR_SCHEMA, HttpError, toHttpError } from './errors.js';

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
  properties: {
    address: { type: 'string' },
    status: { type: 'string', enum: ['delivered', 'queued', 'refused', 'suppressed', 'failed'] },
    reason: { type: 'string' },
    reply: { type: 'string', description: 'with wait=delivered: the remote reply' },
  },
} as const;

/** The JSON schema of one message to send. */
function messageSchema(limits: MessageLimits) {
  return {
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
  };
}

const SEND_RESULT = { type: 'object', properties: { id: { type: 'string' }, recipients: { type: 'array', items: RECIPIENT_RESULT } } } as const;

const IDEMPOTENCY_HEADER = {
  type: 'object',
  properties: {
    'idempotency-key': {
      type: 'string',
      maxLength: 255,
      description: 'a retried request with the same key gets the first answer and sends nothing twice (24 hours)',
    },
  },
} as const;

/** `wait=delivered`: the longest wait allowed, and how often the trace is looked at meanwhile. */
const MAX_WAIT_SECONDS = 120;
const WAIT_POLL_MS = 100;
/** Trace events after which a recipient will not be tried again. */
const FINAL_FAILURES = new Set(['failed', 'bounced', 'deleted']);

/** How long an answer of "is this domain local?" is kept (a domain added or removed counts after this). */
const DOMAIN_CACHE_MS = 5_000;

/** Most messages in one batch or template request. */
export const MAX_BATCH = 1000;

const BATCH_RESULTS = {
  type: 'object',
  properties: {
    results: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          ...SEND_RESULT.properties,
          error: {
            type: 'object',
            properties: { status: { type: 'integer' }, code: { type: 'string' }, message: { type: 'string' }, field: { type: 'string' } },
          },
        },
      },
    },
  },
} as const;

interface TemplateBody {
  from: string;
  replyTo?: string;
  headers?: Record<string, string>;
  template: { subject: string; text?: string; html?: string };
  recipients: Array<{ to: string; vars?: Record<string, string | number | boolean> }>;
}

/** `{{name}}` → vars.name through `escape` (empty when missing). */
function fill(text: string, vars: Record<string, string | number | boolean> | undefined, escape: (v: string) => string): string {
  return text.replace(/\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g, (_, name: string) => escape(String(vars?.[name] ?? '')));
}

const escapeHtml = (v: string) => v.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The header block of a raw message (up to the first empty line), unfolded. */
function headerBlock(message: Buffer): string {
  const text = message.subarray(0, 256 * 1024).toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  return (end < 0 ? text : text.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
}

/** The addresses of the From header fields of a header block. */
function fromAddresses(header: string): string[] {
  const fields = [...header.matchAll(/^from:(.*)$/gim)].map((m) => m[1]!);
  if (fields.length === 0) throw new HttpError(400, 'invalid_request', 'the message has no From header');
  return fields.flatMap((f) => addressparser(f, { flatten: true }).map((a) => a.address)).filter(Boolean);
}

interface SendResult {
  id: string;
  recipients: Array<
    Omit<InjectResult['recipients'][number], 'status'> & { status: InjectResult['recipients'][number]['status'] | 'suppressed' | 'failed'; reply?: string }
  >;
}

/** A message ready to hand to delivery. */
interface Outgoing {
  ternId: string;
  from: string;
  recipients: string[];
  data: Buffer;
}

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
  // A line break in a header field would start another field (Bcc:, a second From:): header injection.
  const oneLine: Array<[string, string | string[] | undefined]> = [
    ['from', body.from],
    ['to', body.to],
    ['cc', body.cc],
    ['bcc', body.bcc],
    ['replyTo', body.replyTo],
    ['subject', body.subject],
    ...(body.attachments ?? []).flatMap((a, i): Array<[string, string | undefined]> => [
      [`attachments.${i}.filename`, a.filename],
      [`attachments.${i}.contentType`, a.contentType],
    ]),
  ];
  for (const [field, value] of oneLine)
    if ([value ?? []].flat().some((v) => /[\r\n\0]/.test(v))) throw new HttpError(400, 'invalid_request', `${field} must be one line`, field);
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

  /** Checks and composes one message for `key`. */
  async function prepare(key: ApiKey, body: SendBody): Promise<Outgoing> {
    const from = await allowedSender(key, body.from);
    const recipients = [
      ...new Set([
        ...list(body.to).map((a) => envelopeAddress('to', a)),
        ...list(body.cc).map((a) => envelopeAddress('cc', a)),
        ...list(body.bcc).map((a) => envelopeAddress('bcc', a)),
      ]),
    ];
    if (recipients.length > limits.maxRecipients) throw new UserError(`at most ${limits.maxRecipients} recipients a message`);
    const ternId = newTernId();
    return { ternId, from, recipients, data: await compose(body, `${ternId}@${deps.hostname}`) };
  }

  /**
   * Hands messages to delivery, committed in one transaction, except for suppressed
   * recipients (hard bounces, the list): they are not attempted. Each message gets its
   * result or its error; all are durable when this resolves.
   */
  async function deliver(messages: Outgoing[]): Promise<Array<PromiseSettledResult<SendResult>>> {
    const suppressed = await store.directory.suppressed([...new Set(messages.flatMap((m) => m.recipients))]);
    const sending = messages.filter((m) => m.recipients.some((r) => !suppressed.has(r)));
    const injected = await injector.injectAll(
      sending.map((m) => ({ ternId: m.ternId, from: m.from, to: m.recipients.filter((r) => !suppressed.has(r)), data: m.data })),
    );
    const results = new Map(sending.map((m, i) => [m, injected[i]!]));
    return messages.map((m): PromiseSettledResult<SendResult> => {
      const r = results.get(m) ?? { status: 'fulfilled' as const, value: { recipients: [] as InjectResult['recipients'] } };
      if (r.status === 'rejected') return r;
      const byAddress = new Map(r.value.recipients.map((x) => [x.address, x]));
      const recipients = m.recipients.map((address) =>
        suppressed.has(address) ? { address, status: 'suppressed' as const } : (byAddress.get(address) ?? { address, status: 'refused' as const }),
      );
      return { status: 'fulfilled', value: { id: m.ternId, recipients } };
    });
  }

  /** One message: its result once durable, or its error. */
  async function sendOne(message: Outgoing): Promise<SendResult> {
    const [r] = await deliver([message]);
    if (r!.status === 'rejected') throw r!.reason;
    return r!.value;
  }

  /** The result with each queued recipient's outcome once it is delivered or failed, or as it stands at `deadline`. */
  async function waitForDelivery(sent: SendResult, deadline: number): Promise<SendResult> {
    for (;;) {
      // Per recipient: its last event, and the last remote reply (a bounce comes after the failure it reports).
      const last = new Map<string, QueueEvent>();
      const replies = new Map<string, string>();
      for (const e of await store.queue.events({ ternId: sent.id, limit: 10_000 })) {
        last.set(e.recipient, e);
        if (e.reply) replies.set(e.recipient, e.reply);
      }
      const recipients = sent.recipients.map((r) => {
        const e = r.status === 'queued' ? last.get(r.address) : undefined;
        const reply = replies.get(r.address);
        if (e?.event === 'delivered') return { ...r, status: 'delivered' as const, reply };
        if (e && FINAL_FAILURES.has(e.event)) return { ...r, status: 'failed' as const, reply };
        return r;
      });
      if (!recipients.some((r) => r.status === 'queued') || Date.now() >= deadline) return { ...sent, recipients };
      await new Promise((resolve) => setTimeout(resolve, WAIT_POLL_MS));
    }
  }

  /** The envelope sender of `from`, if `key` may send as it: an address of a local domain, of the key's domain when it has one. */
  async function allowedSender(key: ApiKey, value: string): Promise<string> {
    const from = envelopeAddress('from', value);
    const fromDomain = domainOf(from);
    if (key.domain && key.domain !== fromDomain) throw new ForbiddenError(`this key sends only from ${key.domain}`);
    if (!(await isLocalDomain(fromDomain))) throw new ForbiddenError(`${fromDomain} is not a local domain: Tern sends only from its own domains`);
    return from;
  }

  /** Whether a domain is local, remembered for DOMAIN_CACHE_MS: a batch of 1,000 messages from one domain asks the store once. */
  const localDomains = new Map<string, { until: number; local: Promise<boolean> }>();
  function isLocalDomain(domain: string): Promise<boolean> {
    const now = Date.now();
    const hit = localDomains.get(domain);
    if (hit && hit.until > now) return hit.local;
    if (localDomains.size > 10_000) localDomains.clear();
    const local = store.directory.isLocalDomain(domain);
    local.catch(() => localDomains.delete(domain));
    localDomains.set(domain, { until: now + DOMAIN_CACHE_MS, local });
    return local;
  }
  app.post<{ Body: SendBody; Querystring: { wait?: 'delivered'; timeout: number } }>(
    '/api/v1/messages',
    {
      onRequest: auth.require('send'),
      config: { idempotent: true },
      schema: {
        summary: 'Send a message',
        description:
          'Composes a MIME message, DKIM-signs it and delivers or queues it; 202 once it is durable. With `wait=delivered`, the answer waits until every remote recipient is delivered or failed (200), or the timeout (202, those still queued say so).',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { wait: { type: 'string', enum: ['delivered'] }, timeout: { type: 'integer', minimum: 1, maximum: MAX_WAIT_SECONDS, default: 30 } },
        },
        tags: ['messages'],
        security: [{ bearer: [] }],
        headers: IDEMPOTENCY_HEADER,
        body: messageSchema(limits),
        response: {
          202: SEND_RESULT,
          '4xx': ERROR_SCHEMA,
        },
      },
    },
    async (req, reply) => {
      const sent = await sendOne(await prepare(req.apiKey!, req.body));
      if (req.query.wait !== 'delivered') return reply.code(202).send(sent);
      const settled = await waitForDelivery(sent, Date.now() + req.query.timeout * 1000);
      return reply.code(settled.recipients.some((r) => r.status === 'queued') ? 202 : 200).send(settled);
    },
  );

  const errorResult = (err: unknown) => {
    const e = toHttpError(err as Error);
    return { error: { status: e.status, code: e.code, message: e.message, ...(e.field ? { field: e.field } : {}) } };
  };
  /** Every message of a batch on its own (a result or an error each), those that could be sent committed together before the answer. */
  async function sendAll(key: ApiKey, bodies: SendBody[]) {
    const prepared = await Promise.allSettled(bodies.map((b) => prepare(key, b)));
    const ready = prepared.flatMap((p) => (p.status === 'fulfilled' ? [p.value] : []));
    const sent = new Map((await deliver(ready)).map((r, i) => [ready[i]!, r]));
    return prepared.map((p) => {
      const r = p.status === 'fulfilled' ? sent.get(p.value)! : p;
      return r.status === 'fulfilled' ? r.value : errorResult(r.reason);
    });
  }

  app.post<{ Body: { messages: SendBody[] } }>(
    '/api/v1/messages/batch',
    {
      onRequest: auth.require('send'),
      config: { idempotent: true },
      schema: {
        summary: 'Send up to 1,000 messages',
        description:
          'Each message is sent as by POST /api/v1/messages and gets its own result or error, in order; 202 once all that could be sent are durable.',
        tags: ['messages'],
        security: [{ bearer: [] }],
        headers: IDEMPOTENCY_HEADER,
        body: {
          type: 'object',
          required: ['messages'],
          additionalProperties: false,
          properties: { messages: { type: 'array', minItems: 1, maxItems: MAX_BATCH, items: messageSchema(limits) } },
        },
        response: { 202: BATCH_RESULTS, '4xx': ERROR_SCHEMA },
      },
    },
    async (req, reply) => reply.code(202).send({ results: await sendAll(req.apiKey!, req.body.messages) }),
  );

  app.post<{ Body: TemplateBody }>(
    '/api/v1/messages/template',
    {
      onRequest: auth.require('send'),
      config: { idempotent: true },
      schema: {
        summary: 'Send one personalised message per recipient',
        description:
          '`{{name}}` in the subject, text and html is replaced by the recipient’s `vars.name` (HTML-escaped in html; empty when missing). Results as for a batch, one per recipient.',
        tags: ['messages'],
        security: [{ bearer: [] }],
        headers: IDEMPOTENCY_HEADER,
        body: {
          type: 'object',
          required: ['from', 'template', 'recipients'],
          additionalProperties: false,
          properties: {
            from: { type: 'string', minLength: 3, maxLength: 998 },
            replyTo: { type: 'string', maxLength: 998 },
            headers: { type: 'object', additionalProperties: { type: 'string', maxLength: 998 }, maxProperties: 50 },
            template: {
              type: 'object',
              required: ['subject'],
              additionalProperties: false,
              properties: { subject: { type: 'string', maxLength: 998 }, text: { type: 'string' }, html: { type: 'string' } },
            },
            recipients: {
              type: 'array',
              minItems: 1,
              maxItems: MAX_BATCH,
              items: {
                type: 'object',
                required: ['to'],
                additionalProperties: false,
                properties: {
                  to: { type: 'string', minLength: 3, maxLength: 998 },
                  vars: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
                },
              },
            },
          },
        },
        response: { 202: BATCH_RESULTS, '4xx': ERROR_SCHEMA },
      },
    },
    async (req, reply) => {
      const { template, recipients, ...common } = req.body;
      const bodies = recipients.map((r) => ({
        ...common,
        to: r.to,
        subject: fill(template.subject, r.vars, (v) => v.replace(/[\r\n]+/g, ' ')),
        text: template.text === undefined ? undefined : fill(template.text, r.vars, (v) => v),
        html: template.html === undefined ? undefined : fill(template.html, r.vars, escapeHtml),
      }));
      return reply.code(202).send({ results: await sendAll(req.apiKey!, bodies) });
    },
  );

  app.post<{ Body: Buffer; Querystring: { from: string; to: string } }>(
    '/api/v1/messages/raw',
    {
      onRequest: auth.require('send'),
      config: { idempotent: true },
      schema: {
        summary: 'Send an RFC 5322 message as it is',
        description:
          'The body is the message (Content-Type: message/rfc822); the envelope is in the query. Every From address must be one the key may send as. Message-ID and Date are added when missing.',
        tags: ['messages'],
        security: [{ bearer: [] }],
        headers: IDEMPOTENCY_HEADER,
        querystring: {
          type: 'object',
          required: ['from', 'to'],
          additionalProperties: false,
          properties: { from: { type: 'string', minLength: 3, maxLength: 998 }, to: { type: 'string', minLength: 3, description: 'comma-separated' } },
        },
        response: { 202: SEND_RESULT, '4xx': ERROR_SCHEMA },
      },
    },
    async (req, reply) => {
      const key = req.apiKey!;
      const from = await allowedSender(key, req.query.from);
      const to = [...new Set(req.query.to.split(',').map((a) => envelopeAddress('to', a.trim())))];
      if (to.length > limits.maxRecipients) throw new UserError(`at most ${limits.maxRecipients} recipients a message`);
      if (!Buffer.isBuffer(req.body) || req.body.length === 0)
        throw new HttpError(400, 'invalid_request', 'the body is the message: send it with Content-Type: message/rfc822');
      const header = headerBlock(req.body);
      for (const address of fromAddresses(header)) await allowedSender(key, address);
      const ternId = newTernId();
      let added = '';
      if (!/^date:/im.test(header)) added += `Date: ${rfc5322Date(new Date())}\r\n`;
      if (!/^message-id:/im.test(header)) added += `Message-ID: <${ternId}@${deps.hostname}>\r\n`;
      const data = added ? Buffer.concat([Buffer.from(added), req.body]) : req.body;
      return reply.code(202).send(await sendOne({ ternId, from, recipients: to, data }));
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
