/**
 * `Idempotency-Key` on the sending routes: a retried request (same key, same API key)
 * gets the first answer again and sends nothing twice. The first request claims the key
 * in the store before it does anything, so two at once cannot both send (the second gets
 * 409 until the first is done); the answer is stored before it goes out. A failure of the
 * server (5xx) forgets the claim, so a retry may try again. Records last 24 hours.
 * (A crash between the commit and storing the answer leaves the key claimed: its retries
 * get 409 until the record expires, never a second send.)
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { DirectoryStore } from '../store/store.js';
import { HttpError } from './errors.js';

const LIFETIME_MS = 24 * 3600_000;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route honours Idempotency-Key. */
    idempotent?: boolean;
  }
  interface FastifyRequest {
    idempotency: { keyId: string; key: string } | null;
  }
}

function requestHash(req: FastifyRequest): string {
  const hash = createHash('sha256').update(`${req.method} ${req.url}\n`);
  hash.update(Buffer.isBuffer(req.body) ? req.body : JSON.stringify(req.body ?? null));
  return hash.digest('hex');
}

export function registerIdempotency(app: FastifyInstance, directory: DirectoryStore): void {
  let nextPurge = 0;
  app.decorateRequest('idempotency', null);
  app.addHook('preHandler', async (req, reply) => {
    const header = req.headers['idempotency-key'];
    if (!req.routeOptions.config.idempotent || header === undefined || !req.apiKey) return;
    const key = Array.isArray(header) ? header[0]! : header;
    if (!/^[\x21-\x7e]{1,255}$/.test(key))
      throw new HttpError(400, 'invalid_request', 'Idempotency-Key is 1 to 255 printable ASCII characters', 'Idempotency-Key');
    const now = Date.now();
    if (now >= nextPurge) {
      nextPurge = now + 3600_000;
      void directory.purgeIdempotency(new Date(now - LIFETIME_MS)).catch(() => undefined);
    }
    const hash = requestHash(req);
    const claim = await directory.claimIdempotency(req.apiKey.id, key, hash, new Date(now - LIFETIME_MS));
    if (claim.state !== 'new' && claim.requestHash !== hash) throw new HttpError(409, 'conflict', 'this Idempotency-Key was used with a different request');
    if (claim.state === 'pending') throw new HttpError(409, 'conflict', 'a request with this Idempotency-Key is still under way; retry later');
    if (claim.state === 'done')
      return reply.code(claim.status).header('content-type', 'application/json; charset=utf-8').header('idempotent-replayed', 'true').send(claim.response);
    req.idempotency = { keyId: req.apiKey.id, key };
  });
  app.addHook('onSend', async (req, reply, payload) => {
    const claim = req.idempotency;
    if (!claim) return payload;
    req.idempotency = null;
    if (reply.statusCode >= 500) await directory.dropIdempotency(claim.keyId, claim.key);
    else await directory.finishIdempotency(claim.keyId, claim.key, reply.statusCode, String(payload));
    return payload;
  });
}
