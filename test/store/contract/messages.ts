/**
 * The messages part of the Store contract: delivery outcomes, quota at commit, per-recipient prefixes,
 * flags, expunge tombstones, copy and move, with every counter checked after each change.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { NotFoundError, QuotaExceededError, UserError } from '../../../src/errors.js';
import type { Account, Mailbox, NewDelivery, Store } from '../../../src/store/store.js';
import { body, delivery, type Fixture, inline, nextSequence, NO_SUCH_ACCOUNT, prefixFor, sha256, stored, type Stored } from './support.js';

export function messagesContract(fx: Fixture): void {
  const { addAccount, mailbox, deliverOne, usedBytes, refcount, readMessage, readBlob, collectBlob, assertCounters, assertRefcounts } = fx;
  let store: Store;
  describe('messages', () => {
    before(async () => {
      store = fx.store;
      await store.directory.addDomain('messages.test');
    });

    describe('deliver', () => {
      let a: Account;
      let b: Account;
      before(async () => {
        a = await addAccount('a@messages.test');
        b = await addAccount('b@messages.test');
      });

      it('stores a message and reports uid, modseq and message id per recipient', async () => {
        const inboxBefore = await mailbox(a.id);
        const outcomes: Stored[] = [];
        for (let i = 0; i < 3; i++) outcomes.push(await deliverOne(delivery([a.id])));
        assert.deepEqual(
          outcomes.map((o) => o.uid),
          [1, 2, 3],
        );
        assert.ok(outcomes.every((o) => o.accountId === a.id && o.mailboxId === inboxBefore.id));
        assert.ok(outcomes[0]!.modseq > inboxBefore.highestModseq);
        assert.ok(outcomes[0]!.modseq < outcomes[1]!.modseq && outcomes[1]!.modseq < outcomes[2]!.modseq);
        assert.equal(new Set(outcomes.map((o) => o.messageId)).size, 3);
        const inbox = await mailbox(a.id);
        assert.equal(inbox.uidNext, 4);
        assert.equal(inbox.messages, 3);
        assert.equal(inbox.unseen, 3);
        assert.equal(inbox.highestModseq, outcomes[2]!.modseq);
        const listed = await store.mailboxes.messages(inbox.id);
        assert.deepEqual(
          listed.map((m) => [m.id, m.uid, m.modseq]),
          outcomes.map((o) => [o.messageId, o.uid, o.modseq]),
        );
        assert.deepEqual(await store.mailboxes.messagesOf('a@messages.test'), listed);
        await assertCounters('a@messages.test');
      });

      it('stores what it was given: metadata, flags none, size = prefix + body', async () => {
        const d = delivery([a.id]);
        const o = await deliverOne(d);
        const m = (await store.mailboxes.messages(o.mailboxId)).find((x) => x.id === o.messageId)!;
        assert.equal(m.uid, o.uid);
        assert.equal(m.modseq, o.modseq);
        assert.equal(m.mailbox, 'INBOX');
        assert.equal(m.mailboxId, o.mailboxId);
        assert.equal(m.hash, d.blob.hash);
        assert.equal(m.ternId, d.ternId);
        assert.equal(m.envelopeFrom, d.envelopeFrom);
        assert.equal(m.internalDate.getTime(), d.internalDate.getTime());
        assert.deepEqual(m.flags, []);
        assert.equal(m.size, prefixFor(a.id).length + d.blob.size);
      });

      it("answers 'gone' for a deleted or unknown account and stores for the others, in recipient order", async () => {
        const ghost = await addAccount('ghost@messages.test');
        await store.directory.deleteAccount('ghost@messages.test');
        const before = await store.stats();
        const d = delivery([ghost.id, b.id, NO_SUCH_ACCOUNT, a.id]);
        const outcomes = await store.mailboxes.deliver(d);
        assert.deepEqual(
          outcomes.map((o) => [o.status, o.accountId]),
          [
            ['gone', ghost.id],
            ['stored', b.id],
            ['gone', NO_SUCH_ACCOUNT],
            ['stored', a.id],
          ],
        );
        assert.equal((await store.stats()).messages - before.messages, 2);
        const onlyGone = await store.mailboxes.deliver(delivery([ghost.id]));
        assert.deepEqual(onlyGone, [{ status: 'gone', accountId: ghost.id }]);
        assert.equal((await store.stats()).messages - before.messages, 2, 'nothing stored for nobody');
      });

      it('stores one copy per account when several recipients lead to it, answering each', async () => {
        const d = delivery([a.id, { accountId: a.id, prefix: Buffer.from('Delivered-To: alias@messages.test\r\n') }]);
        const outcomes = await store.mailboxes.deliver(d);
        const copies = (await store.mailboxes.messagesOf('a@messages.test')).filter((m) => m.ternId === d.ternId);
        assert.equal(copies.length, 1);
        assert.equal(stored(outcomes[0]).messageId, copies[0]!.id);
        // Both recipients were delivered (to the one copy): neither may be answered as unknown.
        assert.deepEqual(outcomes[1], outcomes[0]);
        await assertCounters('a@messages.test');
      });

      it('refuses a delivery without recipients', async () => {
        await assert.rejects(store.mailboxes.deliver(delivery([])), UserError);
      });

      it('stores into a named mailbox with flags (APPEND), and refuses an unknown mailbox or a bad flag', async () => {
        await store.mailboxes.create(a.id, 'Drafts/Old');
        const d = delivery([{ accountId: a.id, prefix: Buffer.alloc(0), mailbox: 'Drafts/Old', flags: ['\\Seen', '\\draft', '$Label1'] }]);
        const o = await deliverOne(d);
        const target = await mailbox(a.id, 'Drafts/Old');
        assert.equal(o.mailboxId, target.id);
        assert.equal(o.uid, 1);
        const [m] = await store.mailboxes.messages(target.id);
        assert.deepEqual(m!.flags, ['\\Seen', '\\Draft', '$Label1']);
        assert.equal(m!.size, d.blob.size);
        assert.deepEqual([target.messages, target.unseen, target.bytes], [1, 0, d.blob.size]);

        const before = await store.stats();
        await assert.rejects(store.mailboxes.deliver(delivery([{ accountId: a.id, prefix: Buffer.alloc(0), mailbox: 'No such mailbox' }])), NotFoundError);
        await assert.rejects(
          store.mailboxes.deliver(delivery([{ accountId: a.id, prefix: Buffer.alloc(0), mailbox: 'Drafts/Old', flags: ['\\Recent'] }])),
          UserError,
        );
        assert.deepEqual(await store.stats(), before, 'a refused delivery stores nothing');
        await assertCounters('a@messages.test');
      });

      it('stores one shared body with a prefix per recipient', async () => {
        const data = body('Subject: shared\r\n\r\nOne body for everyone.\r\n');
        const d = delivery(
          [
            { accountId: a.id, prefix: Buffer.from('Received: by tern for <a@messages.test>\r\n') },
            { accountId: b.id, prefix: Buffer.from('Received: by tern for <b@messages.test>; with more trace\r\n') },
          ],
          { blob: inline(data) },
        );
        const before = await store.stats();
        const outcomes = (await store.mailboxes.deliver(d)).map(stored);
        const after = await store.stats();
        assert.equal(after.blobs - before.blobs, 1, 'one blob');
        assert.equal(after.messages - before.messages, 2);
        for (const [i, o] of outcomes.entries()) {
          const prefix = d.recipients[i]!.prefix;
          assert.deepEqual(await readMessage(o.messageId), Buffer.concat([prefix, data]));
          const m = (await store.mailboxes.messages(o.mailboxId)).find((x) => x.id === o.messageId)!;
          assert.equal(m.size, prefix.length + data.length);
          assert.equal(m.hash, sha256(data));
        }
        assert.deepEqual(await readBlob(sha256(data)), data, 'the blob is the body alone');
        await assertRefcounts([sha256(data)]);
        await assertCounters('a@messages.test');
        await assertCounters('b@messages.test');
      });

      it('keeps binary content byte for byte', async () => {
        const bytes = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(4096)]);
        const prefix = Buffer.from([0, 255, 13, 10]);
        const o = await deliverOne(delivery([{ accountId: a.id, prefix }], { blob: inline(bytes) }));
        assert.deepEqual(await readBlob(sha256(bytes)), bytes);
        assert.deepEqual(await readMessage(o.messageId), Buffer.concat([prefix, bytes]));
        assert.equal(await readBlob('0'.repeat(64)), null);
      });

      it('finds the stored copies of a delivery by its Tern id', async () => {
        const d = delivery([a.id, NO_SUCH_ACCOUNT, b.id]);
        const outcomes = await store.mailboxes.deliver(d);
        const found = await store.mailboxes.findByTernId(d.ternId);
        assert.deepEqual(
          [...found].sort((x, y) => x.accountId - y.accountId),
          outcomes.filter((o) => o.status === 'stored').sort((x, y) => x.accountId - y.accountId),
        );
        assert.deepEqual(await store.mailboxes.findByTernId('tern-never-delivered'), []);
      });
    });

    describe('quota', () => {
      const size = (d: NewDelivery, i = 0) => d.recipients[i]!.prefix.length + d.blob.size;

      it('is checked at commit: atomic=true refuses the whole delivery when any recipient is over', async () => {
        const roomy = await addAccount('roomy@messages.test');
        const full = await addAccount('full@messages.test', 10);
        const d = delivery([roomy.id, full.id], { atomic: true });
        assert.ok(size(d, 1) > 10);
        const before = await Promise.all([store.stats(), store.mailboxes.list(roomy.id), store.mailboxes.list(full.id)]);
        const outcomes = await store.mailboxes.deliver(d);
        assert.equal(outcomes.length, 2);
        assert.deepEqual(outcomes[1], { status: 'over-quota', accountId: full.id });
        assert.notEqual(outcomes[0]!.status, 'stored', 'nothing is stored for anyone');
        assert.equal(outcomes[0]!.accountId, roomy.id);
        const afterwards = await Promise.all([store.stats(), store.mailboxes.list(roomy.id), store.mailboxes.list(full.id)]);
        assert.deepEqual(afterwards, before, 'counters unchanged');
        assert.equal(await usedBytes('roomy@messages.test'), 0);
        assert.equal(await usedBytes('full@messages.test'), 0);
        assert.equal(await readBlob(d.blob.hash), null);
        assert.deepEqual(await store.mailboxes.findByTernId(d.ternId), []);
      });

      it('atomic=false stores for the recipients with room', async () => {
        const roomy = (await store.directory.getAccount('roomy@messages.test'))!;
        const full = (await store.directory.getAccount('full@messages.test'))!;
        const d = delivery([full.id, roomy.id], { atomic: false });
        const outcomes = await store.mailboxes.deliver(d);
        assert.deepEqual(outcomes[0], { status: 'over-quota', accountId: full.id });
        stored(outcomes[1]);
        assert.equal(await usedBytes('roomy@messages.test'), size(d, 1));
        assert.equal(await usedBytes('full@messages.test'), 0);
        await assertCounters('roomy@messages.test');
        await assertCounters('full@messages.test');
      });

      it('lets a message fill the quota exactly, refuses one byte more, and follows setQuota', async () => {
        const exact = await addAccount('exact@messages.test', null);
        const d1 = delivery([exact.id]);
        const d2 = delivery([exact.id], { atomic: true });
        await store.directory.setQuota('exact@messages.test', size(d1) + size(d2) - 1);
        stored((await store.mailboxes.deliver(d1))[0]);
        assert.deepEqual(await store.mailboxes.deliver(d2), [{ status: 'over-quota', accountId: exact.id }]);
        await store.directory.setQuota('exact@messages.test', size(d1) + size(d2));
        stored((await store.mailboxes.deliver(d2))[0]);
        assert.equal(await usedBytes('exact@messages.test'), size(d1) + size(d2));
        await store.directory.setQuota('exact@messages.test', null);
        stored((await store.mailboxes.deliver(delivery([exact.id])))[0]);
        await assertCounters('exact@messages.test');
      });

      for (const atomic of [true, false]) {
        it(`never overshoots a small quota with 20 concurrent deliveries (atomic=${atomic})`, async () => {
          const small = await addAccount(`small-${atomic}@messages.test`);
          const sameSize = () => body(`Subject: quota\r\n\r\n${String(nextSequence()).padStart(12, '0')}${'x'.repeat(1000)}\r\n`);
          const ds = Array.from({ length: 20 }, () => delivery([small.id], { atomic, blob: inline(sameSize()) }));
          const each = size(ds[0]!);
          assert.ok(ds.every((d) => size(d) === each));
          const quota = 5 * each + Math.floor(each / 2);
          await store.directory.setQuota(`small-${atomic}@messages.test`, quota);
          const outcomes = (await Promise.all(ds.map((d) => store.mailboxes.deliver(d)))).map((o) => o[0]!);
          assert.equal(outcomes.filter((o) => o.status === 'stored').length, 5);
          assert.equal(outcomes.filter((o) => o.status === 'over-quota').length, 15);
          const used = await usedBytes(`small-${atomic}@messages.test`);
          assert.equal(used, 5 * each);
          assert.ok(used <= quota);
          await assertCounters(`small-${atomic}@messages.test`);
        });
      }
      it('commits deliveries submitted together as one group: each gets its own answer, the failing ones store nothing', async () => {
        const g = await addAccount('group@messages.test');
        const h = await addAccount('group-quota@messages.test');
        const shared = inline(body('Subject: shared in a group\r\n\r\nsame bytes\r\n'));
        const big = inline(body(`Subject: big\r\n\r\n${'y'.repeat(4000)}\r\n`));
        await store.directory.setQuota('group-quota@messages.test', 2000);
        const before = await store.stats();
        const ds: NewDelivery[] = [
          delivery([g.id], { blob: shared }),
          delivery([g.id, h.id], { blob: shared }),
          delivery([]),
          delivery([{ accountId: g.id, prefix: Buffer.alloc(0), mailbox: 'No such mailbox' }]),
          delivery([g.id, NO_SUCH_ACCOUNT]),
          delivery([h.id], { blob: big, atomic: true }),
          delivery([{ accountId: g.id, prefix: Buffer.alloc(0), flags: ['\\Recent'] }]),
          delivery([g.id]),
        ];
        const results = await Promise.allSettled(ds.map((d) => store.mailboxes.deliver(d)));
        const rejectedWith = (r: PromiseSettledResult<unknown>, type: new (...a: never[]) => Error) => r.status === 'rejected' && r.reason instanceof type;
        const value = (i: number) => (results[i] as PromiseFulfilledResult<Awaited<ReturnType<Store['mailboxes']['deliver']>>>).value;
        assert.ok(rejectedWith(results[2]!, UserError), 'no recipients');
        assert.ok(rejectedWith(results[3]!, NotFoundError), 'unknown mailbox');
        assert.ok(rejectedWith(results[6]!, UserError), 'bad flag');
        assert.deepEqual(
          value(5).map((o) => o.status),
          ['over-quota'],
        );
        assert.deepEqual(
          value(4).map((o) => o.status),
          ['stored', 'gone'],
        );
        // Stored for g: uids 1–4 and rising modseqs, none taken by a failed delivery (a backend may order a batch its own way).
        const forG = [value(0)[0], value(1)[0], value(4)[0], value(7)[0]].map(stored).sort((p, q) => p.uid - q.uid);
        assert.deepEqual(
          forG.map((o) => o.uid),
          [1, 2, 3, 4],
        );
        assert.ok(
          forG.every((o, i) => i === 0 || o.modseq > forG[i - 1]!.modseq),
          'modseqs rise with the uids',
        );
        assert.equal(stored(value(1)[1]).uid, 1);
        assert.equal(await refcount(shared.hash), 3);
        assert.equal(await refcount(big.hash), null, 'the refused body was never stored');
        const after = await store.stats();
        assert.equal(after.messages, before.messages + 5);
        const listed = await store.mailboxes.messagesOf('group@messages.test');
        assert.deepEqual(
          listed.map((m) => m.uid),
          [1, 2, 3, 4],
        );
        assert.deepEqual(
          listed.map((m) => [m.id, m.modseq]),
          forG.map((o) => [o.messageId, o.modseq]),
        );
        await assertCounters('group@messages.test');
        await assertCounters('group-quota@messages.test');
      });
    });

    describe('flags', () => {
      let inbox: Mailbox;
      let uids: number[];
      before(async () => {
        const f = await addAccount('flags@messages.test');
        uids = [];
        for (let i = 0; i < 3; i++) uids.push((await deliverOne(delivery([f.id]))).uid);
        inbox = await mailbox(f.id);
      });

      const state = async () => (await store.mailboxes.messages(inbox.id)).map((m) => ({ uid: m.uid, modseq: m.modseq, flags: m.flags }));

      it('adds system flags and keywords; only changed messages get a new modseq', async () => {
        const [u1, u2, u3] = uids as [number, number, number];
        const highest = (await mailbox(inbox.accountId)).highestModseq;
        const changes = await store.mailboxes.setFlags(inbox.id, [u1, u2], 'add', ['\\Seen', 'Important']);
        assert.equal(changes.length, 2);
        const m1 = changes[0]!.modseq;
        assert.ok(m1 > highest);
        assert.deepEqual(changes, [
          { uid: u1, modseq: m1, flags: ['\\Seen', 'Important'] },
          { uid: u2, modseq: m1, flags: ['\\Seen', 'Important'] },
        ]);
        let mb = await mailbox(inbox.accountId);
        assert.equal(mb.highestModseq, m1);
        assert.equal(mb.unseen, 1);

        const u3Before = (await state()).find((m) => m.uid === u3)!;
        const again = await store.mailboxes.setFlags(inbox.id, [u1, u2, u3], 'add', ['\\seen']); // case-insensitive system flag
        assert.equal(again.length, 1, 'only u3 changed');
        assert.equal(again[0]!.uid, u3);
        assert.deepEqual(again[0]!.flags, ['\\Seen']);
        assert.ok(again[0]!.modseq > m1);
        assert.ok(again[0]!.modseq > u3Before.modseq);
        const now = await state();
        assert.deepEqual(
          now.map((m) => m.modseq),
          [m1, m1, again[0]!.modseq],
        );
        mb = await mailbox(inbox.accountId);
        assert.equal(mb.unseen, 0);
        assert.equal(mb.highestModseq, again[0]!.modseq);
        await assertCounters('flags@messages.test');
      });

      it('removes flags and keywords', async () => {
        const [u1, u2] = uids as [number, number];
        const changes = await store.mailboxes.setFlags(inbox.id, [u1, u2], 'remove', ['Important', '\\Flagged']);
        assert.deepEqual(
          changes.map((c) => [c.uid, c.flags]),
          [
            [u1, ['\\Seen']],
            [u2, ['\\Seen']],
          ],
        );
        const unchanged = await store.mailboxes.setFlags(inbox.id, [u1, u2], 'remove', ['Important', '\\Flagged']);
        assert.deepEqual(unchanged, [], 'removing absent flags changes nothing');
        const seenOff = await store.mailboxes.setFlags(inbox.id, [u1], 'remove', ['\\Seen']);
        assert.deepEqual(
          seenOff.map((c) => c.flags),
          [[]],
        );
        assert.equal((await mailbox(inbox.accountId)).unseen, 1);
        await assertCounters('flags@messages.test');
      });

      it('replaces the whole set, and a replace with the same set changes nothing', async () => {
        const [u1, u2, u3] = uids as [number, number, number];
        const changes = await store.mailboxes.setFlags(inbox.id, [u2, u3], 'replace', ['$Forwarded', '\\Answered', '\\Flagged', 'zeta', 'Alpha']);
        assert.deepEqual(
          changes.map((c) => [c.uid, c.flags]),
          [
            [u2, ['\\Answered', '\\Flagged', '$Forwarded', 'Alpha', 'zeta']],
            [u3, ['\\Answered', '\\Flagged', '$Forwarded', 'Alpha', 'zeta']],
          ],
        );
        assert.equal((await mailbox(inbox.accountId)).unseen, 3, 'replacing drops \\Seen');
        const before = await state();
        const highest = (await mailbox(inbox.accountId)).highestModseq;
        const same = ['\\Flagged', 'Alpha', '\\Answered', 'zeta', '$Forwarded'];
        assert.deepEqual(await store.mailboxes.setFlags(inbox.id, [u2, u3], 'replace', same), []);
        assert.deepEqual(await state(), before);
        assert.equal((await mailbox(inbox.accountId)).highestModseq, highest);
        const all = ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'];
        const every = await store.mailboxes.setFlags(inbox.id, [u1], 'replace', [...all].reverse());
        assert.deepEqual(every[0]!.flags, all, 'system flags in their fixed order');
        const cleared = await store.mailboxes.setFlags(inbox.id, [u1], 'replace', []);
        assert.deepEqual(cleared[0]!.flags, []);
        await assertCounters('flags@messages.test');
      });

      it('refuses a bad flag with UserError and changes nothing; ignores unknown uids', async () => {
        const before = await state();
        const highest = (await mailbox(inbox.accountId)).highestModseq;
        for (const bad of ['\\Recent', 'two words', '(paren', 'quo"te', '', 'star*', '\\Unknown']) {
          await assert.rejects(store.mailboxes.setFlags(inbox.id, uids, 'add', ['\\Seen', bad]), UserError, `flag ${JSON.stringify(bad)}`);
        }
        assert.deepEqual(await state(), before);
        assert.equal((await mailbox(inbox.accountId)).highestModseq, highest);
        assert.deepEqual(await store.mailboxes.setFlags(inbox.id, [999_999], 'add', ['\\Seen']), []);
        assert.deepEqual(await store.mailboxes.setFlags(inbox.id, [], 'add', ['\\Seen']), []);
        await assertCounters('flags@messages.test');
      });
    });

    describe('expunge', () => {
      let inbox: Mailbox;
      let outcomes: Stored[];
      before(async () => {
        const e = await addAccount('expunge@messages.test');
        outcomes = [];
        for (let i = 0; i < 4; i++) outcomes.push(await deliverOne(delivery([e.id])));
        inbox = await mailbox(e.id);
      });

      it('removes messages and leaves tombstones with the expunge modseq', async () => {
        const [, o2, o3, o4] = outcomes as [Stored, Stored, Stored, Stored];
        const highest = inbox.highestModseq;
        const hashes = (await store.mailboxes.messages(inbox.id)).filter((x) => x.uid === o2.uid || x.uid === o4.uid).map((x) => x.hash);
        await store.mailboxes.setFlags(inbox.id, [o3.uid], 'add', ['\\Seen']);
        const afterFlags = (await mailbox(inbox.accountId)).highestModseq;
        const expunged = await store.mailboxes.expunge(inbox.id, [o4.uid, o2.uid, 999_999]);
        assert.equal(expunged.length, 2);
        const m = expunged[0]!.modseq;
        assert.ok(m > afterFlags);
        assert.deepEqual(expunged, [
          { uid: o2.uid, modseq: m },
          { uid: o4.uid, modseq: m },
        ]);
        const mb = await mailbox(inbox.accountId);
        assert.equal(mb.highestModseq, m);
        assert.equal(mb.uidNext, inbox.uidNext, 'uids are never reused');
        assert.deepEqual(
          (await store.mailboxes.messages(inbox.id)).map((x) => x.uid),
          [outcomes[0]!.uid, o3.uid],
        );
        assert.deepEqual(await store.mailboxes.expungedSince(inbox.id, highest), expunged);
        assert.deepEqual(await store.mailboxes.expungedSince(inbox.id, m), []);
        assert.deepEqual(await store.mailboxes.expungedSince(inbox.id, m - 1), expunged);
        await assertCounters('expunge@messages.test');
        for (const hash of hashes) assert.equal(await refcount(hash), null, 'their blobs had no other reference');
      });

      it('expunging nothing changes nothing; later expunges get later modseqs', async () => {
        const highest = (await mailbox(inbox.accountId)).highestModseq;
        assert.deepEqual(await store.mailboxes.expunge(inbox.id, [outcomes[1]!.uid]), []);
        assert.deepEqual(await store.mailboxes.expunge(inbox.id, []), []);
        assert.equal((await mailbox(inbox.accountId)).highestModseq, highest);
        const later = await store.mailboxes.expunge(inbox.id, [outcomes[0]!.uid]);
        assert.equal(later.length, 1);
        assert.ok(later[0]!.modseq > highest);
        assert.deepEqual(await store.mailboxes.expungedSince(inbox.id, highest), later);
        assert.deepEqual(
          (await store.mailboxes.expungedSince(inbox.id, 0)).map((x) => x.uid),
          [outcomes[0]!.uid, outcomes[1]!.uid, outcomes[3]!.uid],
        );
        const next = await deliverOne(delivery([inbox.accountId]));
        assert.equal(next.uid, inbox.uidNext);
        await assertCounters('expunge@messages.test');
      });
    });

    describe('copy and move', () => {
      let acc: Account;
      let inbox: Mailbox;
      let target: Mailbox;
      let originals: Stored[];
      before(async () => {
        acc = await addAccount('copy@messages.test');
        originals = [];
        for (let i = 0; i < 3; i++) originals.push(await deliverOne(delivery([acc.id])));
        inbox = await mailbox(acc.id);
        target = await store.mailboxes.create(acc.id, 'Copies');
        await store.mailboxes.setFlags(inbox.id, [originals[0]!.uid], 'add', ['\\Seen', '\\Flagged', 'Work', '$Label2']);
        await store.mailboxes.setFlags(inbox.id, [originals[1]!.uid], 'add', ['\\Answered']);
      });

      it('copies with flags and keywords, giving new uids and counting the bytes again', async () => {
        const sourceBefore = await store.mailboxes.messages(inbox.id);
        const usedBefore = await usedBytes('copy@messages.test');
        const pairs = await store.mailboxes.copy(inbox.id, [originals[1]!.uid, originals[0]!.uid], target.id);
        assert.deepEqual(pairs, [
          [originals[0]!.uid, 1],
          [originals[1]!.uid, 2],
        ]);
        assert.deepEqual(await store.mailboxes.messages(inbox.id), sourceBefore, 'the source is unchanged');
        const copies = await store.mailboxes.messages(target.id);
        assert.equal(copies.length, 2);
        const targetNow = await mailbox(acc.id, 'Copies');
        for (const [i, copy] of copies.entries()) {
          const original = sourceBefore[i]!;
          assert.deepEqual(copy.flags, original.flags);
          assert.equal(copy.mailbox, 'Copies');
          assert.equal(copy.mailboxId, target.id);
          assert.equal(copy.size, original.size);
          assert.equal(copy.hash, original.hash);
          assert.equal(copy.ternId, original.ternId);
          assert.equal(copy.internalDate.getTime(), original.internalDate.getTime());
          assert.notEqual(copy.id, original.id);
          assert.ok(copy.modseq <= targetNow.highestModseq);
          assert.deepEqual(await readMessage(copy.id), await readMessage(original.id));
        }
        assert.deepEqual(copies[0]!.flags, ['\\Seen', '\\Flagged', '$Label2', 'Work']);
        assert.equal(targetNow.uidNext, 3);
        assert.equal(await usedBytes('copy@messages.test'), usedBefore + copies[0]!.size + copies[1]!.size);
        await assertCounters('copy@messages.test');
        await assertRefcounts(sourceBefore.map((m) => m.hash));
      });

      it('moves: new uid in the target, tombstone in the source, used bytes unchanged', async () => {
        const usedBefore = await usedBytes('copy@messages.test');
        const highest = (await mailbox(acc.id)).highestModseq;
        const moved = (await store.mailboxes.messages(inbox.id)).find((m) => m.uid === originals[2]!.uid)!;
        const pairs = await store.mailboxes.copy(inbox.id, [originals[2]!.uid], target.id, true);
        assert.deepEqual(pairs, [[originals[2]!.uid, 3]]);
        assert.ok(!(await store.mailboxes.messages(inbox.id)).some((m) => m.uid === originals[2]!.uid));
        const tombstones = await store.mailboxes.expungedSince(inbox.id, highest);
        assert.deepEqual(
          tombstones.map((t) => t.uid),
          [originals[2]!.uid],
        );
        assert.ok(tombstones[0]!.modseq > highest);
        const arrived = (await store.mailboxes.messages(target.id)).find((m) => m.uid === 3)!;
        assert.equal(arrived.hash, moved.hash);
        assert.deepEqual(arrived.flags, moved.flags);
        assert.equal(await usedBytes('copy@messages.test'), usedBefore);
        assert.deepEqual(await readMessage(arrived.id), Buffer.concat([prefixFor(acc.id), await collectBlob(moved.hash)]));
        await assertCounters('copy@messages.test');
        await assertRefcounts([moved.hash]);
      });

      it('refuses a copy to another account and a copy past the quota; a move needs no room', async () => {
        const stranger = await addAccount('stranger@messages.test');
        const strangerInbox = await mailbox(stranger.id);
        await assert.rejects(store.mailboxes.copy(inbox.id, [originals[0]!.uid], strangerInbox.id), UserError);
        const used = await usedBytes('copy@messages.test');
        await store.directory.setQuota('copy@messages.test', used);
        const before = await Promise.all([store.mailboxes.list(acc.id), store.stats()]);
        await assert.rejects(store.mailboxes.copy(inbox.id, [originals[0]!.uid], target.id), QuotaExceededError);
        assert.deepEqual(await Promise.all([store.mailboxes.list(acc.id), store.stats()]), before);
        const pairs = await store.mailboxes.copy(target.id, [1], inbox.id, true);
        assert.equal(pairs.length, 1);
        assert.equal(await usedBytes('copy@messages.test'), used);
        await store.directory.setQuota('copy@messages.test', null);
        assert.deepEqual(await store.mailboxes.copy(inbox.id, [999_999], target.id), []);
        await assertCounters('copy@messages.test');
      });
    });
  });
}
