/**
 * The import part of the Store contract: readying a mailbox so an import keeps the source's
 * UIDVALIDITY and uids (new or empty mailboxes only), deliveries with given uids, UIDNEXT
 * raised at the end, and a mailbox with messages keeping its own.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ConflictError } from '../../../src/errors.js';
import type { Account, Store } from '../../../src/store/store.js';
import { delivery, stored, type Fixture } from './support.js';

export function importsContract(fx: Fixture): void {
  let store: Store;
  describe('imports', () => {
    let owner: Account;
    before(async () => {
      store = fx.store;
      await store.directory.addDomain('imports.test');
      owner = await fx.addAccount('owner@imports.test', 1_000_000);
    });

    const give = (mailbox: string, uid: number | undefined, flags: string[] = []) =>
      delivery([{ accountId: owner.id, prefix: Buffer.alloc(0), mailbox, flags, uid }]);

    it('creates a missing mailbox with the source UIDVALIDITY, keeps given uids and raises UIDNEXT at the end', async () => {
      const ready = await store.mailboxes.prepareImport(owner.id, 'Archive/2024', { uidValidity: 1_700_000_123 });
      assert.equal(ready.created, true);
      assert.equal(ready.keepUids, true);
      assert.equal(ready.mailbox.uidValidity, 1_700_000_123);
      assert.ok((await store.mailboxes.subscriptions(owner.id)).includes('Archive/2024'));
      const later = await store.mailboxes.create(owner.id, 'Made later');
      assert.ok(later.uidValidity > 1_700_000_123, 'a mailbox made after the import never repeats its UIDVALIDITY');
      // Given out of order: each still gets its uid (they are planned in uid order).
      const results = await store.mailboxes.deliverTogether([
        give('Archive/2024', 7),
        give('Archive/2024', 8, ['\\Flagged']),
        give('Archive/2024', 3, ['\\Seen', 'work']),
      ]);
      const uids = results.map((r) => {
        if (r.status === 'rejected') throw r.reason;
        return stored(r.value[0]).uid;
      });
      assert.deepEqual(uids, [7, 8, 3]);
      assert.equal((await store.mailboxes.get(owner.id, 'Archive/2024'))!.uidNext, 9);
      const done = await store.mailboxes.finishImport(ready.mailbox.id, 20);
      assert.equal(done.uidNext, 20);
      assert.equal((await store.mailboxes.finishImport(ready.mailbox.id, 5)).uidNext, 20, 'UIDNEXT never goes down');
      const messages = await store.mailboxes.messagesOf('owner@imports.test', 'Archive/2024');
      assert.deepEqual(
        messages.map((m) => [m.uid, m.flags]),
        [
          [3, ['\\Seen', 'work']],
          [7, []],
          [8, ['\\Flagged']],
        ],
      );
      assert.deepEqual([done.messages, done.unseen], [3, 2]);
      // A later delivery gets the next uid after the imported UIDNEXT.
      assert.equal(stored((await store.mailboxes.deliver(give('Archive/2024', undefined)))[0]).uid, 20);
      await fx.assertCounters('owner@imports.test');
    });

    it('refuses a given uid below UIDNEXT with ConflictError, writing nothing', async () => {
      const before = await store.mailboxes.get(owner.id, 'Archive/2024');
      await assert.rejects(store.mailboxes.deliver(give('Archive/2024', 8)), ConflictError);
      assert.deepEqual(await store.mailboxes.get(owner.id, 'Archive/2024'), before);
    });

    it('gives an empty existing mailbox the source UIDVALIDITY, uids from 1', async () => {
      const old = await fx.mailbox(owner.id, 'Sent');
      await store.mailboxes.deliver(give('Sent', undefined));
      const [m] = await store.mailboxes.messagesOf('owner@imports.test', 'Sent');
      await store.mailboxes.expunge(old.id, [m!.uid]);
      const ready = await store.mailboxes.prepareImport(owner.id, 'Sent', { uidValidity: 42 });
      assert.deepEqual([ready.created, ready.keepUids, ready.mailbox.uidValidity, ready.mailbox.uidNext], [false, true, 42, 1]);
      assert.deepEqual(await store.mailboxes.expungedSince(old.id, 0), [], 'tombstones of the old UIDVALIDITY are gone');
      assert.equal(stored((await store.mailboxes.deliver(give('Sent', 1)))[0]).uid, 1);
    });

    it('keeps the UIDVALIDITY and uids of a mailbox with messages: the import appends with new uids', async () => {
      const before = await fx.mailbox(owner.id, 'Sent');
      const ready = await store.mailboxes.prepareImport(owner.id, 'Sent', { uidValidity: 99 });
      assert.deepEqual([ready.created, ready.keepUids, ready.mailbox.uidValidity], [false, false, before.uidValidity]);
      assert.equal(stored((await store.mailboxes.deliver(give('Sent', undefined)))[0]).uid, before.uidNext);
    });

    it('without a source UIDVALIDITY (mbox) creates the mailbox with a fresh one and keeps no uids', async () => {
      const ready = await store.mailboxes.prepareImport(owner.id, 'From mbox', { uidValidity: null });
      assert.deepEqual([ready.created, ready.keepUids], [true, false]);
      assert.ok(ready.mailbox.uidValidity > 0);
      const again = await store.mailboxes.prepareImport(owner.id, 'From mbox', { uidValidity: null });
      assert.deepEqual([again.created, again.keepUids, again.mailbox.uidValidity], [false, false, ready.mailbox.uidValidity]);
    });

    it('keeps uids in an empty mailbox that already has the source UIDVALIDITY only above its UIDNEXT', async () => {
      const mb = await fx.mailbox(owner.id, 'Archive/2024');
      const uids = (await store.mailboxes.messagesOf('owner@imports.test', 'Archive/2024')).map((m) => m.uid);
      await store.mailboxes.expunge(mb.id, uids);
      const low = await store.mailboxes.prepareImport(owner.id, 'Archive/2024', { uidValidity: mb.uidValidity, lowestUid: 4 });
      assert.equal(low.keepUids, false);
      const high = await store.mailboxes.prepareImport(owner.id, 'Archive/2024', { uidValidity: mb.uidValidity, lowestUid: 21 });
      assert.equal(high.keepUids, true);
      await fx.assertCounters('owner@imports.test');
    });
  });
}
