/**
 * Reading an account's mail through the API (admin keys, or read keys limited to the
 * account's domain): admin/mail.ts holds the rules. Mailbox names go in the path
 * URL-encoded (Archive%2F2024).
 */
import type { FastifyInstance } from 'fastify';
import { listMessages, mailboxOf, messageAt, parsedJson, parseMessage, readableAccount } from '../admin/mail.js';
import { NotFoundError } from '../errors.js';
import type { Store } from '../store/store.js';
import type { ApiKeyAuth } from './auth.js';
import { ERROR_SCHEMA } from './errors.js';

const ADDRESS = { type: 'string', minLength: 3, maxLength: 320 } as const;
const MAILBOX = { type: 'string', minLength: 1, maxLength: 1000 } as const;
const UID = { type: 'integer', minimum: 1 } as const;
const NULLABLE = { type: 'string', nullable: true } as const;
const ADDRESSES = { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, address: NULLABLE } } } as const;

type Params = { address: string; mailbox: string; uid: number; index: number };

export function registerMailRoutes(app: FastifyInstance, deps: { store: Store; auth: ApiKeyAuth }): void {
  const { store, auth } = deps;
  const common = { tags: ['mailboxes'], security: [{ bearer: [] }] };
  const reader = auth.require('admin', 'read');
  const errors = { '4xx': ERROR_SCHEMA };
  const params = (...names: Array<keyof Params>) => ({
    type: 'object',
    required: names,
    properties: Object.fromEntries(
      names.map((n) => [n, n === 'address' ? ADDRESS : n === 'mailbox' ? MAILBOX : n === 'uid' ? UID : { type: 'integer', minimum: 0 }]),
    ),
  });
  const located = async (req: { apiKey: Parameters<typeof readableAccount>[1]; params: Pick<Params, 'address' | 'mailbox' | 'uid'> }) => {
    const account = await readableAccount(store, req.apiKey, req.params.address);
    const mailbox = await mailboxOf(store, account, req.params.mailbox);
    return messageAt(store, mailbox, req.params.uid);
  };

  app.get<{ Params: Pick<Params, 'address'> }>(
    '/api/v1/accounts/:address/mailboxes',
    {
      onRequest: reader,
      schema: {
        ...common,
        summary: "An account's mailboxes with their counts",
        params: params('address'),
        response: {
          200: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                name: { type: 'string' },
                specialUse: NULLABLE,
                messages: { type: 'integer' },
                unseen: { type: 'integer' },
                bytes: { type: 'integer' },
                uidValidity: { type: 'integer' },
                uidNext: { type: 'integer' },
              },
            },
          },
          ...errors,
        },
      },
    },
    async (req) => {
      const account = await readableAccount(store, req.apiKey, req.params.address);
      return store.mailboxes.list(account.id);
    },
  );
  app.get<{ Params: Pick<Params, 'address' | 'mailbox'>; Querystring: { before?: number; limit: number } }>(
    '/api/v1/accounts/:address/mailboxes/:mailbox/messages',
    {
      onRequest: reader,
      schema: {
        ...common,
        summary: 'Messages newest first with their main headers; next page: before = next',
        params: params('address', 'mailbox'),
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { before: UID, limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
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
                    uid: { type: 'integer' },
                    flags: { type: 'array', items: { type: 'string' } },
                    size: { type: 'integer' },
                    internalDate: { type: 'string' },
                    from: NULLABLE,
                    to: NULLABLE,
                    subject: NULLABLE,
                    date: NULLABLE,
                    messageId: NULLABLE,
                  },
                },
              },
              next: { type: 'integer', nullable: true },
            },
          },
          ...errors,
        },
      },
    },
    async (req) => {
      const account = await readableAccount(store, req.apiKey, req.params.address);
      return listMessages(store, await mailboxOf(store, account, req.params.mailbox), req.query);
    },
  );
  app.get<{ Params: Pick<Params, 'address' | 'mailbox' | 'uid'> }>(
    '/api/v1/accounts/:address/mailboxes/:mailbox/messages/:uid',
    {
      onRequest: reader,
      schema: {
        ...common,
        summary: 'One message parsed: headers, text, html and the attachment list',
        params: params('address', 'mailbox', 'uid'),
        response: {
          200: {
            type: 'object',
            properties: {
              uid: { type: 'integer' },
              flags: { type: 'array', items: { type: 'string' } },
              size: { type: 'integer' },
              internalDate: { type: 'string' },
              headers: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, value: { type: 'string' } } } },
              from: ADDRESSES,
              to: ADDRESSES,
              cc: ADDRESSES,
              replyTo: ADDRESSES,
              fromText: NULLABLE,
              toText: NULLABLE,
              subject: NULLABLE,
              date: NULLABLE,
              messageId: NULLABLE,
              inReplyTo: NULLABLE,
              text: NULLABLE,
              html: NULLABLE,
              attachments: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    index: { type: 'integer' },
                    filename: NULLABLE,
                    contentType: { type: 'string' },
                    size: { type: 'integer' },
                    contentId: NULLABLE,
                    disposition: NULLABLE,
                  },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async (req) => {
      const record = await located(req);
      const parsed = parsedJson(await parseMessage(store, record.id));
      return { uid: record.uid, flags: record.flags, size: record.size, internalDate: new Date(record.internalDate).toISOString(), ...parsed };
    },
  );
  app.get<{ Params: Pick<Params, 'address' | 'mailbox' | 'uid'> }>(
    '/api/v1/accounts/:address/mailboxes/:mailbox/messages/:uid/raw',
    {
      onRequest: reader,
      schema: { ...common, summary: 'One message as stored (message/rfc822)', params: params('address', 'mailbox', 'uid'), response: errors },
    },
    async (req, reply) => {
      const record = await located(req);
      const chunks: Buffer[] = [];
      for await (const c of store.mailboxes.read(record.id)) chunks.push(c);
      return reply.type('message/rfc822').send(Buffer.concat(chunks));
    },
  );
  app.get<{ Params: Params }>(
    '/api/v1/accounts/:address/mailboxes/:mailbox/messages/:uid/attachments/:index',
    {
      onRequest: reader,
      schema: {
        ...common,
        summary: "An attachment's content, with its type and file name",
        params: params('address', 'mailbox', 'uid', 'index'),
        response: errors,
      },
    },
    async (req, reply) => {
      const record = await located(req);
      const attachment = (await parseMessage(store, record.id)).attachments[req.params.index];
      if (!attachment) throw new NotFoundError(`message ${record.uid} has no attachment ${req.params.index}`);
      const name = (attachment.filename ?? `attachment-${req.params.index}`).replace(/["\\\r\n]/g, '_');
      return reply
        .type(attachment.contentType || 'application/octet-stream')
        .header('content-disposition', `attachment; filename="${name.replace(/[^\x20-\x7e]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(name)}`)
        .send(attachment.content);
    },
  );
}
