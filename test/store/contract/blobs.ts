/**
 * The blobs part of the Store contract: one blob per SHA-256 with a reference count, removal with the
 * last reference, large bodies staged in chunks, discarded uploads.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import type { Account, BlobRef, Store } from '../../../src/store/store.js';
import { body, delivery, type Fixture, inline, prefixFor, sha256, stored, type Stored } from './support.js';

export function blobsContract(fx: Fixture): void {
  const { addAccount, deliverOne, refcount, stagedChunks, readMessage, readBlob, assertCounters } = fx;
  let store: Store;
  describe('blobs', () => {
    let x: Account;
    let y: Account;
    before(async () => {
      store = fx.store;
      await store.directory.addDomain('blobs.test');
      x = await addAccount('x@blobs.test');
      y = await addAccount('y@blobs.test');
    });

    /** Stages `data` in chunks of the given sizes under a new upload and returns the blob reference. */
    async function stageBody(data: Buffer, chunkSizes: number[]): Promise<BlobRef & { upload: string }> {
      const upload = store.blobs.newUpload();
      let offset = 0;
      const staged: Array<Promise<void>> = [];
      for (const [seq, n] of chunkSizes.entries()) {
        staged.push(store.blobs.stage(upload, seq, data.subarray(offset, offset + n)));
        offset += n;
      }
      assert.equal(offset, data.length, 'the chunks cover the body');
      await Promise.all(staged);
      return { hash: sha256(data), size: data.length, upload };
    }

    it('stores one blob per SHA-256 across deliveries, counting its references', async () => {
      const blob = inline(body());
      const before = await store.stats();
      await store.mailboxes.deliver(delivery([x.id, y.id], { blob }));
      await store.mailboxes.deliver(delivery([x.id], { blob }));
      await store.mailboxes.deliver(delivery([y.id], { blob, atomic: true }));
      const after = await store.stats();
      assert.equal(after.blobs - before.blobs, 1);
      assert.equal(after.messages - before.messages, 4);
      assert.equal(await refcount(blob.hash), 4);
    });

    it('removes a blob when its last reference goes: expunge', async () => {
      const blob = inline(body());
      const ox = await deliverOne(delivery([x.id], { blob }));
      const oy = await deliverOne(delivery([y.id], { blob }));
      assert.equal(await refcount(blob.hash), 2);
      await store.mailboxes.expunge(ox.mailboxId, [ox.uid]);
      assert.equal(await refcount(blob.hash), 1);
      assert.ok(await readBlob(blob.hash), 'still referenced by y');
      await store.mailboxes.expunge(oy.mailboxId, [oy.uid]);
      assert.equal(await refcount(blob.hash), null);
      assert.equal(await readBlob(blob.hash), null);
      // The same body delivered again is stored again.
      await deliverOne(delivery([x.id], { blob }));
      assert.equal(await refcount(blob.hash), 1);
      assert.deepEqual(await readBlob(blob.hash), (blob as { data: Buffer }).data);
    });

    it('removes a blob when its last reference goes: delete mailbox, delete account', async () => {
      const blob = inline(body());
      await store.mailboxes.create(x.id, 'Temporary');
      await store.mailboxes.deliver(delivery([{ accountId: x.id, prefix: Buffer.alloc(0), mailbox: 'Temporary' }], { blob }));
      const z = await addAccount('z@blobs.test');
      await store.mailboxes.deliver(delivery([z.id], { blob }));
      assert.equal(await refcount(blob.hash), 2);
      await store.mailboxes.delete(x.id, 'Temporary');
      assert.equal(await refcount(blob.hash), 1);
      await store.directory.deleteAccount('z@blobs.test');
      assert.equal(await refcount(blob.hash), null);
      assert.equal(await readBlob(blob.hash), null);
    });

    it('stages a large body in chunks, delivers it by upload and reads it back byte for byte', async () => {
      const data = randomBytes(700 * 1024);
      const blob = await stageBody(data, [256 * 1024, 256 * 1024, 100 * 1024, 88 * 1024]);
      assert.equal(await stagedChunks(blob.upload), 4);
      const prefix = Buffer.from('Received: by tern for <x@blobs.test>\r\n');
      const d = delivery([{ accountId: x.id, prefix }, y.id], { blob });
      const [ox, oy] = (await store.mailboxes.deliver(d)).map(stored) as [Stored, Stored];
      assert.equal(await stagedChunks(blob.upload), 4, 'the chunks now belong to the blob');

      const pieces: Buffer[] = [];
      for await (const piece of (await store.blobs.read(blob.hash))!) pieces.push(piece);
      assert.ok(pieces.length > 1, 'streamed in chunks, not loaded whole');
      assert.ok(Buffer.concat(pieces).equals(data), 'blob bytes round-trip');
      assert.ok((await readMessage(ox.messageId)).equals(Buffer.concat([prefix, data])), 'message = prefix + body');
      assert.ok((await readMessage(oy.messageId)).equals(Buffer.concat([prefixFor(y.id), data])));
      const m = (await store.mailboxes.messages(ox.mailboxId)).find((msg) => msg.id === ox.messageId)!;
      assert.equal(m.size, prefix.length + data.length);
      assert.equal(await refcount(blob.hash), 2);
      await assertCounters('x@blobs.test');
      await assertCounters('y@blobs.test');

      // The same body staged again under a new upload: stored once, the new chunks dropped.
      const again = await stageBody(data, [300 * 1024, 400 * 1024]);
      assert.equal(await stagedChunks(again.upload), 2);
      const oz = await deliverOne(delivery([x.id], { blob: again }));
      assert.equal(await stagedChunks(again.upload), 0, 'the second upload was dropped');
      assert.equal(await stagedChunks(blob.upload), 4);
      assert.equal(await refcount(blob.hash), 3);
      assert.ok((await readMessage(oz.messageId)).equals(Buffer.concat([prefixFor(x.id), data])));

      // An inline delivery of the same bytes shares the chunked blob too.
      await deliverOne(delivery([y.id], { blob: inline(data) }));
      assert.equal(await refcount(blob.hash), 4);
      assert.ok((await readBlob(blob.hash))!.equals(data));

      // Last reference gone: the blob and its chunks go.
      for (const o of [ox, oy, oz]) await store.mailboxes.expunge(o.mailboxId, [o.uid]);
      const lastY = (await store.mailboxes.messagesOf('y@blobs.test')).filter((msg) => msg.hash === blob.hash);
      await store.mailboxes.expunge(
        lastY[0]!.mailboxId,
        lastY.map((msg) => msg.uid),
      );
      assert.equal(await refcount(blob.hash), null);
      assert.equal(await stagedChunks(blob.upload), 0, 'chunks removed with their blob');
      assert.equal(await store.blobs.read(blob.hash), null);
    });

    it('a chunked body staged for an inline blob that exists is dropped on delivery', async () => {
      const data = randomBytes(64 * 1024);
      await deliverOne(delivery([x.id], { blob: inline(data) }));
      const staged = await stageBody(data, [32 * 1024, 32 * 1024]);
      await deliverOne(delivery([y.id], { blob: staged }));
      assert.equal(await stagedChunks(staged.upload), 0);
      assert.equal(await refcount(sha256(data)), 2);
      assert.ok((await readBlob(sha256(data)))!.equals(data));
    });

    it('one body staged twice and delivered in one group is stored once; the second upload is dropped', async () => {
      const data = randomBytes(200 * 1024);
      const [first, second] = await Promise.all([stageBody(data, [100 * 1024, 100 * 1024]), stageBody(data, [200 * 1024])]);
      const [a, b] = await Promise.all([
        store.mailboxes.deliver(delivery([x.id], { blob: first })),
        store.mailboxes.deliver(delivery([y.id], { blob: second })),
      ]);
      assert.equal(await refcount(first.hash), 2);
      assert.equal((await stagedChunks(first.upload)) + (await stagedChunks(second.upload)), 2, "one upload's chunks are kept");
      for (const [o, who] of [
        [stored(a[0]), x],
        [stored(b[0]), y],
      ] as const)
        assert.ok((await readMessage(o.messageId)).equals(Buffer.concat([prefixFor(who.id), data])));
      await assertCounters('x@blobs.test');
      await assertCounters('y@blobs.test');
    });

    it('discard drops an uncommitted upload', async () => {
      const data = randomBytes(300 * 1024);
      const blob = await stageBody(data, [200 * 1024, 100 * 1024]);
      assert.equal(await stagedChunks(blob.upload), 2);
      await store.blobs.discard(blob.upload);
      assert.equal(await stagedChunks(blob.upload), 0);
      assert.equal(await store.blobs.read(blob.hash), null);
      await store.blobs.discard(store.blobs.newUpload()); // an unknown upload: nothing to do
      assert.notEqual(store.blobs.newUpload(), store.blobs.newUpload());
    });

    it('answers null for an unknown blob', async () => {
      assert.equal(await store.blobs.read('f'.repeat(64)), null);
    });
  });
}
