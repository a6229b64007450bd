/**
 * The admin portal's files (built from src/web/ into dist/web/ by scripts/build-web.mjs) at
 * `/`. Files under /assets/ have hashed names and are cached for a year; index.html is
 * revalidated every time, so a new build is seen at the next load. The build writes .br
 * and .gz copies, sent to browsers that accept them. The portal has no back door: it calls
 * the public API with its session cookie (http/session.ts).
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

export const PORTAL_DIR = fileURLToPath(new URL('../../web/', import.meta.url));

/** Everything the portal loads comes from this origin: no inline script, no third party. */
const CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

export async function registerPortal(app: FastifyInstance, dir = PORTAL_DIR): Promise<void> {
  if (!fs.existsSync(`${dir}/index.html`)) {
    app.get('/', { schema: { hide: true } }, (_req, reply) =>
      reply.code(503).type('text/plain; charset=utf-8').send(`The admin portal is not built (no ${dir}index.html): run npm run build.\n`),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root: dir,
    prefix: '/',
    index: ['index.html'],
    preCompressed: true,
    decorateReply: false,
    cacheControl: false,
    schemaHide: true,
    setHeaders(res, file) {
      const asset = /[/\\]assets[/\\]/.test(file);
      void res.header('cache-control', asset ? 'public, max-age=31536000, immutable' : 'no-cache');
      void res.header('x-content-type-options', 'nosniff');
      if (file.endsWith('.html')) {
        void res.header('content-security-policy', CSP);
        void res.header('referrer-policy', 'no-referrer');
        void res.header('x-frame-options', 'DENY');
      }
    },
  });
}
