/**
 * Legacy password hashes as a Dovecot host stores them: made at test time by Debian's
 * `doveadm pw` (dovecot-core) and `mkpasswd` (whois), plus fixed vectors from the
 * specifications; each must verify with its password and fail with a wrong one, through
 * the login path's verifyPassword (costly schemes on the thread) and directly.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { md5Crypt, parseShaCryptSetting, shaCrypt } from '../../src/auth/crypt.js';
import { legacyHashFromField, legacyHashInfo, verifyLegacyHash } from '../../src/auth/legacy-hashes.js';
import { hashPassword, needsRehash, verifyPassword } from '../../src/auth/password.js';

const doveadm = (scheme: string, password: string) => execFileSync('doveadm', ['pw', '-s', scheme, '-p', password], { encoding: 'utf8' }).trim();
/** mkpasswd reads the password from stdin, so any bytes pass. */
const mkpasswd = (args: string[], password: string) => execFileSync('mkpasswd', [...args, '--stdin'], { input: `${password}\n`, encoding: 'utf8' }).trim();

async function assertVerifies(stored: string, password: string, wrong = `${password}x`): Promise<void> {
  assert.equal(await verifyPassword(password, stored), true, `${stored} with its password`);
  assert.equal(await verifyPassword(wrong, stored), false, `${stored} with a wrong password`);
  assert.equal(await verifyLegacyHash(password, stored), true, `${stored} on this thread`);
  assert.equal(await verifyLegacyHash(wrong, stored), false, `${stored} on this thread, wrong password`);
}

