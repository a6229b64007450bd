/**
 * API key tokens: `tern_<id>_<secret>`. The id finds the key; only a SHA-256 of the
 * secret is stored (the secret is 192 random bits, so a fast hash is enough: nothing to
 * guess from it), compared in constant time. The whole token is shown once, at creation.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiKey } from '../store/store.js';

export interface NewToken {
  id: string;
  /** What the caller is given, once. */
  token: string;
  secretHash: string;
}

const hashOf = (secret: string) => createHash('sha256').update(secret).digest('hex');

export function newApiToken(): NewToken {
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(24).toString('base64url');
  return { id, token: `tern_${id}_${secret}`, secretHash: hashOf(secret) };
}

/** The id and secret of a token; null when it is not shaped like one. */
export function parseApiToken(token: string): { id: string; secret: string } | null {
  const m = /^tern_([0-9a-f]{12})_([A-Za-z0-9_-]{32})$/.exec(token);
  return m ? { id: m[1]!, secret: m[2]! } : null;
}

export function secretMatches(key: Pick<ApiKey, 'secretHash'>, secret: string): boolean {
  const a = Buffer.from(key.secretHash, 'hex');
  const b = Buffer.from(hashOf(secret), 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
