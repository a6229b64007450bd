/**
 * The Store contract suite: every backend runs exactly these tests (sqlite.test.ts,
 * postgres.test.ts), one section per Store part — directory, mailboxes, messages, blobs —
 * then durability, concurrency and integrity. One fresh store per run; each group works
 * in its own domain so the groups do not see each other's data. `inspect` reads the
 * database behind the store's back, only for what the Store API cannot show (reference
 * counts, staged chunks).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ConflictError, NotFoundError, QuotaExceededError, UserError } from '../../src/errors.js';
import {
  collect,
  DEFAULT_MAILBOXES,
  type Account,
  type BlobRef,
  type DeliveryOutcome,
  type DeliveryRecipient,
  type Mailbox,
  type NewDelivery,
  type Store,
} from '../../src/store/store.js';

export type Row = Record<string, unknown>;

export interface ContractOptions {
  /** Skip the whole suite with this reason (e.g. PostgreSQL unreachable and TERN_TEST_SKIP_PG=1). */
  skip?: string;
  /** Runs a read-only query on the store's database (`?` placeholders), bypassing the store. */
  inspect: (sql: string, params?: unknown[]) => Promise<Row[]>;
  /** Runs after the store is closed (e.g. drop the test database). */
  cleanup?: () => Promise<void>;
}

/** What commitSettings() must report: the settings that make an acknowledged write durable. */
const DURABLE_SETTINGS: Record<Store['kind'], Record<string, string>> = {
  sqlite: { journal_mode: 'wal', synchronous: 'FULL' },
  postgres: { synchronous_commit: 'on' },
};

const NO_SUCH_ACCOUNT = 987654321;
let sequence = 0;

export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** A distinct small message body. */
export function body(text = `Subject: test ${++sequence}\r\n\r\nbody ${sequence} ${Math.random()}\r\n`): Buffer {
  return Buffer.from(text);
}

export const inline = (data: Buffer): BlobRef => ({ hash: sha256(data), size: data.length, data });

/** The per-recipient trace prefix the tests store (any bytes will do; its length counts). */
export const prefixFor = (accountId: number): Buffer => Buffer.from(`Delivered-To: account-${accountId}@contract.test\r\n`);

/** A delivery of `blob` (a fresh small body by default) to the given accounts (or fully described recipients). */
export function delivery(recipients: Array<number | DeliveryRecipient>, opts: { blob?: BlobRef; atomic?: boolean } = {}): NewDelivery {
  return {
    ternId: `tern-${++sequence}-${Math.random().toString(36).slice(2)}`,
    blob: opts.blob ?? inline(body()),
    envelopeFrom: 'sender@example.org',
    recipients: recipients.map((r) => (typeof r === 'number' ? { accountId: r, prefix: prefixFor(r) } : r)),
    internalDate: new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)),
    atomic: opts.atomic ?? false,
  };
}

/** The tables and operations `everyKindOfWrite` changes (what a durability trigger should see). */
export const WRITES_SEEN = ['accounts INSERT', 'accounts UPDATE', 'messages DELETE', 'messages INSERT', 'messages UPDATE'];

/**
 * Runs one of each kind of write (account changes, deliveries inline and staged, APPEND,
 * flags, copy, move, expunge, account deletion) in `domain`, which must not exist yet.
 * Backend tests run it with triggers that record the durability setting in force inside
 * each committing transaction.
 */
export async function everyKindOfWrite(store: Store, domain: string): Promise<void> {
  await store.directory.addDomain(domain);
  const account = await store.directory.addAccount({ address: `w@${domain}`, passwordHash: 'h' });
  await store.directory.setQuota(`w@${domain}`, 10_000_000);
  await Promise.all(Array.from({ length: 10 }, () => store.mailboxes.deliver(delivery([account.id]))));
  const data = randomBytes(100_000);
  const upload = store.blobs.newUpload();
  await Promise.all([store.blobs.stage(upload, 0, data.subarray(0, 60_000)), store.blobs.stage(upload, 1, data.subarray(60_000))]);
  await store.mailboxes.deliver(delivery([account.id], { blob: { hash: sha256(data), size: data.length, upload } }));
  await store.mailboxes.deliver(delivery([{ accountId: account.id, prefix: Buffer.alloc(0), mailbox: 'Sent', flags: ['\\Seen'] }]));
  const inbox = (await store.mailboxes.get(account.id, 'INBOX'))!;
  const archive = (await store.mailboxes.get(account.id, 'Archive'))!;
  await store.mailboxes.setFlags(inbox.id, [1, 2, 3], 'add', ['\\Seen', 'Done']);
  await store.mailboxes.copy(inbox.id, [1, 2], archive.id);
  await store.mailboxes.copy(inbox.id, [3], archive.id, true);
  await store.mailboxes.expunge(inbox.id, [4, 5]);
  await store.directory.deleteAccount(`w@${domain}`);
}

