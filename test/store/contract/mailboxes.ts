/**
 * The mailboxes part of the Store contract: default mailboxes, create (UIDVALIDITY), delete, subscriptions.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ConflictError, NotFoundError, UserError } from '../../../src/errors.js';
import { DEFAULT_MAILBOXES, type Account, type Mailbox, type Store } from '../../../src/store/store.js';
import { body, delivery, type Fixture, inline, NO_SUCH_ACCOUNT, prefixFor } from './support.js';

export function mailboxesContract(fx: Fixture): void {
  const { addAccount, mailbox, usedBytes, readBlob, assertCounters, assertRefcounts } = fx;
  let store: Store;
  describe('mailboxes', () => {
    let owner: Account;
    before(async () => {
      store = fx.store;
      await store.directory.addDomain('mailboxes.test');
      owner = await addAccount('owner@mailboxes.test');
    });

    it('gives a new account the default mailboxes, empty and subscribed', async () => {
      const mailboxes = await store.mailboxes.list(owner.id);
      assert.deepEqual(
        mailboxes.map((m) => ({ name: m.name, specialUse: m.specialUse })),
        DEFAULT_MAILBOXES.map((m) => ({ name: m.name, specialUse: m.specialUse })),
      );
      for (const m of mailboxes) {
        assert.equal(m.accountId, owner.id);
        assert.equal(m.uidNext, 1);
        assert.deepEqual([m.messages, m.unseen, m.bytes], [0, 0, 0]);
        const { uidValidity } = m;
        assert.ok(Number.isInteger(uidValidity) && uidValidity > 0 && uidValidity < 2 ** 32, `uidValidity ${uidValidity} is a 32-bit nz-number`);
        assert.equal(typeof m.highestModseq, 'number');
        assert.deepEqual(await store.mailboxes.get(owner.id, m.name), m);
      }
      assert.equal(new Set(mailboxes.map((m) => m.uidValidity)).size, mailboxes.length, 'each mailbox has its own UIDVALIDITY');
      assert.deepEqual(await store.mailboxes.subscriptions(owner.id), DEFAULT_MAILBOXES.map((m) => m.name).sort());
      assert.equal(await store.mailboxes.get(owner.id, 'Nothing'), null);
    });

    it('creates mailboxes with strictly increasing UIDVALIDITY from a counter, not the clock', async () => {
      const before = Math.max(...(await store.mailboxes.list(owner.id)).map((m) => m.uidValidity));
      const other = await addAccount('other@mailboxes.test');
      // Created within the same second: a clock would repeat itself, a counter cannot.
      const created: Mailbox[] = [];
      for (const [accountId, mbName] of [
        [owner.id, 'Projects'],
        [other.id, 'Projects'],
        [owner.id, 'Projects/Tern'],
        [owner.id, 'Receipts'],
      ] as const) {
        created.push(await store.mailboxes.create(accountId, mbName));
      }
      let last = before;
      for (const mb of created) {
        assert.ok(mb.uidValidity > last, `UIDVALIDITY ${mb.uidValidity} > ${last}`);
        assert.ok(mb.uidValidity < 2 ** 32);
        last = mb.uidValidity;
        assert.equal(mb.uidNext, 1);
        assert.deepEqual([mb.messages, mb.unseen, mb.bytes], [0, 0, 0]);
        assert.deepEqual(await store.mailboxes.get(mb.accountId, mb.name), mb);
      }
      const special = await store.mailboxes.create(owner.id, 'Flagged mail', '\\Flagged');
      assert.equal(special.specialUse, '\\Flagged');
      assert.ok(special.uidValidity > last);

      // Concurrent creates all get their own value.
      const burst = await Promise.all(Array.from({ length: 10 }, (_, i) => store.mailboxes.create(owner.id, `Burst ${i}`)));
      assert.equal(new Set(burst.map((m) => m.uidValidity)).size, 10);
      assert.ok(burst.every((m) => m.uidValidity > special.uidValidity));

      // A mailbox deleted and created again under the same name gets a new, larger UIDVALIDITY.
      await store.mailboxes.delete(owner.id, 'Receipts');
      const again = await store.mailboxes.create(owner.id, 'Receipts');
      assert.ok(again.uidValidity > Math.max(...burst.map((m) => m.uidValidity)));
    });

    it('refuses a duplicate mailbox with ConflictError, and an unknown account', async () => {
      await assert.rejects(store.mailboxes.create(owner.id, 'Projects'), ConflictError);
      await assert.rejects(store.mailboxes.create(owner.id, 'INBOX'), ConflictError);
      await assert.rejects(store.mailboxes.create(NO_SUCH_ACCOUNT, 'Projects'), NotFoundError);
    });

    it('deletes a mailbox with its messages, releasing blobs no longer used', async () => {
      const work = await store.mailboxes.create(owner.id, 'Work');
      const own = delivery([{ accountId: owner.id, prefix: prefixFor(owner.id), mailbox: 'Work' }]);
      const sharedBlob = inline(body());
      const shared = delivery([{ accountId: owner.id, prefix: prefixFor(owner.id), mailbox: 'Work' }], { blob: sharedBlob });
      const inInbox = delivery([owner.id], { blob: sharedBlob });
      for (const d of [own, shared, inInbox]) await store.mailboxes.deliver(d);
      assert.equal((await mailbox(owner.id, 'Work')).messages, 2);
      const usedBefore = await usedBytes('owner@mailboxes.test');
      const workBytes = (await mailbox(owner.id, 'Work')).bytes;

      await store.mailboxes.delete(owner.id, 'Work');
      assert.equal(await store.mailboxes.get(owner.id, 'Work'), null);
      assert.ok(!(await store.mailboxes.list(owner.id)).some((m) => m.id === work.id));
      assert.deepEqual(await store.mailboxes.messages(work.id), []);
      assert.equal(await readBlob(own.blob.hash), null, 'the blob only Work used is gone');
      assert.deepEqual(await readBlob(sharedBlob.hash), (sharedBlob as { data: Buffer }).data, 'the blob INBOX still uses is kept');
      assert.equal(await usedBytes('owner@mailboxes.test'), usedBefore - workBytes);
      await assertRefcounts([own.blob.hash, sharedBlob.hash]);
      await assertCounters('owner@mailboxes.test');
      await assert.rejects(store.mailboxes.delete(owner.id, 'Work'), NotFoundError);
    });

    it('refuses to delete INBOX', async () => {
      await assert.rejects(store.mailboxes.delete(owner.id, 'INBOX'), UserError);
      await assert.rejects(store.mailboxes.delete(owner.id, 'inbox'), UserError);
      assert.ok(await store.mailboxes.get(owner.id, 'INBOX'));
    });

    it('subscribes and unsubscribes, and lists subscribed names whose mailbox is gone', async () => {
      await store.mailboxes.create(owner.id, 'Lists');
      await store.mailboxes.subscribe(owner.id, 'Lists');
      await store.mailboxes.subscribe(owner.id, 'Lists'); // twice is once
      assert.equal((await store.mailboxes.subscriptions(owner.id)).filter((n) => n === 'Lists').length, 1);
      await store.mailboxes.unsubscribe(owner.id, 'Lists');
      assert.ok(!(await store.mailboxes.subscriptions(owner.id)).includes('Lists'));
      await store.mailboxes.unsubscribe(owner.id, 'Lists'); // not subscribed: nothing to do

      await store.mailboxes.subscribe(owner.id, 'Lists');
      await store.mailboxes.delete(owner.id, 'Lists');
      await store.mailboxes.subscribe(owner.id, 'Never created');
      const names = await store.mailboxes.subscriptions(owner.id);
      assert.ok(names.includes('Lists'), 'a deleted mailbox stays subscribed (LSUB lists it)');
      assert.ok(names.includes('Never created'));
      assert.deepEqual(
        names,
        [...names].sort((p, q) => Buffer.compare(Buffer.from(p), Buffer.from(q))),
        'in byte order',
      );
      const mailboxNames = new Set((await store.mailboxes.list(owner.id)).map((m) => m.name));
      assert.ok(!mailboxNames.has('Lists') && !mailboxNames.has('Never created'));
      // Subscriptions are per account.
      assert.ok(!(await store.mailboxes.subscriptions((await store.directory.getAccount('other@mailboxes.test'))!.id)).includes('Never created'));
    });
  });
}
