/**
 * API errors: every failure is JSON `{error: {code, message, field?}}` with its status:
 * 400 invalid input, 401 no valid key, 403 not allowed, 404, 409 conflict, 413 too large,
 * 429 rate limited. Errors the rest of Tern throws (UserError and its kinds) map here.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { ConflictError, ForbiddenError, NotFoundError, QuotaExceededError, UserError } from '../errors.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export const ERROR_SCHEMA = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' }, field: { type: 'string' } },
    },
  },
} as const;

export function toHttpError(err: FastifyError | Error): HttpError {
  if (err instanceof HttpError) return err;
  const f = err as FastifyError;
  if (f.validation?.length) {
    const v = f.validation[0]!;
    const missing = (v.params as { missingProperty?: string } | undefined)?.missingProperty;
    const extra = (v.params as { additionalProperty?: string } | undefined)?.additionalProperty;
    const path = [v.instancePath.replace(/^\//, '').replace(/\//g, '.'), missing ?? extra].filter(Boolean).join('.');
    const what = extra ? `unknown field ${extra}` : `${path || (f.validationContext ?? 'body')} ${v.message ?? 'is not valid'}`;
    return new HttpError(400, 'invalid_request', what, path || undefined);
  }
  if (f.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new HttpError(413, 'too_large', 'the request body is too large');
  if (f.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new HttpError(415, 'unsupported_media_type', err.message);
  if (f.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || f.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err.name === 'SyntaxError')
    return new HttpError(400, 'invalid_request', 'the body is not valid JSON');
  if (err instanceof ForbiddenError) return new HttpError(403, 'forbidden', err.message);
  if (err instanceof NotFoundError) return new HttpError(404, 'not_found', err.message);
  if (err instanceof ConflictError) return new HttpError(409, 'conflict', err.message);
  if (err instanceof QuotaExceededError) return new HttpError(413, 'over_quota', err.message);
  if (err instanceof UserError) return new HttpError(400, 'invalid_request', err.message);
  if (typeof f.statusCode === 'number' && f.statusCode >= 400 && f.statusCode < 500) return new HttpError(f.statusCode, 'invalid_request', err.message);
  return new HttpError(500, 'internal', 'the server failed; the request may be retried');
}

export function errorHandler(log: Logger) {
  return (err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply): void => {
    const e = toHttpError(err);
    if (e.status >= 500) log.error({ err: err.message, method: req.method, url: req.url }, 'http: request failed');
    void reply.code(e.status).send({ error: { code: e.code, message: e.message, ...(e.field ? { field: e.field } : {}) } });
  };
}
