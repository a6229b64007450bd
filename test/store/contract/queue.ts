/**
 * The queue part of the Store contract: entries written with a delivery (one per
 * destination domain, holding a blob reference), leases, attempts settled per recipient,
 * bounces owed, filters with cursor paging, hold/release/retry/delete, the event log.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { parseMessage, storedForm } from '../../../src/mail/mime/index.js';
import { collect, type Account, type NewDelivery, type OutboundMessage, type Store, type TraceQuery } from '../../../src/store/store.js';
import { body, delivery, type Fixture, inline } from './support.js';

const PREFIX = Buffer.from('Received: from test by queue.test\r\n');

function outbound(domains: Record<string, string[]>, extra: Partial<OutboundMessage> = {}): OutboundMessage {
  return {
    prefix: PREFIX,
    domains: Object.entries(domains).map(([domain, addresses]) => ({ domain, recipients: addresses.map((address) => ({ address })) })),
    ...extra,
  };
}

/** A delivery to `local` accounts that also queues `remote`. */
function mixed(local: number[], remote: Record<string, string[]>, extra: Partial<NewDelivery> & { out?: Partial<OutboundMessage> } = {}): NewDelivery {
  const { out, ...rest } = extra;
  return { ...delivery(local), outbound: outbound(remote, out), ...rest };
}

