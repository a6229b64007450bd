/**
 * Integrity in the Store contract, run last: stats agree with the store, and checkIntegrity() finds nothing.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { Store } from '../../../src/store/store.js';
import type { Fixture } from './support.js';

export function integrityContract(fx: Fixture): void {
  let store: Store;
  describe('integrity', () => {
    before(() => {
      store = fx.store;
    });

    it('reports stats that agree with the store', async () => {
      const stats = await store.stats();
      assert.deepEqual(Object.keys(stats).sort(), ['accounts', 'blobs', 'domains', 'messages']);
      assert.equal(stats.domains, (await store.directory.listDomains()).length);
      const accounts = await store.directory.listAccounts();
      assert.deepEqual(
        stats.accounts.map((s) => [s.address, s.usedBytes]),
        accounts.map((a) => [a.address, a.usedBytes]),
      );
      assert.equal(
        stats.messages,
        stats.accounts.reduce((n, s) => n + s.messages, 0),
      );
      const bob = stats.accounts.find((s) => s.address === 'bob@accounts.test');
      assert.deepEqual(bob, { address: 'bob@accounts.test', messages: 0, usedBytes: 0 });
      const burst = accounts.find((a) => a.address === 'burst@concurrency.test')!;
      const burstMessages = (await store.mailboxes.list(burst.id)).reduce((n, m) => n + m.messages, 0);
      assert.equal(stats.accounts.find((s) => s.address === burst.address)!.messages, burstMessages);
      assert.ok(stats.blobs > 0 && stats.blobs <= stats.messages);
      assert.equal(stats.blobs, Number((await fx.inspect('SELECT count(*) AS n FROM blobs'))[0]!.n));
    });

    it('finds nothing wrong after all of the above', async () => {
      assert.deepEqual(await store.checkIntegrity(), []);
      const wrong = await fx.inspect(
        'SELECT b.hash FROM blobs b WHERE b.refcount <> (SELECT count(*) FROM messages m WHERE m.blob_hash = b.hash) OR b.refcount <= 0',
      );
      assert.deepEqual(wrong, [], 'every blob is referenced exactly as counted');
    });
  });
}