type Stored = Extract<DeliveryOutcome, { status: 'stored' }>;

function stored(outcome: DeliveryOutcome | undefined): Stored {
  assert.ok(outcome && outcome.status === 'stored', `expected a stored outcome, got ${JSON.stringify(outcome)}`);
  return outcome;
}

export function storeContract(name: Store['kind'], open: () => Promise<Store>, options: ContractOptions): void {
  describe(`Store contract: ${name}`, { skip: options.skip }, () => {
    let store: Store;

    before(async () => {
      store = await open();
    });
    after(async () => {
      await store?.close();
      await options.cleanup?.();
    });

    // ---- helpers that need the store --------------------------------------------------

    const addAccount = (address: string, quotaBytes: number | null = null): Promise<Account> =>
      store.directory.addAccount({ address, passwordHash: 'hash', quotaBytes });

    const mailbox = async (accountId: number, name = 'INBOX'): Promise<Mailbox> => {
      const mb = await store.mailboxes.get(accountId, name);
      assert.ok(mb, `mailbox ${name} of account ${accountId} exists`);
      return mb;
    };

    const deliverOne = async (d: NewDelivery): Promise<Stored> => stored((await store.mailboxes.deliver(d))[0]);

    const usedBytes = async (address: string): Promise<number> => (await store.directory.getAccount(address))!.usedBytes;

    const refcount = async (hash: string): Promise<number | null> => {
      const [r] = await options.inspect('SELECT refcount FROM blobs WHERE hash = ?', [hash]);
      return r ? Number(r.refcount) : null;
    };
    const references = async (hash: string): Promise<number> =>
      Number((await options.inspect('SELECT count(*) AS n FROM messages WHERE blob_hash = ?', [hash]))[0]!.n);
    const stagedChunks = async (upload: string): Promise<number> =>
      Number((await options.inspect('SELECT count(*) AS n FROM blob_chunks WHERE upload = ?', [upload]))[0]!.n);

    const readMessage = async (messageId: number): Promise<Buffer> => collect(store.mailboxes.read(messageId));
    const readBlob = async (hash: string): Promise<Buffer | null> => {
      const chunks = await store.blobs.read(hash);
      return chunks ? collect(chunks) : null;
    };
    const collectBlob = async (hash: string): Promise<Buffer> => {
      const data = await readBlob(hash);
      assert.ok(data, `blob ${hash} exists`);
      return data;
    };

    /** Recomputes every counter of the account from its messages and compares with the maintained ones. */
    async function assertCounters(address: string): Promise<void> {
      const account = await store.directory.getAccount(address);
      assert.ok(account, `account ${address} exists`);
      let used = 0;
      for (const mb of await store.mailboxes.list(account.id)) {
        const messages = await store.mailboxes.messages(mb.id);
        const bytes = messages.reduce((n, m) => n + m.size, 0);
        const unseen = messages.filter((m) => !m.flags.includes('\\Seen')).length;
        assert.deepEqual(
          { messages: mb.messages, unseen: mb.unseen, bytes: mb.bytes },
          { messages: messages.length, unseen, bytes },
          `counters of ${address} ${mb.name}`,
        );
        for (const m of messages) {
          assert.ok(m.uid < mb.uidNext, `${address} ${mb.name}: uid ${m.uid} < uidNext ${mb.uidNext}`);
          assert.ok(m.modseq <= mb.highestModseq, `${address} ${mb.name}: modseq ${m.modseq} <= highestModseq ${mb.highestModseq}`);
        }
        used += bytes;
      }
      assert.equal(account.usedBytes, used, `used bytes of ${address}`);
    }

    /** Every blob's reference count equals the messages that use it. */
    async function assertRefcounts(hashes: string[]): Promise<void> {
      for (const hash of hashes) {
        const n = await references(hash);
        assert.equal(await refcount(hash), n === 0 ? null : n, `reference count of blob ${hash.slice(0, 12)}`);
      }
    }

    it('reports its kind', () => {
      assert.equal(store.kind, name);
    });

    // ---- directory ---------------------------------------------------------------------

    describe('directory', () => {
      describe('domains', () => {
        it('adds, lists and recognises domains', async () => {
          const d = await store.directory.addDomain('b-domains.test');
          assert.equal(d.name, 'b-domains.test');
          assert.ok(d.createdAt instanceof Date);
          await store.directory.addDomain('a-domains.test');
          const domains = await store.directory.listDomains();
          const names = domains.map((x) => x.name);
          assert.ok(names.indexOf('a-domains.test') < names.indexOf('b-domains.test'), 'listed in name order');
          assert.ok(domains.every((x) => x.createdAt instanceof Date));
          assert.equal(await store.directory.isLocalDomain('a-domains.test'), true);
          assert.equal(await store.directory.isLocalDomain('nowhere.test'), false);
        });

        it('refuses a duplicate domain with ConflictError', async () => {
          await assert.rejects(
            store.directory.addDomain('a-domains.test'),
            (err) => err instanceof ConflictError && err.message === 'domain a-domains.test already exists',
          );
        });

        it('refuses to delete a domain that has accounts or aliases', async () => {
          await store.directory.addDomain('busy-domains.test');
          await addAccount('u@busy-domains.test');
          await assert.rejects(store.directory.deleteDomain('busy-domains.test'), ConflictError);
          await store.directory.deleteAccount('u@busy-domains.test');
          await store.directory.addAlias('x@busy-domains.test', 'y@elsewhere.test');
          await assert.rejects(store.directory.deleteDomain('busy-domains.test'), /still has 0 account\(s\) and 1 alias\(es\)/);
          await store.directory.deleteAlias('x@busy-domains.test');
          await store.directory.deleteDomain('busy-domains.test');
          assert.equal(await store.directory.isLocalDomain('busy-domains.test'), false);
        });

        it('deletes a domain, and NotFoundError for a missing one', async () => {
          await store.directory.deleteDomain('b-domains.test');
          assert.ok(!(await store.directory.listDomains()).some((x) => x.name === 'b-domains.test'));
          await assert.rejects(
            store.directory.deleteDomain('b-domains.test'),
            (err) => err instanceof NotFoundError && /domain b-domains.test does not exist/.test(err.message),
          );
        });
      });

      describe('accounts', () => {
        before(async () => {
          await store.directory.addDomain('accounts.test');
        });

        it('adds an account with nothing used yet', async () => {
          const a = await store.directory.addAccount({ address: 'alice@accounts.test', passwordHash: 'h1', isAdmin: true, quotaBytes: 1_000_000 });
          assert.equal(typeof a.id, 'number');
          assert.equal(a.address, 'alice@accounts.test');
          assert.equal(a.isAdmin, true);
          assert.equal(a.quotaBytes, 1_000_000);
          assert.equal(a.usedBytes, 0);
          assert.ok(a.createdAt instanceof Date);
          assert.deepEqual(await store.directory.getAccount('alice@accounts.test'), a);
        });

        it('defaults isAdmin to false and quota to unlimited', async () => {
          const b = await store.directory.addAccount({ address: 'bob@accounts.test', passwordHash: 'h' });
          assert.equal(b.isAdmin, false);
          assert.equal(b.quotaBytes, null);
          assert.equal(b.usedBytes, 0);
        });

        it('lists accounts, all or by domain', async () => {
          await store.directory.addDomain('other-accounts.test');
          await addAccount('carol@other-accounts.test');
          const all = (await store.directory.listAccounts()).map((a) => a.address);
          assert.ok(['alice@accounts.test', 'bob@accounts.test', 'carol@other-accounts.test'].every((x) => all.includes(x)));
          assert.deepEqual(
            (await store.directory.listAccounts('accounts.test')).map((a) => a.address),
            ['alice@accounts.test', 'bob@accounts.test'],
          );
        });

        it('refuses a duplicate account and an unknown domain', async () => {
          await assert.rejects(
            addAccount('alice@accounts.test'),
            (err) => err instanceof ConflictError && err.message === 'account alice@accounts.test already exists',
          );
          await assert.rejects(addAccount('x@unknown-accounts.test'), NotFoundError);
          assert.equal(await store.directory.getAccount('nobody@accounts.test'), null);
          await assert.rejects(store.mailboxes.messagesOf('nobody@accounts.test'), NotFoundError);
        });

        it('gets and sets password hashes', async () => {
          assert.equal(await store.directory.getPasswordHash('alice@accounts.test'), 'h1');
          await store.directory.setPasswordHash('alice@accounts.test', 'h2');
          assert.equal(await store.directory.getPasswordHash('alice@accounts.test'), 'h2');
          assert.equal(await store.directory.getPasswordHash('nobody@accounts.test'), null);
          await assert.rejects(store.directory.setPasswordHash('nobody@accounts.test', 'h'), NotFoundError);
        });

        it('sets and clears a quota', async () => {
          await store.directory.setQuota('bob@accounts.test', 5000);
          assert.equal((await store.directory.getAccount('bob@accounts.test'))!.quotaBytes, 5000);
          await store.directory.setQuota('bob@accounts.test', null);
          assert.equal((await store.directory.getAccount('bob@accounts.test'))!.quotaBytes, null);
          await assert.rejects(store.directory.setQuota('nobody@accounts.test', 1), NotFoundError);
        });

        it('deletes an account with its mailboxes, messages and unreferenced blobs only', async () => {
          const doomed = await addAccount('doomed@accounts.test');
          const keeper = await addAccount('keeper@accounts.test');
          const own = delivery([doomed.id]);
          const shared = delivery([doomed.id, keeper.id]);
          await store.mailboxes.deliver(own);
          await store.mailboxes.deliver(shared);
          await store.mailboxes.subscribe(doomed.id, 'Gone');
          const before = await store.stats();
          await store.directory.deleteAccount('doomed@accounts.test');
          assert.equal(await store.directory.getAccount('doomed@accounts.test'), null);
          assert.deepEqual(await store.mailboxes.list(doomed.id), []);
          assert.deepEqual(await store.mailboxes.subscriptions(doomed.id), []);
          assert.equal(await readBlob(own.blob.hash), null);
          assert.deepEqual(await readBlob(shared.blob.hash), (shared.blob as { data: Buffer }).data);
          assert.deepEqual((await store.mailboxes.messagesOf('keeper@accounts.test')).map((m) => m.hash), [shared.blob.hash]);
          const afterStats = await store.stats();
          assert.equal(afterStats.messages, before.messages - 2);
          assert.equal(afterStats.blobs, before.blobs - 1);
          await assertRefcounts([own.blob.hash, shared.blob.hash]);
          await assert.rejects(
            store.directory.deleteAccount('doomed@accounts.test'),
            (err) => err instanceof NotFoundError && err.message === 'account doomed@accounts.test does not exist',
          );
        });
      });

      describe('aliases', () => {
        before(async () => {
          await store.directory.addDomain('aliases.test');
        });

        it('adds aliases, catch-all included, and resolves their targets', async () => {
          await store.directory.addAlias('team@aliases.test', 'b@elsewhere.test');
          await store.directory.addAlias('team@aliases.test', 'a@elsewhere.test');
          await store.directory.addAlias('@aliases.test', 'catch@elsewhere.test');
          assert.deepEqual(await store.directory.aliasTargets('team@aliases.test'), ['a@elsewhere.test', 'b@elsewhere.test']);
          assert.deepEqual(await store.directory.aliasTargets('@aliases.test'), ['catch@elsewhere.test']);
          assert.deepEqual(await store.directory.aliasTargets('nobody@aliases.test'), []);
          const mine = (await store.directory.listAliases()).filter((r) => r.address.endsWith('aliases.test'));
          assert.deepEqual(mine, [
            { address: '@aliases.test', target: 'catch@elsewhere.test' },
            { address: 'team@aliases.test', target: 'a@elsewhere.test' },
            { address: 'team@aliases.test', target: 'b@elsewhere.test' },
          ]);
        });

        it('refuses duplicates and unknown domains', async () => {
          await assert.rejects(
            store.directory.addAlias('team@aliases.test', 'a@elsewhere.test'),
            (err) => err instanceof ConflictError && err.message === 'alias team@aliases.test -> a@elsewhere.test already exists',
          );
          await assert.rejects(store.directory.addAlias('x@unknown-aliases.test', 'a@elsewhere.test'), NotFoundError);
          await assert.rejects(store.directory.addAlias('@unknown-aliases.test', 'a@elsewhere.test'), NotFoundError);
        });

        it('deletes one target, then all targets', async () => {
          await store.directory.deleteAlias('team@aliases.test', 'a@elsewhere.test');
          assert.deepEqual(await store.directory.aliasTargets('team@aliases.test'), ['b@elsewhere.test']);
          await assert.rejects(
            store.directory.deleteAlias('team@aliases.test', 'a@elsewhere.test'),
            (err) => err instanceof NotFoundError && err.message === 'alias team@aliases.test -> a@elsewhere.test does not exist',
          );
          await store.directory.addAlias('team@aliases.test', 'c@elsewhere.test');
          await store.directory.deleteAlias('team@aliases.test');
          assert.deepEqual(await store.directory.aliasTargets('team@aliases.test'), []);
          await assert.rejects(
            store.directory.deleteAlias('team@aliases.test'),
            (err) => err instanceof NotFoundError && err.message === 'alias team@aliases.test does not exist',
          );
          await store.directory.deleteAlias('@aliases.test');
          assert.deepEqual(await store.directory.aliasTargets('@aliases.test'), []);
        });
      });

      describe('settings', () => {
        it('gets, sets and overwrites settings', async () => {
          assert.equal(await store.directory.getSetting('contract.key'), null);
          await store.directory.setSetting('contract.key', 'one');
          assert.equal(await store.directory.getSetting('contract.key'), 'one');
          await store.directory.setSetting('contract.key', 'two');
          assert.equal(await store.directory.getSetting('contract.key'), 'two');
          await store.directory.setSetting('contract.empty', '');
          assert.equal(await store.directory.getSetting('contract.empty'), '');
        });

        it('initSetting keeps the first value and returns the value stored', async () => {
          assert.equal(await store.directory.initSetting('contract.init', 'first'), 'first');
          assert.equal(await store.directory.initSetting('contract.init', 'second'), 'first');
          assert.equal(await store.directory.getSetting('contract.init'), 'first');
          await store.directory.setSetting('contract.key', 'set');
          assert.equal(await store.directory.initSetting('contract.key', 'init'), 'set');
        });

        it('concurrent initSetting calls agree on one value', async () => {
          const values = await Promise.all(Array.from({ length: 20 }, (_, i) => store.directory.initSetting('contract.race', `node-${i}`)));
          assert.equal(new Set(values).size, 1, `all callers see one value, got ${[...new Set(values)].join(', ')}`);
          assert.equal(await store.directory.getSetting('contract.race'), values[0]);
        });
      });
    });

    // ---- mailboxes ---------------------------------------------------------------------

    describe('mailboxes', () => {
      let owner: Account;
      before(async () => {
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
          assert.ok(Number.isInteger(m.uidValidity) && m.uidValidity > 0 && m.uidValidity < 2 ** 32, `uidValidity ${m.uidValidity} is a 32-bit nz-number`);
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
        assert.deepEqual(names, [...names].sort((p, q) => Buffer.compare(Buffer.from(p), Buffer.from(q))), 'in byte order');
        const mailboxNames = new Set((await store.mailboxes.list(owner.id)).map((m) => m.name));
        assert.ok(!mailboxNames.has('Lists') && !mailboxNames.has('Never created'));
        // Subscriptions are per account.
        assert.ok(!(await store.mailboxes.subscriptions((await store.directory.getAccount('other@mailboxes.test'))!.id)).includes('Never created'));
      });
    });

    // ---- messages ----------------------------------------------------------------------

    describe('messages', () => {
      before(async () => {
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

        // The session dedupes accounts itself today, so this latent bug is not reachable from SMTP/LMTP (see the report on issue 5).
        const duplicateTodo = "src/store/sql/writes.ts deliver(): a repeated account's later recipients are answered 'gone'";
        it('stores one copy per account when several recipients lead to it, answering each', { todo: duplicateTodo }, async () => {
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
          await assert.rejects(
            store.mailboxes.deliver(delivery([{ accountId: a.id, prefix: Buffer.alloc(0), mailbox: 'No such mailbox' }])),
            NotFoundError,
          );
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
          assert.deepEqual(await Promise.all([store.stats(), store.mailboxes.list(roomy.id), store.mailboxes.list(full.id)]), before, 'counters unchanged');
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
            const sameSize = () => body(`Subject: quota\r\n\r\n${String(++sequence).padStart(12, '0')}${'x'.repeat(1000)}\r\n`);
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
          assert.deepEqual(seenOff.map((c) => c.flags), [[]]);
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
          assert.deepEqual(await store.mailboxes.setFlags(inbox.id, [u2, u3], 'replace', ['\\Flagged', 'Alpha', '\\Answered', 'zeta', '$Forwarded']), []);
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
          assert.deepEqual((await store.mailboxes.messages(inbox.id)).map((x) => x.uid), [outcomes[0]!.uid, o3.uid]);
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
          assert.deepEqual(tombstones.map((t) => t.uid), [originals[2]!.uid]);
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

    // ---- blobs -------------------------------------------------------------------------

    describe('blobs', () => {
      let x: Account;
      let y: Account;
      before(async () => {
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
        await store.mailboxes.expunge(lastY[0]!.mailboxId, lastY.map((msg) => msg.uid));
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

    // ---- durability --------------------------------------------------------------------

    describe('durability', () => {
      it('commits with the settings that make an acknowledged write durable', async () => {
        assert.deepEqual(await store.commitSettings(), DURABLE_SETTINGS[store.kind]);
      });

      it('still reports them after bulk staging (which may relax its own)', async () => {
        const upload = store.blobs.newUpload();
        await store.blobs.stage(upload, 0, randomBytes(1024));
        await store.blobs.discard(upload);
        assert.deepEqual(await store.commitSettings(), DURABLE_SETTINGS[store.kind]);
      });
    });

    // ---- concurrency -------------------------------------------------------------------

    describe('concurrency', () => {
      let burst: Account;
      before(async () => {
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
        const hashes = [...new Set([...(await store.mailboxes.messages(inbox.id)), ...(await store.mailboxes.messages(archive.id))].map((m) => m.hash))];
        await assertRefcounts(hashes.slice(0, 50));
      });
    });

    // ---- large operations --------------------------------------------------------------

    describe('large operations', () => {
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
        const expunged = await store.mailboxes.expunge(bulk.id, allUids.filter((u) => u % 3 !== 0));
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

    // ---- integrity ---------------------------------------------------------------------

    describe('integrity', () => {
      it('reports stats that agree with the store', async () => {
        const stats = await store.stats();
        assert.deepEqual(Object.keys(stats).sort(), ['accounts', 'blobs', 'domains', 'messages']);
        assert.equal(stats.domains, (await store.directory.listDomains()).length);
        const accounts = await store.directory.listAccounts();
        assert.deepEqual(
          stats.accounts.map((s) => [s.address, s.usedBytes]),
          accounts.map((a) => [a.address, a.usedBytes]),
        );
        assert.equal(stats.messages, stats.accounts.reduce((n, s) => n + s.messages, 0));
        const bob = stats.accounts.find((s) => s.address === 'bob@accounts.test');
        assert.deepEqual(bob, { address: 'bob@accounts.test', messages: 0, usedBytes: 0 });
        const burst = accounts.find((a) => a.address === 'burst@concurrency.test')!;
        const burstMessages = (await store.mailboxes.list(burst.id)).reduce((n, m) => n + m.messages, 0);
        assert.equal(stats.accounts.find((s) => s.address === burst.address)!.messages, burstMessages);
        assert.ok(stats.blobs > 0 && stats.blobs <= stats.messages);
        assert.equal(stats.blobs, Number((await options.inspect('SELECT count(*) AS n FROM blobs'))[0]!.n));
      });

      it('finds nothing wrong after all of the above', async () => {
        assert.deepEqual(await store.checkIntegrity(), []);
        const wrong = await options.inspect(
          'SELECT b.hash FROM blobs b WHERE b.refcount <> (SELECT count(*) FROM messages m WHERE m.blob_hash = b.hash) OR b.refcount <= 0',
        );
        assert.deepEqual(wrong, [], 'every blob is referenced exactly as counted');
      });
    });
  });
}