describe('legacy password hashes', () => {
  it('SHA-crypt matches the vectors of its specification', () => {
    const vectors: Array<[string, string, string]> = [
      // Checked against glibc's crypt(3) as well.
      ['$5$saltstring', 'Hello world!', '$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5'],
      ['$6$saltstring', 'Hello world!', '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1'],
      ['$5$rounds=10000$saltstringsaltstring', 'Hello world!', '$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA'],
      [
        '$6$rounds=10000$saltstringsaltstring',
        'Hello world!',
        '$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.',
      ],
      ['$5$rounds=10$roundstoolow', 'the minimum number is still observed', '$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC'],
    ];
    for (const [setting, password, want] of vectors) assert.equal(shaCrypt(Buffer.from(password), parseShaCryptSetting(setting)!), want);
    assert.equal(md5Crypt(Buffer.from('password'), 'saltsalt'), '$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/'); // openssl passwd -1
  });

  it('verifies fixed vectors of bcrypt and the other schemes', async () => {
    await assertVerifies('{BLF-CRYPT}$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW', 'U*U'); // OpenBSD's test vector
    await assertVerifies('{CRYPT}$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/', 'password');
    await assertVerifies('{PLAIN-MD5}5f4dcc3b5aa765d61d8327deb882cf99', 'password');
    await assertVerifies('{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=', 'password');
    await assertVerifies('{SHA.HEX}5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8', 'password');
    await assertVerifies('{PLAIN}password', 'password');
  });

  it("verifies every scheme as Debian's doveadm pw writes it", async () => {
    const password = 'Korrekt Hest 9 ünï';
    const schemes = ['SHA512-CRYPT', 'SHA256-CRYPT', 'MD5-CRYPT', 'MD5', 'CRYPT', 'BLF-CRYPT', 'ARGON2ID', 'ARGON2I', 'SSHA512', 'SSHA256', 'SSHA', 'SMD5'];
    const more = ['SHA512', 'SHA256', 'SHA', 'PLAIN-MD5', 'LDAP-MD5', 'PLAIN', 'CLEAR', 'SHA512.HEX', 'SSHA.B64', 'SSHA512.HEX', 'PLAIN-MD5.B64', 'PLAIN.B64'];
    for (const scheme of [...schemes, ...more]) {
      const stored = doveadm(scheme, password);
      assert.match(stored, /^\{[A-Z0-9.-]+\}/);
      assert.equal(legacyHashInfo(stored).verifiable, true, `${scheme}: ${stored}`);
      await assertVerifies(stored, password);
    }
    // A suffix Dovecot writes in upper case may be read in any case.
    await assertVerifies(doveadm('SHA256.HEX', password).replace('.HEX}', '.hex}'), password);
    await assertVerifies(doveadm('SHA256.BASE64', password), password);
    const rounds = execFileSync('doveadm', ['pw', '-s', 'SHA512-CRYPT', '-r', '12000', '-p', password], { encoding: 'utf8' }).trim();
    assert.match(rounds, /^\{SHA512-CRYPT\}\$6\$rounds=12000\$/);
    await assertVerifies(rounds, password);
  });

  it("verifies mkpasswd's crypt(3) hashes, bare as /etc/shadow and passwd-files hold them", async () => {
    const password = 'an old password, longer than most: 0123456789';
    for (const args of [
      ['-m', 'sha-512'],
      ['-m', 'sha-256'],
      ['-m', 'sha-512', '-R', '20000'],
      ['-m', 'md5crypt'],
      ['-m', 'bcrypt'],
      ['-m', 'bcrypt-a'],
      ['-m', 'bcrypt', '-R', '6'],
    ]) {
      const field = mkpasswd(args, password);
      const stored = legacyHashFromField(field);
      assert.equal(stored, `{CRYPT}${field}`);
      await assertVerifies(stored, password);
    }
    // bcrypt reads at most 72 bytes of a password, as crypt(3) does.
    const long = 'y'.repeat(80);
    const stored = legacyHashFromField(mkpasswd(['-m', 'bcrypt'], long));
    assert.equal(await verifyPassword(long, stored), true);
    assert.equal(await verifyPassword('y'.repeat(72), stored), true);
    assert.equal(await verifyPassword('y'.repeat(71), stored), false);
  });

  it('reports what it cannot verify, and never matches it', async () => {
    const cases: Array<[string, RegExp]> = [
      [doveadm('CRAM-MD5', 'secret'), /\{CRAM-MD5\} is not supported/],
      [`{CRYPT}${mkpasswd(['-m', 'descrypt'], 'secret')}`, /DES crypt/],
      [`{CRYPT}${mkpasswd(['-m', 'yescrypt'], 'secret')}`, /yescrypt/],
      ['{CRYPT}!$6$abc$def', /locked/],
      ['{SHA512-CRYPT}$5$abc$def', /does not start as that scheme/],
      ['{SHA}not base64!', /not a sha1 digest/],
      ['{SHA512-CRYPT}$6$rounds=5000000$salt$x', /over Tern's limit/],
      ['{ARGON2ID}$argon2id$v=19$m=4194304,t=3,p=1$c2FsdHNhbHQ$aGFzaA', /over Tern's limits/],
    ];
    for (const [stored, reason] of cases) {
      const info = legacyHashInfo(stored);
      assert.equal(info.verifiable, false, stored);
      assert.match((info as { reason: string }).reason, reason);
      assert.equal(await verifyPassword('secret', stored), false);
    }
  });

  it('says which stored hashes to replace at login', async () => {
    assert.equal(needsRehash(await hashPassword('password123')), false);
    assert.equal(needsRehash('{SSHA}abc'), true);
    assert.equal(needsRehash('$scrypt$N=1024,r=8,p=1$abc$def'), true);
  });

  it('keeps the event loop free while a costly hash is checked', async () => {
    const stored = doveadm('ARGON2ID', 'password'); // m=64 MiB, t=3: about 200 ms of CPU
    let longestGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
    }, 5);
    const started = performance.now();
    try {
      assert.equal(await verifyPassword('password', stored), true);
    } finally {
      clearInterval(timer);
    }
    const took = performance.now() - started;
    assert.ok(longestGap < took / 2, `event loop stalled ${longestGap.toFixed(0)} ms of a ${took.toFixed(0)} ms verification`);
  });
});
