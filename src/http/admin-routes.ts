/**
 * Domains (with DKIM keys and DNS records), accounts and aliases through the API (admin
 * scope). The rules are admin/ (shared with the CLI); a key limited to a domain manages
 * that domain's accounts and aliases and reads its records, and nothing else.
 */
import type { FastifyInstance } from 'fastify';
import { createAccount, deleteAccount, getAccount, listAccounts, setPassword, setQuota } from '../admin/accounts.js';
import { addAlias, deleteAlias, listAliases } from '../admin/aliases.js';
import { checkDnsRecords, dnsResolver } from '../admin/dns-check.js';
import {
  addDomain,
  deleteDomain,
  dkimKeys,
  dnsRecords,
  existingDomain,
  inboundPolicy,
  listDomains,
  parseDkimChoice,
  publicDkimKey,
  rotateDkimKey,
  setInboundPolicy,
} from '../admin/domains.js';
import type { InboundPolicy } from '../smtp/inbound-auth.js';
import type { Store } from '../store/store.js';
import type { ApiKeyAuth } from './auth.js';
import { ERROR_SCHEMA } from './errors.js';

const DOMAIN_NAME = { type: 'string', minLength: 1, maxLength: 253 } as const;
const ADDRESS = { type: 'string', minLength: 3, maxLength: 320 } as const;
const DKIM_KEY = {
  type: 'object',
  properties: {
    domain: { type: 'string' },
    selector: { type: 'string' },
    algorithm: { type: 'string' },
    state: { type: 'string' },
    createdAt: { type: 'string' },
    retireAt: { type: 'string', nullable: true },
    record: { type: 'object', properties: { name: { type: 'string' }, type: { type: 'string' }, value: { type: 'string' } } },
  },
} as const;
const DNS_RECORDS = {
  type: 'array',
  items: { type: 'object', properties: { name: { type: 'string' }, type: { type: 'string' }, value: { type: 'string' }, note: { type: 'string' } } },
} as const;
const DOMAIN = {
  type: 'object',
  properties: { name: { type: 'string' }, createdAt: { type: 'string' }, dkim: { type: 'array', items: DKIM_KEY }, records: DNS_RECORDS },
} as const;
const ACCOUNT = {
  type: 'object',
  properties: {
    address: { type: 'string' },
    admin: { type: 'boolean' },
    quotaBytes: { type: 'integer', nullable: true },
    usedBytes: { type: 'integer' },
    messages: { type: 'integer' },
    createdAt: { type: 'string' },
  },
} as const;
const QUOTA = { type: 'integer', minimum: 0, nullable: true, description: 'bytes; null for unlimited' } as const;
const PASSWORD = { type: 'string', minLength: 8, maxLength: 1024 } as const;
const PASSWORD_ANSWER = {
  type: 'object',
  properties: { address: { type: 'string' }, password: { type: 'string', description: 'present when generated: shown this once' } },
} as const;
const errors = { '4xx': ERROR_SCHEMA };

