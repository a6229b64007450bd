/**
 * The crypt(3) hashes of glibc and libxcrypt that Dovecot and Postfix hosts store:
 * SHA-256-crypt and SHA-512-crypt (`$5$`, `$6$`, Ulrich Drepper's specification,
 * https://www.akkadia.org/drepper/SHA-crypt.txt) and MD5-crypt (`$1$`, Poul-Henning
 * Kamp's). Written here from the specifications because no maintained pure-JS package
 * does them; the tests check them against the specification's vectors and against
 * Debian's `mkpasswd` and `doveadm pw`. Pure and synchronous: callers put them on a thread.
 */
import { createHash } from 'node:crypto';

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export const SHA_CRYPT_DEFAULT_ROUNDS = 5000;
const SHA_CRYPT_MIN_ROUNDS = 1000;
const SHA_CRYPT_MAX_ROUNDS = 999_999_999;

/** crypt's base-64: three bytes (first one most significant) as `n` characters, least significant six bits first. */
function b64From24(b2: number, b1: number, b0: number, n: number): string {
  let w = (b2 << 16) | (b1 << 8) | b0;
  let out = '';
  for (let i = 0; i < n; i++) {
    out += ITOA64[w & 0x3f];
    w >>>= 6;
  }
  return out;
}

/** `b` repeated (and cut) to `length` bytes. */
function repeatTo(b: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i += b.length) b.copy(out, i, 0, Math.min(b.length, length - i));
  return out;
}

/** The byte order of the encoded SHA-crypt digest, as the specification lists it. */
function shaCryptEncode(alg: 'sha256' | 'sha512', c: Buffer): string {
  let out = '';
  if (alg === 'sha512') {
    for (let i = 0; i < 21; i++) {
      const t = [c[i]!, c[i + 21]!, c[i + 42]!];
      const r = i % 3; // each group starts one further along: (0,21,42), (22,43,1), (44,2,23), …
      out += b64From24(t[r]!, t[(r + 1) % 3]!, t[(r + 2) % 3]!, 4);
    }
    return out + b64From24(0, 0, c[63]!, 2);
  }
  for (let i = 0; i < 10; i++) {
    const t = [c[i]!, c[i + 10]!, c[i + 20]!];
    const r = (3 - (i % 3)) % 3; // (0,10,20), (21,1,11), (12,22,2), …
    out += b64From24(t[r]!, t[(r + 1) % 3]!, t[(r + 2) % 3]!, 4);
  }
  return out + b64From24(0, c[31]!, c[30]!, 3);
}

export interface ShaCryptSetting {
  alg: 'sha256' | 'sha512';
  /** Rounds as the setting asks (clamped as glibc does); null when the setting names none (5000). */
  rounds: number | null;
  salt: string;
}

/** Reads `$5$[rounds=N$]salt[$hash]` or `$6$…`; null when it is not one. */
export function parseShaCryptSetting(setting: string): ShaCryptSetting | null {
  const m = /^\$([56])\$(?:rounds=(\d{1,10})\$)?([^$]*)/.exec(setting);
  if (!m) return null;
  const rounds = m[2] === undefined ? null : Math.min(SHA_CRYPT_MAX_ROUNDS, Math.max(SHA_CRYPT_MIN_ROUNDS, Number(m[2])));
  return { alg: m[1] === '5' ? 'sha256' : 'sha512', rounds, salt: m[3]!.slice(0, 16) };
}

/** SHA-256-crypt or SHA-512-crypt of `password`: the whole string, `$6$[rounds=N$]salt$hash`. */
export function shaCrypt(password: Buffer, s: ShaCryptSetting): string {
  const hash = (...parts: Buffer[]) => {
    const h = createHash(s.alg);
    for (const p of parts) h.update(p);
    return h.digest();
  };
  const p = password;
  const salt = Buffer.from(s.salt, 'utf8');
  const rounds = s.rounds ?? SHA_CRYPT_DEFAULT_ROUNDS;
  const b = hash(p, salt, p);
  const a = createHash(s.alg).update(p).update(salt);
  let i: number;
  for (i = p.length; i > b.length; i -= b.length) a.update(b);
  a.update(b.subarray(0, i));
  for (i = p.length; i > 0; i >>= 1) a.update(i & 1 ? b : p);
  let c = a.digest();
  const dp = createHash(s.alg);
  for (i = 0; i < p.length; i++) dp.update(p);
  const pSeq = repeatTo(dp.digest(), p.length);
  const ds = createHash(s.alg);
  for (i = 0; i < 16 + c[0]!; i++) ds.update(salt);
  const sSeq = repeatTo(ds.digest(), salt.length);
  for (let r = 0; r < rounds; r++) {
    const h = createHash(s.alg);
    h.update(r & 1 ? pSeq : c);
    if (r % 3) h.update(sSeq);
    if (r % 7) h.update(pSeq);
    h.update(r & 1 ? c : pSeq);
    c = h.digest();
  }
  const id = s.alg === 'sha256' ? '5' : '6';
  return `$${id}$${s.rounds === null ? '' : `rounds=${rounds}$`}${s.salt}$${shaCryptEncode(s.alg, c)}`;
}

/** MD5-crypt (`$1$salt$hash`, salt up to 8 characters) of `password`: the whole string. */
export function md5Crypt(password: Buffer, saltText: string): string {
  const magic = Buffer.from('$1$');
  const salt = Buffer.from(saltText.slice(0, 8), 'utf8');
  const p = password;
  const alt = createHash('md5').update(p).update(salt).update(p).digest();
  const ctx = createHash('md5').update(p).update(magic).update(salt);
  for (let n = p.length; n > 0; n -= 16) ctx.update(alt.subarray(0, Math.min(16, n)));
  for (let i = p.length; i > 0; i >>= 1) ctx.update(i & 1 ? Buffer.of(0) : p.subarray(0, 1));
  let f = ctx.digest();
  for (let i = 0; i < 1000; i++) {
    const h = createHash('md5');
    h.update(i & 1 ? p : f);
    if (i % 3) h.update(salt);
    if (i % 7) h.update(p);
    h.update(i & 1 ? f : p);
    f = h.digest();
  }
  const encoded =
    b64From24(f[0]!, f[6]!, f[12]!, 4) +
    b64From24(f[1]!, f[7]!, f[13]!, 4) +
    b64From24(f[2]!, f[8]!, f[14]!, 4) +
    b64From24(f[3]!, f[9]!, f[15]!, 4) +
    b64From24(f[4]!, f[10]!, f[5]!, 4) +
    b64From24(0, 0, f[11]!, 2);
  return `$1$${salt.toString('utf8')}$${encoded}`;
}

/** bcrypt's base-64 alphabet to the standard one, so Buffer can decode it. */
export function bcryptBase64Decode(text: string): Buffer {
  const bcryptAlphabet = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const standard = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  let out = '';
  for (const ch of text) out += standard[bcryptAlphabet.indexOf(ch)] ?? '';
  return Buffer.from(out, 'base64');
}
