/**
 * Password hashes of a Dovecot or Postfix host, kept by `tern import-users` so nobody has
 * to reset a password: Dovecot's `{SCHEME}data` form (what passwd-files and `doveadm pw`
 * hold). A login that verifies one replaces it with Tern's own scrypt hash
 * (auth/authenticate.ts), so these live only until each user's first login.
 *
 * Schemes: SHA512-CRYPT, SHA256-CRYPT, MD5-CRYPT (alias MD5), BLF-CRYPT, CRYPT (by its
 * `$N$` prefix), ARGON2ID, ARGON2I, SSHA512, SSHA256, SSHA, SMD5, SHA512, SHA256, SHA
 * (SHA1), PLAIN-MD5, LDAP-MD5, PLAIN/CLEAR/CLEARTEXT; the binary ones take Dovecot's
 * `.HEX`, `.B64` and `.BASE64` suffixes. Others (DES crypt, yescrypt, CRAM-MD5, DIGEST-MD5,
 * SCRAM-*, PBKDF2, OTP…) are reported as not verifiable and never match. Comparisons are
 * constant-time. Everything here is synchronous CPU work except bcrypt and argon2 (WASM,
 * through hash-wasm); `auth/password.ts` decides what runs on a thread.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { argon2i, argon2id, bcrypt } from 'hash-wasm';
import { bcryptBase64Decode, md5Crypt, parseShaCryptSetting, shaCrypt } from './crypt.js';

/** Limits that keep one stored hash from costing a login more than a few seconds. */
const MAX_SHA_CRYPT_ROUNDS = 1_000_000;
const MAX_BCRYPT_COST = 16;
const MAX_ARGON2_MEMORY_KIB = 512 * 1024;
const MAX_ARGON2_TIME = 64;

type Encoding = 'hex' | 'base64';

/** Digest schemes: the hash function, whether a salt follows the digest, and the encoding Dovecot writes by default. */
const DIGESTS: Record<string, { alg: string; salted: boolean; encoding: Encoding }> = {
  SHA: { alg: 'sha1', salted: false, encoding: 'base64' },
  SHA1: { alg: 'sha1', salted: false, encoding: 'base64' },
  SHA256: { alg: 'sha256', salted: false, encoding: 'base64' },
  SHA512: { alg: 'sha512', salted: false, encoding: 'base64' },
  'PLAIN-MD5': { alg: 'md5', salted: false, encoding: 'hex' },
  'LDAP-MD5': { alg: 'md5', salted: false, encoding: 'base64' },
  SSHA: { alg: 'sha1', salted: true, encoding: 'base64' },
  SSHA256: { alg: 'sha256', salted: true, encoding: 'base64' },
  SSHA512: { alg: 'sha512', salted: true, encoding: 'base64' },
  SMD5: { alg: 'md5', salted: true, encoding: 'base64' },
};
const DIGEST_LENGTH: Record<string, number> = { md5: 16, sha1: 20, sha256: 32, sha512: 64 };
const CRYPT_SCHEMES = new Set(['CRYPT', 'MD5-CRYPT', 'MD5', 'SHA256-CRYPT', 'SHA512-CRYPT', 'BLF-CRYPT', 'ARGON2ID', 'ARGON2I']);
const PLAIN_SCHEMES = new Set(['PLAIN', 'CLEAR', 'CLEARTEXT']);

/** What a stored legacy hash is: its scheme, and whether Tern can verify it (if not, why). */
export type LegacyHashInfo = { scheme: string; verifiable: true; expensive: boolean } | { scheme: string; verifiable: false; reason: string };

interface Parsed {
  scheme: string;
  encoding: Encoding | null;
  data: string;
}

/** Splits `{SCHEME.ENC}data`; null when `stored` does not start with a `{…}` scheme. */
function split(stored: string): Parsed | null {
  const m = /^\{([A-Za-z0-9_-]+)(?:\.(hex|b64|base64))?\}([\s\S]*)$/i.exec(stored);
  if (!m) return null;
  const enc = m[2]?.toLowerCase();
  return { scheme: m[1]!.toUpperCase(), encoding: enc === undefined ? null : enc === 'hex' ? 'hex' : 'base64', data: m[3]! };
}

