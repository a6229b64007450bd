/**
 * The `/.well-known/` answers of the http role.
 *
 * ACME HTTP-01 (RFC 8555 8.3): `/.well-known/acme-challenge/<token>` answers the key
 * authorization an order of config/acme.ts keeps in the store while it runs.
 *
 * MTA-STS for Tern's own domains (RFC 8461 3.3): `GET /.well-known/mta-sts.txt` on host
 * `mta-sts.<domain>` answers the domain's policy (`tern domain policy D --mta-sts`), as
 * text/plain. Senders fetch it over HTTPS on port 443: put the http role behind a TLS
 * front with a certificate for that name.
 */
import type { FastifyInstance } from 'fastify';
import { inboundPolicy, mtaStsPolicy } from '../admin/domains.js';
import { ACME_CHALLENGE_PREFIX } from '../config/acme.js';
import { UserError } from '../errors.js';
import type { DirectoryStore } from '../store/store.js';
import { HttpError } from './errors.js';

export function registerWellKnownRoutes(app: FastifyInstance, deps: { directory: DirectoryStore; hostname: string }): void {
  app.get<{ Params: { token: string } }>(
    '/.well-known/acme-challenge/:token',
    {
      schema: {
        summary: 'ACME HTTP-01 challenge answers (while an order runs)',
        tags: ['health'],
        params: { type: 'object', required: ['token'], properties: { token: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,256}$' } } },
      },
    },
    async (req, reply) => {
      const answer = await deps.directory.getSetting(`${ACME_CHALLENGE_PREFIX}${req.params.token}`);
      if (!answer) throw new HttpError(404, 'not_found', 'no such challenge');
      return reply.type('text/plain').send(answer);
    },
  );

  app.get(
    '/.well-known/mta-sts.txt',
    { schema: { summary: "An own domain's MTA-STS policy (Host: mta-sts.<domain>)", tags: ['health'] } },
    async (req, reply) => {
      const host = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
      const domain = host.startsWith('mta-sts.') ? host.slice('mta-sts.'.length) : '';
      const none = new HttpError(404, 'not_found', `no MTA-STS policy for host ${JSON.stringify(host)}`);
      if (!domain) throw none;
      let policy: string | null;
      try {
        policy = mtaStsPolicy((await inboundPolicy(deps.directory, null, domain)).mtaSts, deps.hostname);
      } catch (err) {
        if (err instanceof UserError) throw none; // not a domain, or not ours
        throw err;
      }
      if (!policy) throw none;
      return reply.type('text/plain; charset=utf-8').header('cache-control', 'max-age=300').send(policy);
    },
  );
}
