/** DMARC and TLS reports received for the site's domains, through the API (admin scope; a key limited to a domain sees its own): admin/reports.ts holds the rules. */
import type { FastifyInstance } from 'fastify';
import { listReports, publicReport, summarizeReports } from '../admin/reports.js';
import type { Store } from '../store/store.js';
import type { ApiKeyAuth } from './auth.js';
import { ERROR_SCHEMA } from './errors.js';

const DOMAIN = { type: 'string', minLength: 1, maxLength: 253 } as const;

export function registerReportRoutes(app: FastifyInstance, deps: { store: Store; auth: ApiKeyAuth }): void {
  const { store, auth } = deps;
  const common = { tags: ['reports'], security: [{ bearer: [] }] };
  const admin = auth.require('admin');
  app.get<{ Querystring: { domain?: string; kind?: string; limit: number } }>(
    '/api/v1/reports',
    {
      onRequest: admin,
      schema: {
        ...common,
        summary: 'DMARC aggregate (RFC 7489) and TLS (RFC 8460) reports received, newest first, with their rows',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            domain: DOMAIN,
            kind: { type: 'string', enum: ['dmarc', 'tlsrpt'] },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 },
          },
        },
        response: {
          200: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                id: { type: 'integer' },
                kind: { type: 'string' },
                domain: { type: 'string' },
                reporter: { type: 'string' },
                reportId: { type: 'string' },
                begin: { type: 'string' },
                end: { type: 'string' },
                receivedAt: { type: 'string' },
                rows: { type: 'array', items: { type: 'object', additionalProperties: true } },
              },
            },
          },
          '4xx': ERROR_SCHEMA,
        },
      },
    },
    async (req) => (await listReports(store, req.apiKey, req.query)).map(publicReport),
  );
  app.get<{ Querystring: { domain: string } }>(
    '/api/v1/reports/summary',
    {
      onRequest: admin,
      schema: {
        ...common,
        summary: "A domain's reports summed up: per sending address what DMARC reporters saw, per TLS reporter its sessions",
        querystring: { type: 'object', required: ['domain'], additionalProperties: false, properties: { domain: DOMAIN } },
        response: {
          200: {
            type: 'object',
            properties: {
              domain: { type: 'string' },
              reports: { type: 'integer' },
              dmarc: { type: 'array', items: { type: 'object', additionalProperties: true } },
              tls: { type: 'array', items: { type: 'object', additionalProperties: true } },
            },
          },
          '4xx': ERROR_SCHEMA,
        },
      },
    },
    (req) => summarizeReports(store, req.apiKey, req.query.domain),
  );
}