/** True for a stored hash in Dovecot's `{SCHEME}` form (Tern's own start with `$scrypt$`). */
export function isLegacyHash(stored: string): boolean {
  return stored.startsWith('{');
}

/** The password field of a passwd-file as Tern stores it: `{SCHEME}` as given (upper-cased), a bare crypt string as `{CRYPT}`. */
export function legacyHashFromField(field: string): string {
  const p = split(field);
  if (p) return field.replace(/^\{[^}]*\}/, (s) => s.toUpperCase().replace(/\.(HEX|B64|BASE64)\}$/, (e) => e.toLowerCase()));
  return `{CRYPT}${field}`;
}

function cryptKind(data: string): LegacyHashInfo {
  const scheme = 'CRYPT';
  if (data === '' || data.startsWith('!') || data.startsWith('*')) return { scheme, verifiable: false, reason: 'no password (locked or empty)' };
  if (data.startsWith('$1$')) return { scheme, verifiable: true, expensive: true };
  if (data.startsWith('$5$') || data.startsWith('$6$')) {
    const s = parseShaCryptSetting(data);
    if (s && s.rounds !== null && s.rounds > MAX_SHA_CRYPT_ROUNDS)
      return { scheme, verifiable: false, reason: `rounds=${s.rounds} is over Tern's limit of ${MAX_SHA_CRYPT_ROUNDS}` };
    return { scheme, verifiable: true, expensive: true };
  }
  const bc = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/.exec(data);
  if (bc) {
    if (Number(bc[1]) > MAX_BCRYPT_COST) return { scheme, verifiable: false, reason: `bcrypt cost ${bc[1]} is over Tern's limit of ${MAX_BCRYPT_COST}` };
    return { scheme, verifiable: true, expensive: true };
  }
  const ar = /^\$argon2(id|i)\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/.exec(data);
  if (ar) {
    if (Number(ar[2]) > MAX_ARGON2_MEMORY_KIB || Number(ar[3]) > MAX_ARGON2_TIME || Number(ar[4]) > 16)
      return { scheme, verifiable: false, reason: `argon2 parameters m=${ar[2]},t=${ar[3]},p=${ar[4]} are over Tern's limits` };
    return { scheme, verifiable: true, expensive: true };
  }
  if (data.startsWith('$y$') || data.startsWith('$7$')) return { scheme, verifiable: false, reason: 'yescrypt and scrypt crypt(3) hashes are not supported' };
  if (/^[./A-Za-z0-9]{13}$/.test(data) || data.startsWith('_')) return { scheme, verifiable: false, reason: 'DES crypt(3) hashes are not supported' };
  return { scheme, verifiable: false, reason: 'not a crypt(3) hash Tern knows ($1$, $5$, $6$, $2y$/$2b$/$2a$, $argon2id$, $argon2i$)' };
}

/** Which scheme a stored hash uses and whether Tern can verify it; for import reports and the login path. */
export function legacyHashInfo(stored: string): LegacyHashInfo {
  const p = split(stored);
  if (!p) return { scheme: '', verifiable: false, reason: 'not in the {SCHEME}hash form' };
  const { scheme, encoding, data } = p;
  if (CRYPT_SCHEMES.has(scheme)) {
    if (encoding) return { scheme, verifiable: false, reason: `{${scheme}} takes no encoding suffix` };
    const kind = cryptKind(data);
    const expectedPrefix: Record<string, RegExp> = {
      'MD5-CRYPT': /^\$1\$/,
      MD5: /^\$1\$/,
      'SHA256-CRYPT': /^\$5\$/,
      'SHA512-CRYPT': /^\$6\$/,
      'BLF-CRYPT': /^\$2[aby]\$/,
      ARGON2ID: /^\$argon2id\$/,
      ARGON2I: /^\$argon2i\$/,
    };
    const want = expectedPrefix[scheme];
    if (want && !want.test(data)) return { scheme, verifiable: false, reason: `{${scheme}} hash does not start as that scheme's do` };
    return { ...kind, scheme };
  }
  if (PLAIN_SCHEMES.has(scheme)) return { scheme, verifiable: true, expensive: false };
  const digest = DIGESTS[scheme];
  if (digest) {
    const raw = decodeDigest(scheme, encoding, data);
    const len = DIGEST_LENGTH[digest.alg]!;
    if (!raw || (digest.salted ? raw.length <= len : raw.length !== len))
      return { scheme, verifiable: false, reason: `{${scheme}} data is not a ${digest.salted ? 'salted ' : ''}${digest.alg} digest` };
    return { scheme, verifiable: true, expensive: false };
  }
  return { scheme, verifiable: false, reason: `scheme {${scheme}} is not supported` };
}