export function queueContract(fx: Fixture): void {
  const { addAccount, refcount, assertRefcounts } = fx;
  let store: Store;
  let a: Account;
  /** A point far enough ahead that every entry is due and every lease has expired. */
  const later = (minutes: number) => new Date(Date.now() + minutes * 60_000);

  describe('queue', () => {
    before(async () => {
      store = fx.store;
      await store.directory.addDomain('queue.test');
      a = await addAccount('a@queue.test');
    });

    /** Claims everything due by `at` for a fresh owner and returns the entries of `ternId`. */
    async function claimOf(ternId: string, at = later(0)) {
      const all = await store.queue.claim(`w-${Math.random()}`, { limit: 1000, leaseMs: 60_000, now: at });
      return all.filter((e) => e.ternId === ternId);
    }

    it('queues one entry per destination domain in the same commit as the local copy', async () => {
      const d = mixed([a.id], { 'x.example': ['u1@x.example', 'u2@x.example'], 'y.example': ['v@y.example'] });
      const outcomes = await store.mailboxes.deliver(d);
      assert.equal(outcomes[0]!.status, 'stored');
      assert.equal(await store.queue.countByTernId(d.ternId), 2);
      const entries = (await store.queue.list({ sender: 'sender@example.org' }, { limit: 1000 })).filter((e) => e.ternId === d.ternId);
      assert.deepEqual(
        entries.map((e) => [e.domain, e.recipients.map((r) => r.address), e.state, e.size]),
        [
          ['x.example', ['u1@x.example', 'u2@x.example'], 'queued', PREFIX.length + d.blob.size],
          ['y.example', ['v@y.example'], 'queued', PREFIX.length + d.blob.size],
        ],
      );
      assert.equal(await refcount(d.blob.hash), 3, 'one reference for the message, one per entry');
      assert.deepEqual(
        Buffer.compare(await collect(store.queue.read(entries[0]!.id)), Buffer.concat([PREFIX, 'data' in d.blob ? d.blob.data : Buffer.alloc(0)])),
        0,
      );
      const events = await store.queue.events({ ternId: d.ternId });
      assert.deepEqual(events.map((e) => [e.recipient, e.event]).sort(), [
        ['u1@x.example', 'queued'],
        ['u2@x.example', 'queued'],
        ['v@y.example', 'queued'],
      ]);
      await store.queue.delete({ ids: entries.map((e) => e.id) });
      await assertRefcounts([d.blob.hash]);
    });

    it('takes a delivery with only remote recipients, and refuses none of it without a recipient at all', async () => {
      const d: NewDelivery = { ...delivery([]), outbound: outbound({ 'z.example': ['w@z.example'] }) };
      assert.deepEqual(await store.mailboxes.deliver(d), []);
      assert.equal(await store.queue.countByTernId(d.ternId), 1);
      await store.queue.delete({ domain: 'z.example' });
      await assert.rejects(store.mailboxes.deliver({ ...delivery([]), outbound: outbound({}) }), /at least one recipient/);
      assert.equal(await refcount(d.blob.hash), null);
    });

    it('queues nothing when the local part is refused (atomic, over quota)', async () => {
      const full = await addAccount('full@queue.test', 10);
      const d = { ...mixed([full.id], { 'x.example': ['u@x.example'] }), atomic: true };
      const [outcome] = await store.mailboxes.deliver(d);
      assert.equal(outcome!.status, 'over-quota');
      assert.equal(await store.queue.countByTernId(d.ternId), 0);
      assert.equal(await refcount(d.blob.hash), null);
    });

    it('leases due entries to one worker until the lease expires', async () => {
      const d = mixed([], { 'lease.example': ['l@lease.example'] });
      await store.mailboxes.deliver(d);
      const now = later(0);
      const first = (await store.queue.claim('w1', { limit: 1000, leaseMs: 60_000, now })).filter((e) => e.ternId === d.ternId);
      assert.equal(first.length, 1);
      assert.equal((await store.queue.claim('w2', { limit: 1000, leaseMs: 60_000, now })).filter((e) => e.ternId === d.ternId).length, 0, 'leased');
      assert.equal((await claimOf(d.ternId, later(2))).length, 1, 'a crashed worker’s lease expires');
      await store.queue.delete({ ids: [first[0]!.id] });
    });

    it('skips paused domains when claiming, and takes a postponed entry back without counting an attempt', async () => {
      const d = mixed([], { 'pause.example': ['p@pause.example'] });
      await store.mailboxes.deliver(d);
      const owner = () => `w-${Math.random()}`;
      const skipped = await store.queue.claim(owner(), { limit: 1000, leaseMs: 60_000, now: later(0), skipDomains: ['pause.example'] });
      assert.equal(skipped.filter((e) => e.ternId === d.ternId).length, 0);
      const [entry] = await claimOf(d.ternId);
      await store.queue.postpone(entry!.id, later(5));
      assert.equal((await claimOf(d.ternId, later(1))).length, 0, 'not before its time');
      const [again] = await claimOf(d.ternId, later(6));
      assert.equal(again!.attempts, 0);
      await store.queue.delete({ ids: [entry!.id] });
    });

    it('settles attempts per recipient: delivered ones are final, deferred ones come back when due', async () => {
      const d = mixed([], { 's.example': ['s1@s.example', 's2@s.example'] });
      await store.mailboxes.deliver(d);
      const [entry] = await claimOf(d.ternId);
      const retryAt = later(5);
      const state = await store.queue.settle(
        entry!.id,
        [
          { address: 's1@s.example', status: 'delivered', reply: '250 2.0.0 ok' },
          { address: 's2@s.example', status: 'deferred', reply: '451 4.3.0 try later' },
        ],
        retryAt,
      );
      assert.equal(state, 'queued');
      assert.equal((await claimOf(d.ternId, later(1))).length, 0, 'not due before retryAt');
      const [again] = await claimOf(d.ternId, later(6));
      assert.deepEqual(
        again!.recipients.map((r) => [r.address, r.status, r.reply]),
        [['s2@s.example', 'pending', '451 4.3.0 try later']],
      );
      assert.equal(again!.attempts, 1);
      assert.equal(await store.queue.settle(again!.id, [{ address: 's2@s.example', status: 'delivered', reply: '250 ok' }], later(10)), 'done');
      assert.equal(await store.queue.get(again!.id), null);
      assert.equal(await refcount(d.blob.hash), null, 'the last reference went with the entry');
      const events = (await store.queue.events({ ternId: d.ternId })).map((e) => `${e.recipient} ${e.event}`);
      assert.deepEqual(events, ['s1@s.example queued', 's2@s.example queued', 's1@s.example delivered', 's2@s.example deferred', 's2@s.example delivered']);
      assert.deepEqual(
        (await store.queue.events({ recipient: 's2@s.example' })).map((e) => e.event),
        ['queued', 'deferred', 'delivered'],
      );
    });

    it('owes a bounce for a failed recipient, unless the sender is null, the entry is a bounce, or NOTIFY says NEVER', async () => {
      const cases: Array<[string, NewDelivery, 'bounce' | 'done']> = [
        ['ordinary', mixed([], { 'f.example': ['f@f.example'] }), 'bounce'],
        ['null sender', { ...mixed([], { 'f.example': ['f@f.example'] }), envelopeFrom: '' }, 'done'],
        ['a bounce', mixed([], { 'f.example': ['f@f.example'] }, { out: { isBounce: true } }), 'done'],
        [
          'NOTIFY=NEVER',
          { ...delivery([]), outbound: { prefix: PREFIX, domains: [{ domain: 'f.example', recipients: [{ address: 'f@f.example', notify: 'NEVER' }] }] } },
          'done',
        ],
      ];
      for (const [name, d, expected] of cases) {
        await store.mailboxes.deliver(d);
        const [entry] = await claimOf(d.ternId);
        assert.equal(
          await store.queue.settle(entry!.id, [{ address: 'f@f.example', status: 'failed', reply: '550 5.1.1 no such user' }], later(5)),
          expected,
          name,
        );
        if (expected === 'bounce') {
          assert.equal((await store.queue.get(entry!.id))!.state, 'bounce');
          assert.equal((await claimOf(d.ternId, later(60))).length, 0, 'a bounce-owed entry is not delivered again');
          await store.queue.bounced(entry!.id);
          assert.equal(await store.queue.get(entry!.id), null);
          assert.deepEqual(
            (await store.queue.events({ ternId: d.ternId })).map((e) => e.event),
            ['queued', 'failed', 'bounced'],
          );
        }
        assert.equal(await refcount(d.blob.hash), null, name);
      }
    });

    it('fails the deferred recipients when the entry gives up (no retry time)', async () => {
      const d = mixed([], { 'g.example': ['g@g.example'] });
      await store.mailboxes.deliver(d);
      const [entry] = await claimOf(d.ternId);
      assert.equal(await store.queue.settle(entry!.id, [{ address: 'g@g.example', status: 'deferred', reply: '451 still down' }], null), 'bounce');
      assert.deepEqual(
        (await store.queue.get(entry!.id))!.recipients.map((r) => [r.status, r.reply]),
        [['failed', '451 still down']],
      );
      await store.queue.delete({ ids: [entry!.id] });
    });

    it('lists by filter with cursor paging, and holds, releases, retries and deletes by filter', async () => {
      const blob = inline(body());
      const ids: number[] = [];
      for (let i = 0; i < 5; i++) {
        const d = { ...mixed([], { [`page${i % 2}.example`]: [`r${i}@page${i % 2}.example`] }), blob, envelopeFrom: 'pager@queue.test' };
        await store.mailboxes.deliver(d);
      }
      const mine = await store.queue.list({ sender: 'pager@queue.test' }, { limit: 100 });
      ids.push(...mine.map((e) => e.id));
      assert.equal(ids.length, 5);
      assert.equal(await refcount(blob.hash), 5);
      const page1 = await store.queue.list({ sender: 'pager@queue.test' }, { limit: 2 });
      const page2 = await store.queue.list({ sender: 'pager@queue.test' }, { limit: 2, after: page1.at(-1)!.id });
      const page3 = await store.queue.list({ sender: 'pager@queue.test' }, { limit: 2, after: page2.at(-1)!.id });
      assert.deepEqual(
        [...page1, ...page2, ...page3].map((e) => e.id),
        ids,
      );
      assert.deepEqual(
        (await store.queue.list({ domain: 'page1.example' }, { limit: 100 })).map((e) => e.recipients[0]!.address),
        ['r1@page1.example', 'r3@page1.example'],
      );
      assert.deepEqual(
        (await store.queue.list({ recipient: 'r2@page0.example' }, { limit: 100 })).map((e) => e.id),
        [ids[2]],
      );
      assert.equal((await store.queue.list({ sender: 'pager@queue.test', olderThan: new Date(Date.now() - 60_000) }, { limit: 100 })).length, 0);

      assert.equal(await store.queue.hold({ domain: 'page0.example' }), 3);
      assert.equal((await store.queue.list({ sender: 'pager@queue.test', state: 'held' }, { limit: 100 })).length, 3);
      const claimed = (await store.queue.claim('w', { limit: 1000, leaseMs: 1, now: later(1) })).filter((e) => ids.includes(e.id));
      assert.deepEqual(
        claimed.map((e) => e.domain),
        ['page1.example', 'page1.example'],
        'held entries are not delivered',
      );
      assert.equal(await store.queue.release({ ids: [ids[0]!] }), 1);
      assert.equal(await store.queue.retry({ sender: 'pager@queue.test' }), 5, 'retry makes queued and held entries due now');
      assert.equal((await store.queue.list({ sender: 'pager@queue.test', state: 'held' }, { limit: 100 })).length, 0);
      assert.deepEqual(
        (await store.queue.events({ recipient: 'r0@page0.example' })).map((e) => e.event),
        ['queued', 'held', 'released'],
      );

      assert.equal(await store.queue.delete({ domain: 'page1.example' }), 2);
      assert.equal(await refcount(blob.hash), 3);
      assert.equal(await store.queue.delete({ sender: 'pager@queue.test' }), 3);
      assert.equal(await refcount(blob.hash), null);
      assert.deepEqual((await store.queue.events({ recipient: 'r4@page0.example' })).map((e) => e.event).at(-1), 'deleted');
      assert.equal(await store.queue.delete({ ids: [] }), 0);
    });
    it('finds mail by Message-ID, sender, recipient and time: local copies and queued recipients (trace search)', async () => {
      const n = Math.random().toString(36).slice(2);
      const data = Buffer.from(`Message-ID: <Trace-${n}@Queue.Test>\r\nSubject: Trace Me\r\n\r\nbody ${n}\r\n`);
      const d: NewDelivery = {
        ...mixed([a.id], { 't.example': ['r@t.example'] }),
        blob: { ...inline(data), structure: storedForm(parseMessage(data)) },
        envelopeFrom: `tracer-${n}@example.org`,
        received: true,
      };
      await store.mailboxes.deliver(d);
      const search = (q: Omit<TraceQuery, 'limit'>) => store.queue.traceSearch({ limit: 10, ...q });
      const [hit, ...rest] = await search({ messageId: `<Trace-${n}@Queue.Test>` });
      assert.deepEqual(rest, []);
      assert.deepEqual(hit, {
        ternId: d.ternId,
        at: hit!.at,
        sender: d.envelopeFrom,
        messageId: `Trace-${n}@Queue.Test`,
        subject: 'Trace Me',
        outbound: ['r@t.example'],
        local: ['a@queue.test'],
      });
      assert.ok(Math.abs(hit.at.getTime() - Date.now()) < 60_000);
      assert.equal((await search({ messageId: `Trace-${n}@Queue.Test` }))[0]?.ternId, d.ternId, 'without angle brackets too');
      assert.equal((await search({ sender: d.envelopeFrom }))[0]?.ternId, d.ternId);
      assert.equal((await search({ sender: d.envelopeFrom, recipient: 'r@t.example' }))[0]?.ternId, d.ternId);
      assert.equal((await search({ sender: d.envelopeFrom, recipient: 'a@queue.test' }))[0]?.ternId, d.ternId);
      assert.deepEqual(await search({ sender: d.envelopeFrom, recipient: 'nobody@t.example' }), []);
      assert.deepEqual(await search({ sender: d.envelopeFrom, since: new Date(Date.now() + 60_000) }), []);
      assert.deepEqual(await search({ sender: d.envelopeFrom, until: new Date(Date.now() - 60_000) }), []);
      const stored = (await store.queue.events({ ternId: d.ternId })).find((e) => e.event === 'stored');
      assert.deepEqual([stored?.recipient, stored?.queueId, stored?.reply, stored?.messageId], ['a@queue.test', 0, 'INBOX', `Trace-${n}@Queue.Test`]);
      // Newest first, and no more than asked.
      const again: NewDelivery = { ...mixed([a.id], { 't.example': ['r@t.example'] }), envelopeFrom: d.envelopeFrom };
      await store.mailboxes.deliver(again);
      assert.deepEqual(
        (await search({ sender: d.envelopeFrom })).map((h) => h.ternId),
        [again.ternId, d.ternId],
      );
      assert.deepEqual(
        (await store.queue.traceSearch({ sender: d.envelopeFrom, limit: 1 })).map((h) => h.ternId),
        [again.ternId],
      );
      // The events outlive the entries (the integrity check counts only mailbox references at the end).
      assert.equal(await store.queue.delete({ sender: d.envelopeFrom }), 2);
      assert.equal((await search({ messageId: `Trace-${n}@Queue.Test` }))[0]?.ternId, d.ternId);
    });
  });
}
