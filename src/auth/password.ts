/**
 * Password hashing with scrypt (Node's built-in, memory-hard; no native dependency).
 * Stored form: `$scrypt$N=<n>,r=<r>,p=<p>$<salt b64>$<hash b64>`; passwords never stored in clear.
 *
 * Accounts imported from a Dovecot host keep their `{SCHEME}…` hash until their first
 * login (auth/legacy-hashes.ts); `verifyPassword` checks those too, the costly ones
 * (crypt, bcrypt, argon2) on a thread of their own, and `needsRehash` tells the login path
 * to store a scrypt hash in their place.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { WorkerClient } from '../worker-client.js';
import { isLegacyHash, legacyHashInfo, verifyLegacyHash } from './legacy-hashes.js';

const PARAMS = { N: 16384, r: 8, p: 1 };
const KEY_LENGTH = 32;

function derive(password: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEY_LENGTH, { ...opts, maxmem: 64 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, PARAMS);
  return `$scrypt$N=${PARAMS.N},r=${PARAMS.r},p=${PARAMS.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  if (isLegacyHash(stored)) {
    const info = legacyHashInfo(stored);
    // An empty password never matches an imported hash (an empty {PLAIN} field means no password, not an empty one).
    if (!info.verifiable || password === '') return false;
    return info.expensive ? verifyOnThread(password, stored) : verifyLegacyHash(password, stored);
  }
  const m = /^\$scrypt\$N=(\d+),r=(\d+),p=(\d+)\$([^$]+)\$([^$]+)$/.exec(stored);
  if (!m) return false;
  const expected = Buffer.from(m[5]!, 'base64');
  const key = await derive(password, Buffer.from(m[4]!, 'base64'), { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** True when `stored` is not Tern's current scrypt hash: after a successful login, store hashPassword's in its place. */
export function needsRehash(stored: string): boolean {
  return !stored.startsWith(`$scrypt$N=${PARAMS.N},r=${PARAMS.r},p=${PARAMS.p}$`);
}

/**
 * The thread that verifies costly legacy hashes, started at the first one. It keeps the
 * process alive only while a verification is pending, so a command that never logs in
 * (or has finished) exits as usual. If it dies, pending verifications fail (a failed
 * login) and the next one starts a new thread.
 */
const legacyThread = new WorkerClient(
  new URL('./legacy-hash-worker.js', import.meta.url),
  undefined,
  (why) => new Error(`the password-check thread stopped: ${why}`),
  'while-busy',
);

async function verifyOnThread(password: string, stored: string): Promise<boolean> {
  try {
    return (await legacyThread.request({ password, stored })).ok === true;
  } catch {
    return false;
  }
}

/** A random password for generated accounts (the first-run admin). */
export function generatePassword(): string {
  return randomBytes(15).toString('base64url');
}