/**
 * The binary of a digest scheme's data. Without a suffix Dovecot guesses between hex and
 * base64 by length for unsalted digests (a hex string is twice the digest's length), and
 * uses the scheme's default encoding for salted ones.
 */
function decodeDigest(scheme: string, encoding: Encoding | null, data: string): Buffer | null {
  const digest = DIGESTS[scheme]!;
  const len = DIGEST_LENGTH[digest.alg]!;
  let enc = encoding ?? digest.encoding;
  if (encoding === null && !digest.salted) enc = data.length === len * 2 ? 'hex' : 'base64';
  if (enc === 'hex') return /^(?:[0-9a-fA-F]{2})+$/.test(data) ? Buffer.from(data, 'hex') : null;
  return /^[A-Za-z0-9+/]+={0,2}$/.test(data) ? Buffer.from(data, 'base64') : null;
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function sameText(a: string, b: string): boolean {
  return sameBytes(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

async function verifyCrypt(password: Buffer, data: string): Promise<boolean> {
  if (data.startsWith('$1$')) {
    const salt = data.slice(3).split('$')[0]!;
    return sameText(md5Crypt(password, salt), data);
  }
  const sha = parseShaCryptSetting(data);
  if (sha) return sameText(shaCrypt(password, sha), data);
  if (/^\$2[aby]\$/.test(data)) {
    // bcrypt uses at most 72 bytes of the password; hash-wasm refuses longer ones and empty ones.
    const pw = password.subarray(0, 72);
    if (pw.length === 0) return false;
    const salt = bcryptBase64Decode(data.slice(7, 29));
    const out = await bcrypt({ password: pw, salt, costFactor: Number(data.slice(4, 6)), outputType: 'encoded' });
    return sameText(out.slice(29), data.slice(29));
  }
  const ar = /^\$argon2(id|i)\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/.exec(data);
  if (ar) {
    const expected = Buffer.from(ar[6]!, 'base64');
    const options = {
      password,
      salt: Buffer.from(ar[5]!, 'base64'),
      memorySize: Number(ar[2]),
      iterations: Number(ar[3]),
      parallelism: Number(ar[4]),
      hashLength: expected.length,
      outputType: 'binary' as const,
    };
    const out = ar[1] === 'id' ? await argon2id(options) : await argon2i(options);
    return sameBytes(Buffer.from(out), expected);
  }
  return false;
}

/**
 * Whether `password` matches a stored `{SCHEME}data` hash; false for schemes Tern cannot
 * verify. Runs on the calling thread: use auth/password.ts's verifyPassword from the login path.
 */
export async function verifyLegacyHash(password: string, stored: string): Promise<boolean> {
  const info = legacyHashInfo(stored);
  if (!info.verifiable) return false;
  const { scheme, encoding, data } = split(stored)!;
  const pw = Buffer.from(password, 'utf8');
  if (CRYPT_SCHEMES.has(scheme)) return verifyCrypt(pw, data);
  if (PLAIN_SCHEMES.has(scheme)) {
    const clear = encoding === 'hex' ? Buffer.from(data, 'hex') : encoding === 'base64' ? Buffer.from(data, 'base64') : Buffer.from(data, 'utf8');
    // Hash both sides so the comparison takes the same time whatever the lengths.
    return sameBytes(createHash('sha256').update(pw).digest(), createHash('sha256').update(clear).digest());
  }
  const digest = DIGESTS[scheme]!;
  const raw = decodeDigest(scheme, encoding, data)!;
  const len = DIGEST_LENGTH[digest.alg]!;
  const h = createHash(digest.alg).update(pw);
  if (digest.salted) h.update(raw.subarray(len));
  return sameBytes(h.digest(), raw.subarray(0, len));
}
