/**
 * The directory part of the Store contract: domains, accounts, aliases, settings.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ConflictError, NotFoundError } from '../../../src/errors.js';
import type { Store } from '../../../src/store/store.js';
import { delivery, type Fixture } from './support.js';

export function directoryContract(fx: Fixture): void {
  const { addAccount, readBlob, assertRefcounts } = fx;
  let store: Store;
  describe('directory', () => {
    before(() => {
      store = fx.store;
    });

    describe('domains', () => {
      it('adds, lists and recognises domains', async () => {
        const d = await store.directory.addDomain('b-domains.test');
        assert.equal(d.name, 'b-domains.test');
        assert.ok(d.createdAt instanceof Date);
        await store.directory.addDomain('a-domains.test');
        const domains = await store.directory.listDomains();
        const names = domains.map((x) => x.name);
        assert.ok(names.indexOf('a-domains.test') < names.indexOf('b-domains.test'), 'listed in name order');
        assert.ok(domains.every((x) => x.createdAt instanceof Date));
        assert.equal(await store.directory.isLocalDomain('a-domains.test'), true);
        assert.equal(await store.directory.isLocalDomain('nowhere.test'), false);
      });

      it('refuses a duplicate domain with ConflictError', async () => {
        await assert.rejects(
          store.directory.addDomain('a-domains.test'),
          (err) => err instanceof ConflictError && err.message === 'domain a-domains.test already exists',
        );
      });

      it('refuses to delete a domain that has accounts or aliases', async () => {
        await store.directory.addDomain('busy-domains.test');
        await addAccount('u@busy-domains.test');
        await assert.rejects(store.directory.deleteDomain('busy-domains.test'), ConflictError);
        await store.directory.deleteAccount('u@busy-domains.test');
        await store.directory.addAlias('x@busy-domains.test', 'y@elsewhere.test');
        await assert.rejects(store.directory.deleteDomain('busy-domains.test'), /still has 0 account\(s\) and 1 alias\(es\)/);
        await store.directory.deleteAlias('x@busy-domains.test');
        await store.directory.deleteDomain('busy-domains.test');
        assert.equal(await store.directory.isLocalDomain('busy-domains.test'), false);
      });

      it('deletes a domain, and NotFoundError for a missing one', async () => {
        await store.directory.deleteDomain('b-domains.test');
        assert.ok(!(await store.directory.listDomains()).some((x) => x.name === 'b-domains.test'));
        await assert.rejects(
          store.directory.deleteDomain('b-domains.test'),
          (err) => err instanceof NotFoundError && /domain b-domains.test does not exist/.test(err.message),
        );
      });
    });

    describe('accounts', () => {
      before(async () => {
        await store.directory.addDomain('accounts.test');
      });

      it('adds an account with nothing used yet', async () => {
        const a = await store.directory.addAccount({ address: 'alice@accounts.test', passwordHash: 'h1', isAdmin: true, quotaBytes: 1_000_000 });
        assert.equal(typeof a.id, 'number');
        assert.equal(a.address, 'alice@accounts.test');
        assert.equal(a.isAdmin, true);
        assert.equal(a.quotaBytes, 1_000_000);
        assert.equal(a.usedBytes, 0);
        assert.ok(a.createdAt instanceof Date);
        assert.deepEqual(await store.directory.getAccount('alice@accounts.test'), a);
      });

      it('defaults isAdmin to false and quota to unlimited', async () => {
        const b = await store.directory.addAccount({ address: 'bob@accounts.test', passwordHash: 'h' });
        assert.equal(b.isAdmin, false);
        assert.equal(b.quotaBytes, null);
        assert.equal(b.usedBytes, 0);
      });

      it('lists accounts, all or by domain', async () => {
        await store.directory.addDomain('other-accounts.test');
        await addAccount('carol@other-accounts.test');
        const all = (await store.directory.listAccounts()).map((a) => a.address);
        assert.ok(['alice@accounts.test', 'bob@accounts.test', 'carol@other-accounts.test'].every((x) => all.includes(x)));
        assert.deepEqual(
          (await store.directory.listAccounts('accounts.test')).map((a) => a.address),
          ['alice@accounts.test', 'bob@accounts.test'],
        );
      });

      it('refuses a duplicate account and an unknown domain', async () => {
        await assert.rejects(
          addAccount('alice@accounts.test'),
          (err) => err instanceof ConflictError && err.message === 'account alice@accounts.test already exists',
        );
        await assert.rejects(addAccount('x@unknown-accounts.test'), NotFoundError);
        assert.equal(await store.directory.getAccount('nobody@accounts.test'), null);
        await assert.rejects(store.mailboxes.messagesOf('nobody@accounts.test'), NotFoundError);
      });

      it('gets and sets password hashes', async () => {
        assert.equal(await store.directory.getPasswordHash('alice@accounts.test'), 'h1');
        await store.directory.setPasswordHash('alice@accounts.test', 'h2');
        assert.equal(await store.directory.getPasswordHash('alice@accounts.test'), 'h2');
        assert.equal(await store.directory.getPasswordHash('nobody@accounts.test'), null);
        await assert.rejects(store.directory.setPasswordHash('nobody@accounts.test', 'h'), NotFoundError);
      });

      it('sets and clears a quota', async () => {
        await store.directory.setQuota('bob@accounts.test', 5000);
        assert.equal((await store.directory.getAccount('bob@accounts.test'))!.quotaBytes, 5000);
        await store.directory.setQuota('bob@accounts.test', null);
        assert.equal((await store.directory.getAccount('bob@accounts.test'))!.quotaBytes, null);
        await assert.rejects(store.directory.setQuota('nobody@accounts.test', 1), NotFoundError);
      });

      it('makes an account a site administrator and back', async () => {
        const boss = await addAccount('boss@accounts.test');
        assert.equal(boss.isAdmin, false);
        await store.directory.setAdmin(boss.address, true);
        assert.equal((await store.directory.getAccount(boss.address))!.isAdmin, true);
        await store.directory.setAdmin(boss.address, false);
        assert.equal((await store.directory.getAccount(boss.address))!.isAdmin, false);
        await assert.rejects(store.directory.setAdmin('nobody@accounts.test', true), NotFoundError);
      });

      it('deletes an account with its mailboxes, messages and unreferenced blobs only', async () => {
        const doomed = await addAccount('doomed@accounts.test');
        const keeper = await addAccount('keeper@accounts.test');
        const own = delivery([doomed.id]);
        const shared = delivery([doomed.id, keeper.id]);
        await store.mailboxes.deliver(own);
        await store.mailboxes.deliver(shared);
        await store.mailboxes.subscribe(doomed.id, 'Gone');
        const before = await store.stats();
        await store.directory.deleteAccount('doomed@accounts.test');
        assert.equal(await store.directory.getAccount('doomed@accounts.test'), null);
        assert.deepEqual(await store.mailboxes.list(doomed.id), []);
        assert.deepEqual(await store.mailboxes.subscriptions(doomed.id), []);
        assert.equal(await readBlob(own.blob.hash), null);
        assert.deepEqual(await readBlob(shared.blob.hash), (shared.blob as { data: Buffer }).data);
        assert.deepEqual(
          (await store.mailboxes.messagesOf('keeper@accounts.test')).map((m) => m.hash),
          [shared.blob.hash],
        );
        const afterStats = await store.stats();
        assert.equal(afterStats.messages, before.messages - 2);
        assert.equal(afterStats.blobs, before.blobs - 1);
        await assertRefcounts([own.blob.hash, shared.blob.hash]);
        await assert.rejects(
          store.directory.deleteAccount('doomed@accounts.test'),
          (err) => err instanceof NotFoundError && err.message === 'account doomed@accounts.test does not exist',
        );
      });
    });

    describe('aliases', () => {
      before(async () => {
        await store.directory.addDomain('aliases.test');
      });

      it('looks an address up in one call: local domain, alias targets, account', async () => {
        await store.directory.addAlias('list@aliases.test', 'z@elsewhere.test');
        await store.directory.addAlias('list@aliases.test', 'y@elsewhere.test');
        const owner = await store.directory.addAccount({ address: 'owner@aliases.test', passwordHash: 'h' });
        assert.deepEqual(await store.directory.lookup('list@aliases.test'), {
          localDomain: true,
          aliasTargets: ['y@elsewhere.test', 'z@elsewhere.test'],
          account: null,
        });
        assert.deepEqual(await store.directory.lookup('owner@aliases.test'), { localDomain: true, aliasTargets: [], account: owner });
        assert.deepEqual(await store.directory.lookup('nobody@aliases.test'), { localDomain: true, aliasTargets: [], account: null });
        assert.deepEqual(await store.directory.lookup('x@not-local-aliases.test'), { localDomain: false, aliasTargets: [], account: null });
        await store.directory.deleteAlias('list@aliases.test');
        await store.directory.deleteAccount('owner@aliases.test');
      });

      it('adds aliases, catch-all included, and resolves their targets', async () => {
        await store.directory.addAlias('team@aliases.test', 'b@elsewhere.test');
        await store.directory.addAlias('team@aliases.test', 'a@elsewhere.test');
        await store.directory.addAlias('@aliases.test', 'catch@elsewhere.test');
        assert.deepEqual(await store.directory.aliasTargets('team@aliases.test'), ['a@elsewhere.test', 'b@elsewhere.test']);
        assert.deepEqual(await store.directory.aliasTargets('@aliases.test'), ['catch@elsewhere.test']);
        assert.deepEqual(await store.directory.aliasTargets('nobody@aliases.test'), []);
        const mine = (await store.directory.listAliases()).filter((r) => r.address.endsWith('aliases.test'));
        assert.deepEqual(mine, [
          { address: '@aliases.test', target: 'catch@elsewhere.test' },
          { address: 'team@aliases.test', target: 'a@elsewhere.test' },
          { address: 'team@aliases.test', target: 'b@elsewhere.test' },
        ]);
      });

      it('refuses duplicates and unknown domains', async () => {
        await assert.rejects(
          store.directory.addAlias('team@aliases.test', 'a@elsewhere.test'),
          (err) => err instanceof ConflictError && err.message === 'alias team@aliases.test -> a@elsewhere.test already exists',
        );
        await assert.rejects(store.directory.addAlias('x@unknown-aliases.test', 'a@elsewhere.test'), NotFoundError);
        await assert.rejects(store.directory.addAlias('@unknown-aliases.test', 'a@elsewhere.test'), NotFoundError);
      });

      it('deletes one target, then all targets', async () => {
        await store.directory.deleteAlias('team@aliases.test', 'a@elsewhere.test');
        assert.deepEqual(await store.directory.aliasTargets('team@aliases.test'), ['b@elsewhere.test']);
        await assert.rejects(
          store.directory.deleteAlias('team@aliases.test', 'a@elsewhere.test'),
          (err) => err instanceof NotFoundError && err.message === 'alias team@aliases.test -> a@elsewhere.test does not exist',
        );
        await store.directory.addAlias('team@aliases.test', 'c@elsewhere.test');
        await store.directory.deleteAlias('team@aliases.test');
        assert.deepEqual(await store.directory.aliasTargets('team@aliases.test'), []);
        await assert.rejects(
          store.directory.deleteAlias('team@aliases.test'),
          (err) => err instanceof NotFoundError && err.message === 'alias team@aliases.test does not exist',
        );
        await store.directory.deleteAlias('@aliases.test');
        assert.deepEqual(await store.directory.aliasTargets('@aliases.test'), []);
      });
    });

    describe('API keys', () => {
      it('stores a key, finds it by id, lists by domain, revokes it (kept, marked)', async () => {
        await store.directory.addDomain('keys.test');
        const site = await store.directory.addApiKey({
          id: 'k1site',
          secretHash: 'h1',
          scopes: ['send', 'admin'],
          domain: null,
          description: 'ops',
          ratePerMinute: null,
        });
        assert.deepEqual([site.scopes, site.domain, site.revokedAt, site.ratePerMinute], [['send', 'admin'], null, null, null]);
        await store.directory.addApiKey({ id: 'k2dom', secretHash: 'h2', scopes: ['read'], domain: 'keys.test', description: '', ratePerMinute: 60 });
        assert.equal((await store.directory.apiKey('k2dom'))!.ratePerMinute, 60);
        assert.equal(await store.directory.apiKey('nope'), null);
        assert.deepEqual(
          (await store.directory.listApiKeys('keys.test')).map((k) => k.id),
          ['k2dom'],
        );
        assert.ok((await store.directory.listApiKeys()).some((k) => k.id === 'k1site'));
        await store.directory.revokeApiKey('k2dom');
        await store.directory.revokeApiKey('k2dom'); // twice: still revoked, no error
        assert.ok((await store.directory.apiKey('k2dom'))!.revokedAt instanceof Date);
        await assert.rejects(store.directory.revokeApiKey('nope'), NotFoundError);
        await assert.rejects(store.directory.addApiKey({ ...site, id: 'k1site' }), ConflictError);
        await assert.rejects(
          store.directory.addApiKey({ id: 'k3', secretHash: 'h', scopes: ['send'], domain: 'unknown.test', description: '', ratePerMinute: null }),
          NotFoundError,
        );
        // Deleting the domain revokes its keys.
        await store.directory.addDomain('gone-keys.test');
        await store.directory.addApiKey({ id: 'k4gone', secretHash: 'h', scopes: ['send'], domain: 'gone-keys.test', description: '', ratePerMinute: null });
        await store.directory.deleteDomain('gone-keys.test');
        assert.ok((await store.directory.apiKey('k4gone'))!.revokedAt instanceof Date);
      });
    });

    describe('suppressions', () => {
      it('adds once, lists in address order with a cursor, tells which are suppressed, deletes', async () => {
        const added = await store.directory.addSuppressions([
          { address: 'b@sup.test', source: 'bounce', reason: '550 5.1.1 gone' },
          { address: 'a@sup.test', source: 'manual', reason: '' },
        ]);
        assert.equal(added, 2);
        assert.equal(await store.directory.addSuppressions([{ address: 'a@sup.test', source: 'import', reason: 'again' }]), 0);
        const page = await store.directory.listSuppressions({ after: 'a@sup.sz', limit: 10 });
        assert.ok(page.some((x) => x.address === 'b@sup.test' && x.source === 'bounce' && x.reason === '550 5.1.1 gone' && x.createdAt instanceof Date));
        assert.equal((await store.directory.listSuppressions({ after: 'a@sup.test', limit: 1 }))[0]!.address, 'b@sup.test');
        assert.deepEqual([...(await store.directory.suppressed(['a@sup.test', 'c@sup.test', 'b@sup.test']))].sort(), ['a@sup.test', 'b@sup.test']);
        assert.equal((await store.directory.suppressed([])).size, 0);
        await store.directory.deleteSuppression('a@sup.test');
        await assert.rejects(store.directory.deleteSuppression('a@sup.test'), NotFoundError);
        assert.deepEqual([...(await store.directory.suppressed(['a@sup.test']))], []);
      });
    });

    describe('idempotency records', () => {
      it('one claimant per key, the answer kept, a failed claim dropped, old records forgotten', async () => {
        const old = new Date(Date.now() - 60_000);
        const claims = await Promise.all(Array.from({ length: 10 }, () => store.directory.claimIdempotency('k', 'order-1', 'h1', old)));
        assert.equal(claims.filter((c) => c.state === 'new').length, 1, 'one claimant');
        assert.ok(claims.filter((c) => c.state !== 'new').every((c) => c.state === 'pending' && c.requestHash === 'h1'));
        await store.directory.finishIdempotency('k', 'order-1', 202, '{"id":"X"}');
        assert.deepEqual(await store.directory.claimIdempotency('k', 'order-1', 'h2', old), {
          state: 'done',
          requestHash: 'h1',
          status: 202,
          response: '{"id":"X"}',
        });
        assert.deepEqual(await store.directory.claimIdempotency('other-key', 'order-1', 'h1', old), { state: 'new' }, 'per API key');
        assert.deepEqual(await store.directory.claimIdempotency('k', 'order-2', 'h', old), { state: 'new' });
        await store.directory.dropIdempotency('k', 'order-2');
        assert.deepEqual(await store.directory.claimIdempotency('k', 'order-2', 'h', old), { state: 'new' }, 'a dropped claim can be made again');
        // Past its lifetime a record is forgotten: claimed anew.
        assert.deepEqual(await store.directory.claimIdempotency('k', 'order-1', 'h3', new Date(Date.now() + 1000)), { state: 'new' });
        assert.ok((await store.directory.purgeIdempotency(new Date(Date.now() + 1000))) >= 3);
      });
    });

    describe('settings', () => {
      it('gets, sets and overwrites settings', async () => {
        assert.equal(await store.directory.getSetting('contract.key'), null);
        await store.directory.setSetting('contract.key', 'one');
        assert.equal(await store.directory.getSetting('contract.key'), 'one');
        await store.directory.setSetting('contract.key', 'two');
        assert.equal(await store.directory.getSetting('contract.key'), 'two');
        await store.directory.setSetting('contract.empty', '');
        assert.equal(await store.directory.getSetting('contract.empty'), '');
      });

      it('lists settings by key prefix (no pattern characters) and deletes one', async () => {
        for (const [k, v] of [
          ['list:b.test', '2'],
          ['list:a.test', '1'],
          ['list_other', 'x'],
          ['listless', 'y'],
        ]) {
          await store.directory.setSetting(k!, v!);
        }
        assert.deepEqual(await store.directory.listSettings('list:'), [
          { key: 'list:a.test', value: '1' },
          { key: 'list:b.test', value: '2' },
        ]);
        assert.deepEqual(await store.directory.listSettings('list_'), [{ key: 'list_other', value: 'x' }]);
        await store.directory.deleteSetting('list:a.test');
        assert.equal(await store.directory.getSetting('list:a.test'), null);
        await assert.rejects(store.directory.deleteSetting('list:a.test'), NotFoundError);
      });

      it('initSetting keeps the first value and returns the value stored', async () => {
        assert.equal(await store.directory.initSetting('contract.init', 'first'), 'first');
        assert.equal(await store.directory.initSetting('contract.init', 'second'), 'first');
        assert.equal(await store.directory.getSetting('contract.init'), 'first');
        await store.directory.setSetting('contract.key', 'set');
        assert.equal(await store.directory.initSetting('contract.key', 'init'), 'set');
      });

      it('addToSetting counts from 0 and loses no step under concurrent calls', async () => {
        assert.equal(await store.directory.addToSetting('contract.count', 2), 2);
        const values = await Promise.all(Array.from({ length: 20 }, () => store.directory.addToSetting('contract.count', 1)));
        assert.deepEqual(
          [...values].sort((a, b) => a - b),
          Array.from({ length: 20 }, (_, i) => i + 3),
        );
        assert.equal(await store.directory.getSetting('contract.count'), '22');
      });

      it('concurrent initSetting calls agree on one value', async () => {
        const values = await Promise.all(Array.from({ length: 20 }, (_, i) => store.directory.initSetting('contract.race', `node-${i}`)));
        assert.equal(new Set(values).size, 1, `all callers see one value, got ${[...new Set(values)].join(', ')}`);
        assert.equal(await store.directory.getSetting('contract.race'), values[0]);
      });
    });
  });
}
