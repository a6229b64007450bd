/**
 * Concurrency in the Store contract: bursts of deliveries and mixed writes, and operations on hundreds of
 * messages at once (several SQL chunks).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { NotFoundError, UserError } from '../../../src/errors.js';
import { collect, type Account, type DeliveryOutcome, type Store } from '../../../src/store/store.js';
import { delivery, type Fixture, NO_SUCH_ACCOUNT, stored } from './support.js';

export function concurrencyContract(fx: Fixture): void {
  const { addAccount, mailbox, deliverOne, assertCounters, assertRefcounts } = fx;
  let store: Store;
  describe('concurrency', () => {
    let burst: Account;
    before(async () => {
      store = fx.store;
      await store.directory.addDomain('concurrency.test');
      burst = await addAccount('burst@concurrency.test');
    });

    it('gives 200 concurrent deliveries distinct uids', async () => {
      const results = await Promise.all(Array.from({ length: 200 }, () => deliverOne(delivery([burst.id]))));
      const uids = results.map((r) => r.uid);
      assert.deepEqual(
        [...uids].sort((p, q) => p - q),
        Array.from({ length: 200 }, (_, i) => i + 1),
      );
      assert.equal(new Set(results.map((r) => r.modseq)).size, 200);
      assert.equal((await store.mailboxes.messagesOf('burst@concurrency.test')).length, 200);
      await assertCounters('burst@concurrency.test');
    });

    it('fails a bad delivery in a burst alone', async () => {
      const bad = (flags: string[], mb?: string) => delivery([{ accountId: burst.id, prefix: Buffer.alloc(0), mailbox: mb, flags }]);
      const mixed = await Promise.allSettled([
        store.mailboxes.deliver(delivery([burst.id])),
        store.mailboxes.deliver(bad([], 'No such mailbox')),
        store.mailboxes.deliver(delivery([burst.id])),
        store.mailboxes.deliver(bad(['bad flag'])),
        store.mailboxes.deliver(delivery([NO_SUCH_ACCOUNT])),
        store.mailboxes.deliver(delivery([burst.id])),
      ]);
      assert.deepEqual(
        mixed.map((r) => r.status),
        ['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
      );
      assert.ok((mixed[1] as PromiseRejectedResult).reason instanceof NotFoundError);
      assert.ok((mixed[3] as PromiseRejectedResult).reason instanceof UserError);
      const good = [0, 2, 5].map((i) => stored((mixed[i] as PromiseFulfilledResult<DeliveryOutcome[]>).value[0]));
      assert.deepEqual(
        good.map((o) => o.uid).sort((p, q) => p - q),
        [201, 202, 203],
      );
      assert.deepEqual((mixed[4] as PromiseFulfilledResult<DeliveryOutcome[]>).value, [{ status: 'gone', accountId: NO_SUCH_ACCOUNT }]);
      await assertCounters('burst@concurrency.test');
    });

    it('keeps counters exact through a burst of mixed writes', async () => {
      const inbox = await mailbox(burst.id);
      const archive = await mailbox(burst.id, 'Archive');
      const uids = (await store.mailboxes.messages(inbox.id)).map((m) => m.uid);
      const writes: Array<Promise<unknown>> = [];
      for (let i = 0; i < 40; i++) {
        writes.push(store.mailboxes.deliver(delivery([burst.id])));
        const uid = uids[i * 4]!;
        if (i % 4 === 0) writes.push(store.mailboxes.setFlags(inbox.id, [uid, uids[i * 4 + 1]!], 'add', ['\\Seen', `k${i}`]));
        if (i % 4 === 1) writes.push(store.mailboxes.expunge(inbox.id, [uid]));
        if (i % 4 === 2) writes.push(store.mailboxes.copy(inbox.id, [uid], archive.id));
        if (i % 4 === 3) writes.push(store.mailboxes.copy(inbox.id, [uid], archive.id, true));
      }
      await Promise.all(writes);
      await assertCounters('burst@concurrency.test');
      const messages = [...(await store.mailboxes.messages(inbox.id)), ...(await store.mailboxes.messages(archive.id))];
      const hashes = [...new Set(messages.map((m) => m.hash))];
      await assertRefcounts(hashes.slice(0, 50));
    });
  });

  describe('large operations', () => {
    before(() => {
      store = fx.store;
    });

    it('copies, flags and expunges hundreds of messages at once', async () => {
      const account = (await store.directory.getAccount('burst@concurrency.test'))!;
      const inbox = await mailbox(account.id);
      const bulk = await store.mailboxes.create(account.id, 'Bulk');
      const inboxUids = (await store.mailboxes.messages(inbox.id)).map((m) => m.uid);
      assert.ok(inboxUids.length > 200);
      for (let i = 0; i < 3; i++) await store.mailboxes.copy(inbox.id, inboxUids, bulk.id);
      const copies = await store.mailboxes.messages(bulk.id);
      assert.equal(copies.length, 3 * inboxUids.length);
      const allUids = Array.from({ length: copies.length + 300 }, (_, i) => i + 1); // and uids that do not exist
      const changes = await store.mailboxes.setFlags(bulk.id, allUids, 'add', ['Bulk', '\\Flagged']);
      assert.equal(changes.length, copies.length);
      assert.ok((await store.mailboxes.messages(bulk.id)).every((m) => m.flags.includes('Bulk') && m.flags.includes('\\Flagged')));
      const expunged = await store.mailboxes.expunge(
        bulk.id,
        allUids.filter((u) => u % 3 !== 0),
      );
      assert.equal(expunged.length, copies.filter((m) => m.uid % 3 !== 0).length);
      assert.equal((await store.mailboxes.expungedSince(bulk.id, 0)).length, expunged.length);
      await assertCounters('burst@concurrency.test');
      await store.mailboxes.delete(account.id, 'Bulk');
      await assertCounters('burst@concurrency.test');
      await assertRefcounts(copies.slice(0, 20).map((m) => m.hash));
    });

    it('refuses operations on a mailbox that does not exist', async () => {
      await assert.rejects(store.mailboxes.setFlags(NO_SUCH_ACCOUNT, [1], 'add', ['\\Seen']), NotFoundError);
      await assert.rejects(store.mailboxes.expunge(NO_SUCH_ACCOUNT, [1]), NotFoundError);
      const inbox = await mailbox((await store.directory.getAccount('burst@concurrency.test'))!.id);
      await assert.rejects(store.mailboxes.copy(inbox.id, [1], NO_SUCH_ACCOUNT), NotFoundError);
      await assert.rejects(store.mailboxes.copy(NO_SUCH_ACCOUNT, [1], inbox.id), NotFoundError);
      assert.deepEqual(await store.mailboxes.messages(NO_SUCH_ACCOUNT), []);
      await assert.rejects(collect(store.mailboxes.read(NO_SUCH_ACCOUNT)), NotFoundError);
    });
  });
}
