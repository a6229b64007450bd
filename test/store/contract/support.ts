/**
 * Fixtures shared by the Store contract sections: message builders, and a Fixture holding
 * the store under test with helpers that check what the Store API promises (counters
 * recomputed from the messages, blob reference counts read behind the store's back).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  collect,
  type Account,
  type BlobRef,
  type DeliveryOutcome,
  type DeliveryRecipient,
  type Mailbox,
  type NewDelivery,
  type Store,
} from '../../../src/store/store.js';

export type Row = Record<string, unknown>;

/** Runs a read-only query on the store's database (`?` placeholders), bypassing the store. */
export type Inspect = (sql: string, params?: unknown[]) => Promise<Row[]>;

/** An account id no test ever creates. */
export const NO_SUCH_ACCOUNT = 987654321;

let sequence = 0;
export const nextSequence = (): number => ++sequence;

export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** A distinct small message body. */
export function body(text?: string): Buffer {
  const n = nextSequence();
  return Buffer.from(text ?? `Subject: test ${n}\r\n\r\nbody ${n} ${Math.random()}\r\n`);
}

export const inline = (data: Buffer): BlobRef => ({ hash: sha256(data), size: data.length, data });

/** The per-recipient trace prefix the tests store (any bytes will do; its length counts). */
export const prefixFor = (accountId: number): Buffer => Buffer.from(`Delivered-To: account-${accountId}@contract.test\r\n`);

/** A delivery of `blob` (a fresh small body by default) to the given accounts (or fully described recipients). */
export function delivery(recipients: Array<number | DeliveryRecipient>, opts: { blob?: BlobRef; atomic?: boolean } = {}): NewDelivery {
  return {
    ternId: `tern-${nextSequence()}-${Math.random().toString(36).slice(2)}`,
    blob: opts.blob ?? inline(body()),
    envelopeFrom: 'sender@example.org',
    recipients: recipients.map((r) => (typeof r === 'number' ? { accountId: r, prefix: prefixFor(r) } : r)),
    internalDate: new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)),
    atomic: opts.atomic ?? false,
  };
}

export type Stored = Extract<DeliveryOutcome, { status: 'stored' }>;

export function stored(outcome: DeliveryOutcome | undefined): Stored {
  assert.ok(outcome && outcome.status === 'stored', `expected a stored outcome, got ${JSON.stringify(outcome)}`);
  return outcome;
}

/** The store under test (set once it is open) and helpers bound to it. */
export interface Fixture {
  readonly store: Store;
  readonly inspect: Inspect;
  addAccount(address: string, quotaBytes?: number | null): Promise<Account>;
  /** The account's mailbox (INBOX by default); fails the test if it does not exist. */
  mailbox(accountId: number, name?: string): Promise<Mailbox>;
  /** Delivers and returns the first recipient's outcome, which must be 'stored'. */
  deliverOne(d: NewDelivery): Promise<Stored>;
  usedBytes(address: string): Promise<number>;
  /** The blob's reference count as stored, or null when there is no such blob. */
  refcount(hash: string): Promise<number | null>;
  /** Staged chunks under an upload id. */
  stagedChunks(upload: string): Promise<number>;
  readMessage(messageId: number): Promise<Buffer>;
  readBlob(hash: string): Promise<Buffer | null>;
  collectBlob(hash: string): Promise<Buffer>;
  /** Recomputes every counter of the account from its messages and compares with the maintained ones. */
  assertCounters(address: string): Promise<void>;
  /** Each blob's reference count equals the messages and queue entries that use it (no row when none do). */
  assertRefcounts(hashes: string[]): Promise<void>;
}

export function createFixture(inspect: Inspect): Fixture & { open(store: Store): void } {
  let current: Store | undefined;
  const store = (): Store => {
    assert.ok(current, 'the store is open');
    return current;
  };
  const readBlob = async (hash: string): Promise<Buffer | null> => {
    const chunks = await store().blobs.read(hash);
    return chunks ? collect(chunks) : null;
  };
  const refcount = async (hash: string): Promise<number | null> => {
    const [r] = await inspect('SELECT refcount FROM blobs WHERE hash = ?', [hash]);
    return r ? Number(r.refcount) : null;
  };

  return {
    open(s) {
      current = s;
    },
    get store() {
      return store();
    },
    inspect,
    addAccount: (address, quotaBytes = null) => store().directory.addAccount({ address, passwordHash: 'hash', quotaBytes }),
    async mailbox(accountId, name = 'INBOX') {
      const mb = await store().mailboxes.get(accountId, name);
      assert.ok(mb, `mailbox ${name} of account ${accountId} exists`);
      return mb;
    },
    deliverOne: async (d) => stored((await store().mailboxes.deliver(d))[0]),
    usedBytes: async (address) => (await store().directory.getAccount(address))!.usedBytes,
    refcount,
    stagedChunks: async (upload) => Number((await inspect('SELECT count(*) AS n FROM blob_chunks WHERE upload = ?', [upload]))[0]!.n),
    readMessage: (messageId) => collect(store().mailboxes.read(messageId)),
    readBlob,
    async collectBlob(hash) {
      const data = await readBlob(hash);
      assert.ok(data, `blob ${hash} exists`);
      return data;
    },
    async assertCounters(address) {
      const account = await store().directory.getAccount(address);
      assert.ok(account, `account ${address} exists`);
      let used = 0;
      for (const mb of await store().mailboxes.list(account.id)) {
        const messages = await store().mailboxes.messages(mb.id);
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
    },
    async assertRefcounts(hashes) {
      for (const hash of hashes) {
        const [r] = await inspect('SELECT (SELECT count(*) FROM messages WHERE blob_hash = ?) + (SELECT count(*) FROM queue WHERE blob_hash = ?) AS n', [
          hash,
          hash,
        ]);
        const n = Number(r!.n);
        assert.equal(await refcount(hash), n === 0 ? null : n, `reference count of blob ${hash.slice(0, 12)}`);
      }
    },
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
