/**
 * The login path with imported hashes, on a directory in memory: a legacy hash that
 * matches is replaced by scrypt in one write, a wrong password writes nothing, a hash Tern
 * cannot check never logs in, and a failed upgrade does not fail the login.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { createAuthenticator } from '../../src/auth/authenticate.js';
import { hashPassword } from '../../src/auth/password.js';
import type { Account, DirectoryStore } from '../../src/store/store.js';

function directory(hashes: Record<string, string>, opts: { failWrites?: boolean } = {}) {
  const writes: Array<[string, string]> = [];
  const account = (address: string): Account => ({ id: 1, address, isAdmin: false, quotaBytes: null, usedBytes: 0, createdAt: new Date(0) });
  const dir = {
    getPasswordHash: (address: string) => Promise.resolve(hashes[address] ?? null),
    getAccount: (address: string) => Promise.resolve(hashes[address] ? account(address) : null),
    setPasswordHash: (address: string, hash: string) => {
      if (opts.failWrites) return Promise.reject(new Error('store unavailable'));
      writes.push([address, hash]);
      hashes[address] = hash;
      return Promise.resolve();
    },
  };
  return { dir: dir as unknown as DirectoryStore, writes };
}

const context = { protocol: 'imap', remoteAddress: '127.0.0.1' };
const log = pino({ level: 'silent' });

describe('logins with imported hashes', () => {
  it('replaces a legacy hash that matched with scrypt, once', async () => {
    const { dir, writes } = directory({
      'ann@example.test': '{CRYPT}$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/',
      'ben@example.test': '{SSHA}nope',
      'cid@example.test': await hashPassword('password'),
    });
    const auth = createAuthenticator(dir, log);
    assert.equal(await auth.login('ann@example.test', 'wrong password', context), null);
    assert.deepEqual(writes, []);
    assert.equal((await auth.login('ANN@example.test', 'password', context))?.address, 'ann@example.test');
    assert.equal(writes.length, 1);
    assert.equal(writes[0]![0], 'ann@example.test');
    assert.match(writes[0]![1], /^\$scrypt\$N=16384,r=8,p=1\$/);
    assert.ok(await auth.login('ann@example.test', 'password', context), 'and again, against scrypt');
    assert.equal(writes.length, 1, 'a scrypt hash is not rewritten');
    assert.equal(await auth.login('ben@example.test', 'nope', context), null, 'an unusable hash never logs in');
    assert.ok(await auth.login('cid@example.test', 'password', context));
    assert.equal(writes.length, 1);
  });

  it('lets the login stand when the upgrade cannot be written', async () => {
    const { dir } = directory({ 'ann@example.test': '{PLAIN}password' }, { failWrites: true });
    const auth = createAuthenticator(dir, log);
    assert.equal((await auth.login('ann@example.test', 'password', context))?.address, 'ann@example.test');
  });
});
