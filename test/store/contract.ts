/**
 * The Store contract suite: every backend runs exactly these tests (sqlite.test.ts,
 * postgres.test.ts). One fresh store per run; each group works in its own domain so the
 * groups do not see each other's data.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ConflictError, NotFoundError, UserError } from '../../src/errors.js';
import { DEFAULT_MAILBOXES, type DeliveredEntry, type NewDelivery, type Store } from '../../src/store/store.js';

export interface ContractOptions {
  /** Skip the whole suite with this reason (e.g. PostgreSQL unreachable and TERN_TEST_SKIP_PG=1). */
  skip?: string;
  /** Runs after the store is closed (e.g. drop the test database). */
  cleanup?: () => Promise<void>;
}

let sequence = 0;

function delivery(accountIds: number[], body = `Subject: test ${++sequence}\r\n\r\nbody ${sequence} ${Math.random()}\r\n`): NewDelivery {
  const blob = Buffer.from(body);
  return {
    ternId: `tern-${sequence}-${Math.random().toString(36).slice(2)}`,
    blob,
    hash: createHash('sha256').update(blob).digest('hex'),
    envelopeFrom: 'sender@example.org',
    accountIds,
    internalDate: new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)),
  };
}

export function storeContract(name: string, open: () => Promise<Store>, options: ContractOptions = {}): void {
  describe(`Store contract: ${name}`, { skip: options.skip }, () => {
    let store: Store;
    const account = (address: string) => store.addAccount({ address, passwordHash: 'hash' });

    before(async () => {
      store = await open();
    });
    after(async () => {
      await store?.close();
      await options.cleanup?.();
    });

    it('reports its kind', () => {
      assert.equal(store.kind, name);
    });

    describe('domains', () => {
      it('adds, lists and recognises domains', async () => {
        const d = await store.addDomain('b-domains.test');
        assert.equal(d.name, 'b-domains.test');
        assert.ok(d.createdAt instanceof Date);
        await store.addDomain('a-domains.test');
        const names = (await store.listDomains()).map((x) => x.name);
        assert.ok(names.indexOf('a-domains.test') < names.indexOf('b-domains.test'), 'listed in name order');
        assert.ok((await store.listDomains()).every((x) => x.createdAt instanceof Date));
        assert.equal(await store.isLocalDomain('a-domains.test'), true);
        assert.equal(await store.isLocalDomain('nowhere.test'), false);
      });

      it('refuses a duplicate domain with ConflictError', async () => {
        await assert.rejects(store.addDomain('a-domains.test'), (err) => err instanceof ConflictError && err.message === 'domain a-domains.test already exists');
      });

      it('refuses to delete a domain that has accounts or aliases', async () => {
        await store.addDomain('busy-domains.test');
        await account('u@busy-domains.test');
        await assert.rejects(store.deleteDomain('busy-domains.test'), ConflictError);
        await store.deleteAccount('u@busy-domains.test');
        await store.addAlias('x@busy-domains.test', 'y@elsewhere.test');
        await assert.rejects(store.deleteDomain('busy-domains.test'), /still has 0 account\(s\) and 1 alias\(es\)/);
        await store.deleteAlias('x@busy-domains.test');
        await store.deleteDomain('busy-domains.test');
        assert.equal(await store.isLocalDomain('busy-domains.test'), false);
      });

      it('deletes a domain, and NotFoundError for a missing one', async () => {
        await store.deleteDomain('b-domains.test');
        assert.ok(!(await store.listDomains()).some((x) => x.name === 'b-domains.test'));
        await assert.rejects(store.deleteDomain('b-domains.test'), (err) => err instanceof NotFoundError && /domain b-domains.test does not exist/.test(err.message));
      });
    });

    describe('accounts', () => {
      before(async () => {
        await store.addDomain('accounts.test');
      });

      it('adds an account with the default mailboxes', async () => {
        const a = await store.addAccount({ address: 'alice@accounts.test', passwordHash: 'h1', isAdmin: true, quotaBytes: 1_000_000 });
        assert.equal(typeof a.id, 'number');
        assert.equal(a.address, 'alice@accounts.test');
        assert.equal(a.isAdmin, true);
        assert.equal(a.quotaBytes, 1_000_000);
        assert.deepEqual(await store.getAccount('alice@accounts.test'), a);
        const mailboxes = await store.listMailboxes('alice@accounts.test');
        assert.deepEqual(
          mailboxes.map((m) => ({ name: m.name, specialUse: m.specialUse })),
          DEFAULT_MAILBOXES.map((m) => ({ name: m.name, specialUse: m.specialUse })),
        );
        for (const m of mailboxes) {
          assert.equal(m.uidNext, 1);
          assert.equal(m.messages, 0);
          assert.ok(m.uidValidity > 0);
          assert.equal(typeof m.highestModseq, 'number');
        }
      });

      it('defaults isAdmin to false and quota to unlimited', async () => {
        const b = await account('bob@accounts.test');
        assert.equal(b.isAdmin, false);
        assert.equal(b.quotaBytes, null);
      });

      it('lists accounts, all or by domain', async () => {
        await store.addDomain('other-accounts.test');
        await account('carol@other-accounts.test');
        const all = (await store.listAccounts()).map((a) => a.address);
        assert.ok(['alice@accounts.test', 'bob@accounts.test', 'carol@other-accounts.test'].every((x) => all.includes(x)));
        assert.deepEqual(
          (await store.listAccounts('accounts.test')).map((a) => a.address),
          ['alice@accounts.test', 'bob@accounts.test'],
        );
      });

      it('refuses a duplicate account and an unknown domain', async () => {
        await assert.rejects(account('alice@accounts.test'), (err) => err instanceof ConflictError && err.message === 'account alice@accounts.test already exists');
        await assert.rejects(account('x@unknown-accounts.test'), NotFoundError);
        assert.equal(await store.getAccount('nobody@accounts.test'), null);
        await assert.rejects(store.listMailboxes('nobody@accounts.test'), NotFoundError);
      });

      it('gets and sets password hashes', async () => {
        assert.equal(await store.getPasswordHash('alice@accounts.test'), 'h1');
        await store.setPasswordHash('alice@accounts.test', 'h2');
        assert.equal(await store.getPasswordHash('alice@accounts.test'), 'h2');
        assert.equal(await store.getPasswordHash('nobody@accounts.test'), null);
        await assert.rejects(store.setPasswordHash('nobody@accounts.test', 'h'), NotFoundError);
      });

      it('deletes an account with its messages and unreferenced blobs only', async () => {
        const doomed = await account('doomed@accounts.test');
        const keeper = await account('keeper@accounts.test');
        const own = delivery([doomed.id]);
        const shared = delivery([doomed.id, keeper.id]);
        await store.deliver(own);
        await store.deliver(shared);
        const before = await store.stats();
        await store.deleteAccount('doomed@accounts.test');
        assert.equal(await store.getAccount('doomed@accounts.test'), null);
        assert.deepEqual(await store.listMessages('doomed@accounts.test'), []);
        assert.equal(await store.readBlob(own.hash), null);
        assert.deepEqual(await store.readBlob(shared.hash), shared.blob);
        assert.deepEqual((await store.listMessages('keeper@accounts.test')).map((m) => m.hash), [shared.hash]);
        const afterStats = await store.stats();
        assert.equal(afterStats.messages, before.messages - 2);
        assert.equal(afterStats.blobs, before.blobs - 1);
        await assert.rejects(store.deleteAccount('doomed@accounts.test'), (err) => err instanceof NotFoundError && err.message === 'account doomed@accounts.test does not exist');
      });
    });

    describe('aliases', () => {
      before(async () => {
        await store.addDomain('aliases.test');
      });

      it('adds aliases, catch-all included, and resolves their targets', async () => {
        await store.addAlias('team@aliases.test', 'b@elsewhere.test');
        await store.addAlias('team@aliases.test', 'a@elsewhere.test');
        await store.addAlias('@aliases.test', 'catch@elsewhere.test');
        assert.deepEqual(await store.aliasTargets('team@aliases.test'), ['a@elsewhere.test', 'b@elsewhere.test']);
        assert.deepEqual(await store.aliasTargets('@aliases.test'), ['catch@elsewhere.test']);
        assert.deepEqual(await store.aliasTargets('nobody@aliases.test'), []);
        const mine = (await store.listAliases()).filter((r) => r.address.endsWith('aliases.test'));
        assert.deepEqual(mine, [
          { address: '@aliases.test', target: 'catch@elsewhere.test' },
          { address: 'team@aliases.test', target: 'a@elsewhere.test' },
          { address: 'team@aliases.test', target: 'b@elsewhere.test' },
        ]);
      });

      it('refuses duplicates and unknown domains', async () => {
        await assert.rejects(store.addAlias('team@aliases.test', 'a@elsewhere.test'), (err) => err instanceof ConflictError && err.message === 'alias team@aliases.test -> a@elsewhere.test already exists');
        await assert.rejects(store.addAlias('x@unknown-aliases.test', 'a@elsewhere.test'), NotFoundError);
        await assert.rejects(store.addAlias('@unknown-aliases.test', 'a@elsewhere.test'), NotFoundError);
      });

      it('deletes one target, then all targets', async () => {
        await store.deleteAlias('team@aliases.test', 'a@elsewhere.test');
        assert.deepEqual(await store.aliasTargets('team@aliases.test'), ['b@elsewhere.test']);
        await assert.rejects(store.deleteAlias('team@aliases.test', 'a@elsewhere.test'), (err) => err instanceof NotFoundError && err.message === 'alias team@aliases.test -> a@elsewhere.test does not exist');
        await store.addAlias('team@aliases.test', 'c@elsewhere.test');
        await store.deleteAlias('team@aliases.test');
        assert.deepEqual(await store.aliasTargets('team@aliases.test'), []);
        await assert.rejects(store.deleteAlias('team@aliases.test'), (err) => err instanceof NotFoundError && err.message === 'alias team@aliases.test does not exist');
        await store.deleteAlias('@aliases.test');
        assert.deepEqual(await store.aliasTargets('@aliases.test'), []);
      });
    });

    describe('settings', () => {
      it('gets, sets and overwrites settings', async () => {
        assert.equal(await store.getSetting('contract.key'), null);
        await store.setSetting('contract.key', 'one');
        assert.equal(await store.getSetting('contract.key'), 'one');
        await store.setSetting('contract.key', 'two');
        assert.equal(await store.getSetting('contract.key'), 'two');
        await store.setSetting('contract.empty', '');
        assert.equal(await store.getSetting('contract.empty'), '');
      });
    });

    describe('deliver', () => {
      let a: number;
      let b: number;
      before(async () => {
        await store.addDomain('deliver.test');
        a = (await account('a@deliver.test')).id;
        b = (await account('b@deliver.test')).id;
      });

      it('gives increasing uids and modseqs per mailbox', async () => {
        const entries: DeliveredEntry[] = [];
        for (let i = 0; i < 3; i++) entries.push(...(await store.deliver(delivery([a]))));
        assert.deepEqual(entries.map((e) => e.uid), [1, 2, 3]);
        assert.ok(entries.every((e) => e.accountId === a && e.mailboxId === entries[0]!.mailboxId));
        assert.ok(entries[0]!.modseq < entries[1]!.modseq && entries[1]!.modseq < entries[2]!.modseq);
        const inbox = (await store.listMailboxes('a@deliver.test')).find((m) => m.name === 'INBOX')!;
        assert.equal(inbox.id, entries[0]!.mailboxId);
        assert.equal(inbox.uidNext, 4);
        assert.equal(inbox.messages, 3);
        assert.equal(inbox.highestModseq, entries[2]!.modseq);
      });

      it('stores one blob for a message delivered to several accounts', async () => {
        const before = await store.stats();
        const d = delivery([a, b]);
        const entries = await store.deliver(d);
        assert.deepEqual(entries.map((e) => [e.accountId, e.uid]), [[a, 4], [b, 1]]);
        const after = await store.stats();
        assert.equal(after.blobs - before.blobs, 1);
        assert.equal(after.messages - before.messages, 2);
        for (const address of ['a@deliver.test', 'b@deliver.test']) {
          const last = (await store.listMessages(address)).at(-1)!;
          assert.equal(last.hash, d.hash);
          assert.equal(last.mailbox, 'INBOX');
          assert.equal(last.size, d.blob.length);
          assert.equal(last.ternId, d.ternId);
          assert.equal(last.envelopeFrom, d.envelopeFrom);
          assert.equal(last.internalDate.getTime(), d.internalDate.getTime());
          assert.deepEqual(last.flags, []);
        }
        assert.deepEqual(await store.readBlob(d.hash), d.blob);
        // The same content again is still one blob.
        await store.deliver({ ...delivery([b]), blob: d.blob, hash: d.hash });
        assert.equal((await store.stats()).blobs, after.blobs);
      });

      it('keeps binary content byte for byte', async () => {
        const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
        const d = { ...delivery([a]), blob: bytes, hash: createHash('sha256').update(bytes).digest('hex') };
        await store.deliver(d);
        assert.deepEqual(await store.readBlob(d.hash), bytes);
        assert.equal(await store.readBlob('0'.repeat(64)), null);
      });

      it('refuses a delivery without recipients or to an unknown account', async () => {
        await assert.rejects(store.deliver(delivery([])), UserError);
        await assert.rejects(store.deliver(delivery([987654321])), NotFoundError);
      });

      it('skips an account that no longer exists and delivers to the others', async () => {
        const before = await store.stats();
        const entries = await store.deliver(delivery([987654321, b]));
        assert.deepEqual(entries.map((e) => e.accountId), [b]);
        assert.equal((await store.stats()).messages - before.messages, 1);
      });

      it('counts the bytes an account uses', async () => {
        const c = (await account('c@deliver.test')).id;
        assert.equal(await store.usedBytes(c), 0);
        const d1 = delivery([c]);
        const d2 = delivery([c]);
        await store.deliver(d1);
        await store.deliver(d2);
        assert.equal(await store.usedBytes(c), d1.blob.length + d2.blob.length);
      });

      it('lists other mailboxes as empty', async () => {
        assert.deepEqual(await store.listMessages('a@deliver.test', 'Sent'), []);
      });

      it('shares commits between 200 concurrent deliveries, each with its own uid', async () => {
        const c = (await account('burst@deliver.test')).id;
        const results = await Promise.all(Array.from({ length: 200 }, () => store.deliver(delivery([c]))));
        const uids = results.map((r) => r[0]!.uid);
        assert.equal(new Set(uids).size, 200);
        assert.deepEqual([...uids].sort((x, y) => x - y), Array.from({ length: 200 }, (_, i) => i + 1));
        assert.equal((await store.listMessages('burst@deliver.test')).length, 200);
        // A bad delivery in a burst fails alone.
        const mixed = await Promise.allSettled([store.deliver(delivery([c])), store.deliver(delivery([987654321])), store.deliver(delivery([c]))]);
        assert.deepEqual(mixed.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
      });
    });

    describe('operations', () => {
      it('reports stats', async () => {
        const stats = await store.stats();
        assert.deepEqual(Object.keys(stats).sort(), ['accounts', 'blobs', 'domains', 'messages']);
        assert.equal(stats.domains, (await store.listDomains()).length);
        assert.equal(stats.accounts.length, (await store.listAccounts()).length);
        assert.ok(stats.accounts.every((x) => typeof x.address === 'string' && typeof x.messages === 'number'));
        assert.equal(stats.messages, stats.accounts.reduce((n, x) => n + x.messages, 0));
        assert.deepEqual(stats.accounts.find((x) => x.address === 'b@deliver.test'), { address: 'b@deliver.test', messages: 3 });
        assert.deepEqual(stats.accounts.find((x) => x.address === 'bob@accounts.test'), { address: 'bob@accounts.test', messages: 0 });
        assert.ok(stats.blobs > 0 && stats.blobs <= stats.messages);
      });

      it('finds nothing wrong with a healthy store', async () => {
        assert.deepEqual(await store.checkIntegrity(), []);
      });
    });
  });
}
