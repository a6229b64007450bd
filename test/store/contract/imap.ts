/**
 * The part of the Store contract the mailbox protocols use: uids, pages of messages with
 * structure and search text, changes since a mod-sequence, conditional flag updates,
 * first-unseen and deleted uids, byte ranges of a message (inline and chunked), mailbox
 * rename (with children, and INBOX), and the watch that tells sessions what changed.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { CHUNK_SIZE } from '../../../src/store/sql/reads.js';
import { collect, type Account, type Store } from '../../../src/store/store.js';
import { body, delivery, type Fixture, inline, sha256 } from './support.js';

export function imapContract(fx: Fixture): void {
  const { addAccount, mailbox, deliverOne, readMessage, assertCounters } = fx;
  let store: Store;
  describe('mailbox protocol reads and writes', () => {
    let a: Account;
    before(async () => {
      store = fx.store;
      await store.directory.addDomain('imap.test');
      a = await addAccount('a@imap.test');
    });

    it('lists uids and reads pages of messages with flags, sizes and the prefix length', async () => {
      const inbox = await mailbox(a.id);
      const delivered = [];
      for (let i = 0; i < 5; i++) delivered.push(await deliverOne(delivery([a.id])));
      assert.deepEqual(
        await store.mailboxes.uids(inbox.id),
        delivered.map((d) => d.uid),
      );
      await store.mailboxes.setFlags(inbox.id, [delivered[1]!.uid], 'add', ['\\Seen', '$Work']);
      const page = await store.mailboxes.fetch(inbox.id, [delivered[1]!.uid, delivered[3]!.uid, 999_999], { prefix: true });
      assert.deepEqual(
        page.map((r) => r.uid),
        [delivered[1]!.uid, delivered[3]!.uid],
      );
      assert.deepEqual(page[0]!.flags, ['\\Seen', '$Work']);
      const whole = await readMessage(page[0]!.id);
      assert.equal(page[0]!.size, whole.length);
      assert.ok(page[0]!.prefix && whole.subarray(0, page[0]!.prefixLength).equals(page[0]!.prefix));
      const run = await store.mailboxes.fetch(
        inbox.id,
        delivered.map((d) => d.uid),
        {},
      );
      assert.equal(run.length, 5, 'a run of uids (BETWEEN) reads them all');
      assert.equal(await store.mailboxes.firstUnseen(inbox.id), delivered[0]!.uid);
    });

    it('reads byte ranges of inline and chunked messages', async () => {
      const small = await deliverOne(delivery([a.id], { blob: inline(body('range test')) }));
      const whole = await readMessage(small.messageId);
      for (const [s, e] of [
        [0, whole.length],
        [0, 5],
        [3, 40],
        [whole.length - 3, whole.length],
        [whole.length, whole.length],
      ] as Array<[number, number]>) {
        assert.deepEqual(await collect(store.mailboxes.readRange(small.messageId, s, e)), whole.subarray(s, e), `range ${s}-${e}`);
      }
      const big = Buffer.alloc(CHUNK_SIZE * 2 + 1000, 'abcdefghij');
      const upload = store.blobs.newUpload();
      for (let i = 0; i * CHUNK_SIZE < big.length; i++) await store.blobs.stage(upload, i, big.subarray(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE));
      const chunked = await deliverOne(delivery([a.id], { blob: { hash: sha256(big), size: big.length, upload } }));
      const all = await readMessage(chunked.messageId);
      for (const [s, e] of [
        [0, all.length],
        [CHUNK_SIZE - 10, CHUNK_SIZE + 10],
        [CHUNK_SIZE * 2 + 5, all.length],
        [7, 8],
      ] as Array<[number, number]>) {
        assert.deepEqual(await collect(store.mailboxes.readRange(chunked.messageId, s, e)), all.subarray(s, e), `chunked range ${s}-${e}`);
      }
    });

    it('updates flags only where unchanged since a mod-sequence, and reports changes since one', async () => {
      const mb = await store.mailboxes.create(a.id, 'Cond');
      const one = await deliverOne(delivery([{ accountId: a.id, prefix: Buffer.alloc(0), mailbox: 'Cond' }]));
      const two = await deliverOne(delivery([{ accountId: a.id, prefix: Buffer.alloc(0), mailbox: 'Cond' }]));
      const since = (await mailbox(a.id, 'Cond')).highestModseq;
      const first = await store.mailboxes.updateFlags(mb.id, [one.uid], 'add', ['\\Flagged'], since);
      assert.equal(first.changes.length, 1);
      assert.deepEqual(first.modified, []);
      const second = await store.mailboxes.updateFlags(mb.id, [one.uid, two.uid], 'add', ['\\Answered'], since);
      assert.deepEqual(second.modified, [one.uid], 'the message changed after `since` is left alone');
      assert.deepEqual(
        second.changes.map((c) => c.uid),
        [two.uid],
      );
      const changed = await store.mailboxes.changedSince(mb.id, since);
      assert.deepEqual(
        changed.map((c) => [c.uid, c.flags]),
        [
          [one.uid, ['\\Flagged']],
          [two.uid, ['\\Answered']],
        ],
      );
      const many = await store.mailboxes.updateFlags(mb.id, [one.uid, two.uid], 'replace', ['\\Deleted', 'k1', 'k2'], null);
      assert.equal(many.changes.length, 2);
      assert.ok(many.changes.every((c) => c.modseq === many.changes[0]!.modseq));
      assert.deepEqual(await store.mailboxes.deletedUids(mb.id), [one.uid, two.uid]);
      await store.mailboxes.updateFlags(mb.id, [one.uid], 'remove', ['k1', '\\Deleted'], null);
      assert.deepEqual((await store.mailboxes.fetch(mb.id, [one.uid], {}))[0]!.flags, ['k2']);
      await assertCounters('a@imap.test');
    });

    it('renames a mailbox with its children and subscriptions, and INBOX by moving its messages', async () => {
      const b = await addAccount('b@imap.test');
      await store.mailboxes.create(b.id, 'P');
      const child = await store.mailboxes.create(b.id, 'P/Q');
      await store.mailboxes.create(b.id, 'PX');
      await store.mailboxes.rename(b.id, 'P', 'R');
      const names = (await store.mailboxes.list(b.id)).map((m) => m.name);
      assert.ok(names.includes('R') && names.includes('R/Q') && names.includes('PX') && !names.includes('P'), names.join(','));
      assert.equal((await mailbox(b.id, 'R/Q')).uidValidity, child.uidValidity, 'a renamed mailbox keeps its uids');
      assert.ok((await store.mailboxes.subscriptions(b.id)).includes('R/Q'));
      await assert.rejects(store.mailboxes.rename(b.id, 'R', 'PX'), /already exists/);
      await assert.rejects(store.mailboxes.rename(b.id, 'Nope', 'Z'), /does not exist/);

      await deliverOne(delivery([b.id]));
      await deliverOne(delivery([b.id]));
      await store.mailboxes.rename(b.id, 'INBOX', 'Old');
      assert.equal((await mailbox(b.id)).messages, 0);
      assert.equal((await mailbox(b.id, 'Old')).messages, 2);
      await assertCounters('b@imap.test');
    });

    it('tells watchers which mailboxes a commit changed', async () => {
      const inbox = await mailbox(a.id);
      const other = await mailbox(a.id, 'Cond');
      let seen = 0;
      let elsewhere = 0;
      const stop = store.mailboxes.watch(inbox.id, () => seen++);
      const stopOther = store.mailboxes.watch(other.id, () => elsewhere++);
      const d = await deliverOne(delivery([a.id]));
      await store.mailboxes.setFlags(inbox.id, [d.uid], 'add', ['\\Seen']);
      await store.mailboxes.expunge(inbox.id, [d.uid]);
      stop();
      await deliverOne(delivery([a.id]));
      assert.equal(seen, 3, 'delivery, flags and expunge each told the watcher');
      assert.equal(elsewhere, 0, 'a watcher of another mailbox is not told');
      stopOther();
    });
  });
}
