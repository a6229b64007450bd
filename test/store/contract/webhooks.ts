/**
 * The webhooks part of the Store contract: subscriptions, and the outbox filled in the
 * transaction of each event (a received copy, a queue settle) for the subscribers of that
 * event and domain only; leases, attempts, the delivery log, purging, and a domain taking
 * its webhooks with it.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { NotFoundError } from '../../../src/errors.js';
import type { Account, Store, WebhookEvent } from '../../../src/store/store.js';
import { delivery, type Fixture } from './support.js';

export function webhooksContract(fx: Fixture): void {
  let store: Store;
  let a: Account;
  let b: Account;
  const hook = (id: string, events: WebhookEvent[], domain: string | null) =>
    store.webhooks.add({ id, url: `https://hooks.test/${id}`, events, secret: `s-${id}`, domain, description: '' });
  /** Every delivery owed to `id`, oldest first. */
  const owed = async (id: string) => (await store.webhooks.deliveries(id, { limit: 1000 })).reverse();

  describe('webhooks', () => {
    before(async () => {
      store = fx.store;
      await store.directory.addDomain('hooks-a.test');
      await store.directory.addDomain('hooks-b.test');
      a = await fx.addAccount('u@hooks-a.test');
      b = await fx.addAccount('u@hooks-b.test');
    });

    it('adds, lists, updates and deletes subscriptions', async () => {
      const w = await hook('aaaaaaaaaaa1', ['message.received', 'message.bounced'], 'hooks-a.test');
      assert.deepEqual([w.events, w.domain, w.enabled], [['message.received', 'message.bounced'], 'hooks-a.test', true]);
      await assert.rejects(hook('aaaaaaaaaaa2', ['message.received'], 'nowhere.test'), NotFoundError);
      assert.deepEqual(
        (await store.webhooks.list('hooks-a.test')).map((x) => x.id),
        ['aaaaaaaaaaa1'],
      );
      const changed = await store.webhooks.update('aaaaaaaaaaa1', { events: ['message.delivered'], enabled: false, url: 'https://hooks.test/new' });
      assert.deepEqual([changed.events, changed.enabled, changed.url], [['message.delivered'], false, 'https://hooks.test/new']);
      await store.webhooks.delete('aaaaaaaaaaa1');
      assert.equal(await store.webhooks.get('aaaaaaaaaaa1'), null);
      await assert.rejects(store.webhooks.delete('aaaaaaaaaaa1'), NotFoundError);
      await assert.rejects(store.webhooks.update('aaaaaaaaaaa1', { enabled: true }), NotFoundError);
    });

    it('owes message.received for each copy received, to the subscribers of its domain, in the delivery’s commit', async () => {
      await hook('bbbbbbbbbbb1', ['message.received'], 'hooks-a.test');
      await hook('bbbbbbbbbbb2', ['message.received'], null);
      await hook('bbbbbbbbbbb3', ['message.delivered'], null);
      const d = { ...delivery([a.id, b.id]), received: true };
      const outcomes = await store.mailboxes.deliver(d);
      const appended = await store.mailboxes.deliver(delivery([a.id])); // an APPEND: not received mail
      assert.equal(appended[0]!.status, 'stored');
      const messageIds = outcomes.map((o) => (o.status === 'stored' ? o.messageId : 0));
      assert.deepEqual(
        (await owed('bbbbbbbbbbb1')).map((x) => [x.event, JSON.parse(x.payload) as unknown, x.state, x.attempts]),
        [['message.received', { messageId: messageIds[0] }, 'pending', 0]],
      );
      assert.deepEqual(
        (await owed('bbbbbbbbbbb2')).map((x) => JSON.parse(x.payload) as unknown),
        messageIds.map((messageId) => ({ messageId })),
      );
      assert.deepEqual(await owed('bbbbbbbbbbb3'), []);
      const m = await store.webhooks.receivedMessage(messageIds[0]!);
      assert.deepEqual([m?.address, m?.mailbox, m?.ternId, m?.envelopeFrom], ['u@hooks-a.test', 'INBOX', d.ternId, 'sender@example.org']);
      assert.equal(await store.webhooks.receivedMessage(2 ** 40), null);
    });

    it('owes the outcome of each remote recipient to the subscribers of the sender’s domain', async () => {
      await hook('ccccccccccc1', ['message.delivered', 'message.deferred', 'message.bounced', 'message.failed'], 'hooks-a.test');
      await hook('ccccccccccc2', ['message.delivered'], 'hooks-b.test');
      const d = {
        ...delivery([]),
        envelopeFrom: 'u@hooks-a.test',
        outbound: {
          prefix: Buffer.from('X: y\r\n'),
          domains: [{ domain: 'far.test', recipients: ['ok', 'later', 'no', 'gone'].map((x) => ({ address: `${x}@far.test` })) }],
        },
      };
      await store.mailboxes.deliver(d);
      const [entry] = (await store.queue.claim('w', { limit: 1000, leaseMs: 60_000, now: new Date(Date.now() + 60_000) })).filter((e) => e.ternId === d.ternId);
      await store.queue.settle(
        entry!.id,
        [
          { address: 'ok@far.test', status: 'delivered', reply: '250 ok' },
          { address: 'later@far.test', status: 'deferred', reply: '451 later' },
          { address: 'no@far.test', status: 'failed', reply: '550 5.1.1 no such user' },
          { address: 'gone@far.test', status: 'failed', reply: 'no MX for far.test' },
        ],
        new Date(Date.now() + 600_000),
      );
      const got = (await owed('ccccccccccc1')).map((x) => [x.event, (JSON.parse(x.payload) as { recipient: string }).recipient]);
      assert.deepEqual(got, [
        ['message.delivered', 'ok@far.test'],
        ['message.deferred', 'later@far.test'],
        ['message.bounced', 'no@far.test'],
        ['message.failed', 'gone@far.test'],
      ]);
      const payload = JSON.parse((await owed('ccccccccccc1'))[0]!.payload) as Record<string, unknown>;
      assert.deepEqual(payload, {
        id: d.ternId,
        queueId: entry!.id,
        sender: 'u@hooks-a.test',
        recipient: 'ok@far.test',
        destination: 'far.test',
        reply: '250 ok',
        attempt: 1,
      });
      assert.deepEqual(await owed('ccccccccccc2'), [], 'another domain’s webhook hears nothing');
      await store.queue.delete({ ids: [entry!.id] });
    });

    it('leases owed deliveries, records attempts, keeps the log, purges what is settled', async () => {
      await hook('ddddddddddd1', ['message.received'], null);
      const first = await store.webhooks.enqueue('ddddddddddd1', 'test', '{"n":1}');
      const second = await store.webhooks.enqueue('ddddddddddd1', 'test', '{"n":2}');
      await assert.rejects(store.webhooks.enqueue('000000000000', 'test', '{}'), NotFoundError);
      // Claims see every due delivery of every enabled webhook (those of the other tests too).
      const claimed = (await store.webhooks.claim({ limit: 1000, leaseMs: 60_000 })).filter((x) => x.webhookId === 'ddddddddddd1');
      assert.deepEqual(
        claimed.map((x) => [x.id, x.url, x.secret]),
        [
          [first, 'https://hooks.test/ddddddddddd1', 's-ddddddddddd1'],
          [second, 'https://hooks.test/ddddddddddd1', 's-ddddddddddd1'],
        ],
      );
      assert.deepEqual(
        (await store.webhooks.claim({ limit: 1000, leaseMs: 60_000 })).filter((x) => x.webhookId === 'ddddddddddd1'),
        [],
        'leased',
      );
      await store.webhooks.settle(first, { delivered: true, status: 200, error: null, retryAt: null });
      const retryAt = new Date(Date.now() + 30_000);
      await store.webhooks.settle(second, { delivered: false, status: 500, error: 'HTTP 500', retryAt });
      let log = await store.webhooks.deliveries('ddddddddddd1', { limit: 10 });
      assert.deepEqual(
        log.map((x) => [x.id, x.state, x.attempts, x.lastStatus, x.lastError, x.finishedAt === null]),
        [
          [second, 'pending', 1, 500, 'HTTP 500', true],
          [first, 'delivered', 1, 200, null, false],
        ],
      );
      assert.equal(log[0]!.nextAttemptAt.getTime(), retryAt.getTime());
      assert.deepEqual(
        (await store.webhooks.deliveries('ddddddddddd1', { before: second, limit: 10 })).map((x) => x.id),
        [first],
      );
      const due = (await store.webhooks.claim({ limit: 1000, leaseMs: 60_000, now: new Date(retryAt.getTime() + 1) })).filter(
        (x) => x.webhookId === 'ddddddddddd1',
      );
      assert.deepEqual(
        due.map((x) => x.id),
        [second],
      );
      await store.webhooks.settle(second, { delivered: false, status: null, error: 'refused', retryAt: null });
      assert.equal((await store.webhooks.deliveries('ddddddddddd1', { limit: 1 }))[0]!.state, 'failed');
      // A paused webhook is not claimed; what it is owed waits.
      const third = await store.webhooks.enqueue('ddddddddddd1', 'test', '{"n":3}');
      await store.webhooks.update('ddddddddddd1', { enabled: false });
      assert.ok(!(await store.webhooks.claim({ limit: 1000, leaseMs: 60_000 })).some((x) => x.id === third));
      await store.webhooks.update('ddddddddddd1', { enabled: true });
      assert.ok((await store.webhooks.claim({ limit: 1000, leaseMs: 60_000 })).some((x) => x.id === third));
      assert.ok((await store.webhooks.purge(new Date(Date.now() + 1000))) >= 2);
      log = await store.webhooks.deliveries('ddddddddddd1', { limit: 10 });
      assert.deepEqual(
        log.map((x) => x.id),
        [third],
        'only what is still owed stays',
      );
    });

    it('deletes a domain’s webhooks, with what they are owed, with the domain', async () => {
      await store.directory.addDomain('hooks-gone.test');
      await hook('eeeeeeeeeee1', ['message.received'], 'hooks-gone.test');
      await store.webhooks.enqueue('eeeeeeeeeee1', 'test', '{}');
      await store.directory.deleteDomain('hooks-gone.test');
      assert.equal(await store.webhooks.get('eeeeeeeeeee1'), null);
      assert.deepEqual(await store.webhooks.deliveries('eeeeeeeeeee1', { limit: 10 }), []);
      // Leave nothing subscribed for the sections that follow.
      for (const w of await store.webhooks.list()) await store.webhooks.delete(w.id);
    });
  });
}