export function registerAdminRoutes(app: FastifyInstance, deps: { store: Store; auth: ApiKeyAuth; hostname: string; dnsServers: string[] }): void {
  const { store, auth, hostname } = deps;
  const directory = store.directory;
  const admin = auth.require('admin');
  const tagged = (tag: string) => ({ tags: [tag], security: [{ bearer: [] }] });
  const domainView = async (actor: Parameters<typeof existingDomain>[1], name: string) => {
    const n = await existingDomain(directory, actor, name);
    const domain = (await directory.listDomains()).find((d) => d.name === n)!;
    return {
      name: n,
      createdAt: domain.createdAt.toISOString(),
      dkim: (await dkimKeys(directory, actor, n)).map(publicDkimKey),
      records: await dnsRecords(directory, actor, n, hostname),
    };
  };

  // Domains
  app.get(
    '/api/v1/domains',
    { onRequest: admin, schema: { ...tagged('domains'), summary: 'Local domains', response: { 200: { type: 'array', items: DOMAIN }, ...errors } } },
    async (req) => (await listDomains(directory, req.apiKey)).map((d) => ({ name: d.name, createdAt: d.createdAt.toISOString() })),
  );
  app.post<{ Body: { name: string; dkim: string } }>(
    '/api/v1/domains',
    {
      onRequest: admin,
      schema: {
        ...tagged('domains'),
        summary: 'Add a local domain with DKIM keys; the answer lists the DNS records to publish',
        body: {
          type: 'object',
          required: ['name'],
          additionalProperties: false,
          properties: { name: DOMAIN_NAME, dkim: { type: 'string', enum: ['rsa', 'ed25519', 'both', 'none'], default: 'rsa' } },
        },
        response: { 201: DOMAIN, ...errors },
      },
    },
    async (req, reply) => {
      const { domain } = await addDomain(directory, req.apiKey, req.body.name, parseDkimChoice(req.body.dkim));
      return reply.code(201).send(await domainView(req.apiKey, domain.name));
    },
  );
  app.get<{ Params: { name: string } }>(
    '/api/v1/domains/:name',
    {
      onRequest: admin,
      schema: {
        ...tagged('domains'),
        summary: 'A domain with its DKIM keys and the DNS records to publish',
        params: { type: 'object', required: ['name'], properties: { name: DOMAIN_NAME } },
        response: { 200: DOMAIN, ...errors },
      },
    },
    (req) => domainView(req.apiKey, req.params.name),
  );
  app.get<{ Params: { name: string } }>(
    '/api/v1/domains/:name/dns-check',
    {
      onRequest: admin,
      schema: {
        ...tagged('domains'),
        summary: 'What DNS says now about each record the domain should publish: ok, different, missing, or error',
        params: { type: 'object', required: ['name'], properties: { name: DOMAIN_NAME } },
        response: {
          200: {
            type: 'object',
            properties: {
              resolvers: { type: 'array', items: { type: 'string' } },
              records: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    ...DNS_RECORDS.items.properties,
                    found: { type: 'array', items: { type: 'string' } },
                    status: { type: 'string', enum: ['ok', 'different', 'missing', 'error'] },
                    error: { type: 'string' },
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
      const records = await dnsRecords(directory, req.apiKey, req.params.name, hostname);
      const resolver = dnsResolver(deps.dnsServers);
      return { resolvers: resolver.getServers(), records: await checkDnsRecords(records, resolver) };
    },
  );
  app.delete<{ Params: { name: string } }>(
    '/api/v1/domains/:name',
    {
      onRequest: admin,
      schema: {
        ...tagged('domains'),
        summary: 'Delete a domain (409 while accounts or aliases use it); its API keys are revoked',
        params: { type: 'object', required: ['name'], properties: { name: DOMAIN_NAME } },
        response: { 204: { type: 'null' }, ...errors },
      },
    },
    async (req, reply) => {
      await deleteDomain(directory, req.apiKey, req.params.name);
      return reply.code(204).send();
    },
  );
  app.post<{ Params: { name: string }; Body: { algorithm: 'rsa' | 'ed25519' } }>(
    '/api/v1/domains/:name/dkim',
    {
      onRequest: admin,
      // Every field has a default: a POST without a body (curl -X POST) is read as {} rather than refused.
      preValidation: async (req) => {
        req.body ??= {} as typeof req.body;
      },
      schema: {
        ...tagged('domains'),
        summary: 'Rotate: add a DKIM key that starts signing once its record is published; the current one then retires',
        params: { type: 'object', required: ['name'], properties: { name: DOMAIN_NAME } },
        body: { type: 'object', additionalProperties: false, properties: { algorithm: { type: 'string', enum: ['rsa', 'ed25519'], default: 'rsa' } } },
        response: { 201: DKIM_KEY, ...errors },
      },
    },
    async (req, reply) => reply.code(201).send(publicDkimKey(await rotateDkimKey(directory, req.apiKey, req.params.name, req.body?.algorithm ?? 'rsa'))),
  );

  const POLICY = {
    type: 'object',
    properties: {
      dmarc: { type: 'string', enum: ['enforce', 'monitor'] },
      spf: { type: 'string', enum: ['reject', 'monitor'] },
      greylist: { type: 'boolean' },
      mtaSts: { type: 'string', enum: ['enforce', 'testing', 'none'] },
    },
  } as const;
  app.get<{ Params: { name: string } }>(
    '/api/v1/domains/:name/policy',
    {
      onRequest: admin,
      schema: {
        ...tagged('domains'),
        summary: "What the MX enforces for mail to the domain: the sender's DMARC policy (enforce or monitor) and SPF failures (reject or monitor)",
        params: { type: 'object', required: ['name'], properties: { name: DOMAIN_NAME } },
        response: { 200: POLICY, ...errors },
      },
    },
    (req) => inboundPolicy(directory, req.apiKey, req.params.name),
  );
  app.patch<{ Params: { name: string }; Body: Partial<InboundPolicy> }>(
    '/api/v1/domains/:name/policy',
    {
      onRequest: admin,
      schema: {
        ...tagged('domains'),
        summary: 'Change what the MX enforces; a running server applies it within 5 s',
        params: { type: 'object', required: ['name'], properties: { name: DOMAIN_NAME } },
        body: { ...POLICY, additionalProperties: false, minProperties: 1 },
        response: { 200: POLICY, ...errors },
      },
    },
    (req) => setInboundPolicy(directory, req.apiKey, req.params.name, req.body),
  );

  // Accounts
  app.get<{ Querystring: { domain?: string; search?: string; offset?: number; limit?: number } }>(
    '/api/v1/accounts',
    {
      onRequest: admin,
      schema: {
        ...tagged('accounts'),
        summary: 'Accounts with their quota, use and message count, by address; X-Total-Count holds how many match',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            domain: DOMAIN_NAME,
            search: { type: 'string', maxLength: 320, description: 'only addresses containing this' },
            offset: { type: 'integer', minimum: 0, default: 0 },
            limit: { type: 'integer', minimum: 1, maximum: 10000, description: 'at most this many (all by default)' },
          },
        },
        response: { 200: { type: 'array', items: ACCOUNT }, ...errors },
      },
    },
    async (req, reply) => {
      const { accounts, total } = await listAccounts(store, req.apiKey, req.query);
      return reply.header('x-total-count', String(total)).send(accounts);
    },
  );
  app.post<{ Body: { address: string; password?: string; admin?: boolean; quotaBytes?: number | null } }>(
    '/api/v1/accounts',
    {
      onRequest: admin,
      schema: {
        ...tagged('accounts'),
        summary: 'Create an account (INBOX, Drafts, Sent, Trash, Junk, Archive); without a password one is generated and returned once',
        body: {
          type: 'object',
          required: ['address'],
          additionalProperties: false,
          properties: { address: ADDRESS, password: PASSWORD, admin: { type: 'boolean' }, quotaBytes: QUOTA },
        },
        response: { 201: { type: 'object', properties: { ...ACCOUNT.properties, password: { type: 'string' } } }, ...errors },
      },
    },
    async (req, reply) => {
      const { account, password, generated } = await createAccount(store, req.apiKey, { ...req.body, isAdmin: req.body.admin });
      return reply.code(201).send({ ...(await getAccount(store, req.apiKey, account.address)), ...(generated ? { password } : {}) });
    },
  );
  const addressParams = { type: 'object', required: ['address'], properties: { address: ADDRESS } } as const;
  app.get<{ Params: { address: string } }>(
    '/api/v1/accounts/:address',
    { onRequest: admin, schema: { ...tagged('accounts'), summary: 'One account', params: addressParams, response: { 200: ACCOUNT, ...errors } } },
    (req) => getAccount(store, req.apiKey, req.params.address),
  );
  app.patch<{ Params: { address: string }; Body: { password?: string; quotaBytes?: number | null } }>(
    '/api/v1/accounts/:address',
    {
      onRequest: admin,
      schema: {
        ...tagged('accounts'),
        summary: 'Change the password or the quota',
        params: addressParams,
        body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { password: PASSWORD, quotaBytes: QUOTA } },
        response: { 200: ACCOUNT, ...errors },
      },
    },
    async (req) => {
      if (req.body.password !== undefined) await setPassword(store, req.apiKey, req.params.address, req.body.password);
      if (req.body.quotaBytes !== undefined) await setQuota(store, req.apiKey, req.params.address, req.body.quotaBytes);
      return getAccount(store, req.apiKey, req.params.address);
    },
  );
  app.post<{ Params: { address: string } }>(
    '/api/v1/accounts/:address/reset-password',
    {
      onRequest: admin,
      schema: {
        ...tagged('accounts'),
        summary: 'Set a generated password, returned this once',
        params: addressParams,
        response: { 200: PASSWORD_ANSWER, ...errors },
      },
    },
    async (req) => {
      const { address, password } = await setPassword(store, req.apiKey, req.params.address);
      return { address, password };
    },
  );
  app.delete<{ Params: { address: string } }>(
    '/api/v1/accounts/:address',
    {
      onRequest: admin,
      schema: {
        ...tagged('accounts'),
        summary: 'Delete an account with all its mailboxes and messages',
        params: addressParams,
        response: { 204: { type: 'null' }, ...errors },
      },
    },
    async (req, reply) => {
      await deleteAccount(store, req.apiKey, req.params.address);
      return reply.code(204).send();
    },
  );

  // Aliases
  app.get<{ Querystring: { domain?: string } }>(
    '/api/v1/aliases',
    {
      onRequest: admin,
      schema: {
        ...tagged('aliases'),
        summary: 'Aliases and catch-alls (@domain), one row per target',
        querystring: { type: 'object', additionalProperties: false, properties: { domain: DOMAIN_NAME } },
        response: { 200: { type: 'array', items: { type: 'object', properties: { address: { type: 'string' }, target: { type: 'string' } } } }, ...errors },
      },
    },
    (req) => listAliases(directory, req.apiKey, req.query.domain),
  );
  app.post<{ Body: { source: string; targets: string[] } }>(
    '/api/v1/aliases',
    {
      onRequest: admin,
      schema: {
        ...tagged('aliases'),
        summary: 'Deliver mail for source (user@domain, or @domain for a catch-all) to each local target',
        body: {
          type: 'object',
          required: ['source', 'targets'],
          additionalProperties: false,
          properties: { source: { type: 'string', minLength: 2, maxLength: 320 }, targets: { type: 'array', minItems: 1, maxItems: 1000, items: ADDRESS } },
        },
        response: { 201: { type: 'object', properties: { source: { type: 'string' }, targets: { type: 'array', items: { type: 'string' } } } }, ...errors },
      },
    },
    async (req, reply) => reply.code(201).send(await addAlias(directory, req.apiKey, req.body.source, req.body.targets)),
  );
  app.delete<{ Params: { source: string }; Querystring: { target?: string } }>(
    '/api/v1/aliases/:source',
    {
      onRequest: admin,
      schema: {
        ...tagged('aliases'),
        summary: 'Delete one target of an alias (?target=), or the whole alias',
        params: { type: 'object', required: ['source'], properties: { source: { type: 'string', minLength: 2, maxLength: 320 } } },
        querystring: { type: 'object', additionalProperties: false, properties: { target: ADDRESS } },
        response: { 204: { type: 'null' }, ...errors },
      },
    },
    async (req, reply) => {
      await deleteAlias(directory, req.apiKey, req.params.source, req.query.target);
      return reply.code(204).send();
    },
  );
}
