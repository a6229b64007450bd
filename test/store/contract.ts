/**
 * The Store contract suite: every backend runs exactly these tests (sqlite.test.ts,
 * postgres.test.ts), one section per Store part — directory, mailboxes, messages, blobs,
 * queue (contract/*.ts) — then durability, concurrency and, last, integrity over everything the
 * sections left behind. One fresh store per run; each section works in its own domain so
 * the sections do not see each other's data. `inspect` reads the database behind the
 * store's back, only for what the Store API cannot show (reference counts, staged chunks).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Store } from '../../src/store/store.js';
import { blobsContract } from './contract/blobs.js';
import { concurrencyContract } from './contract/concurrency.js';
import { directoryContract } from './contract/directory.js';
import { imapContract } from './contract/imap.js';
import { durabilityContract } from './contract/durability.js';
import { integrityContract } from './contract/integrity.js';
import { mailboxesContract } from './contract/mailboxes.js';
import { messagesContract } from './contract/messages.js';
import { queueContract } from './contract/queue.js';
import { structuresContract } from './contract/structures.js';
import { webhooksContract } from './contract/webhooks.js';
import { guardContract } from './contract/guard.js';
import { importsContract } from './contract/imports.js';
import { createFixture, type Inspect } from './contract/support.js';

export { body, delivery, everyKindOfWrite, inline, sha256, WRITES_SEEN, type Row } from './contract/support.js';
export { backfillScenario } from './contract/structures.js';

export interface ContractOptions {
  /** Skip the whole suite with this reason (e.g. PostgreSQL unreachable and TERN_TEST_SKIP_PG=1). */
  skip?: string;
  /** Runs a read-only query on the store's database (`?` placeholders), bypassing the store. */
  inspect: Inspect;
  /** Runs after the store is closed (e.g. drop the test database). */
  cleanup?: () => Promise<void>;
}

export function storeContract(name: Store['kind'], open: () => Promise<Store>, options: ContractOptions): void {
  describe(`Store contract: ${name}`, { skip: options.skip }, () => {
    const fx = createFixture(options.inspect);
    let store: Store | undefined;
    before(async () => {
      store = await open();
      fx.open(store);
    });
    after(async () => {
      await store?.close();
      await options.cleanup?.();
    });

    it('reports its kind', () => {
      assert.equal(fx.store.kind, name);
    });

    directoryContract(fx);
    mailboxesContract(fx);
    messagesContract(fx);
    importsContract(fx);
    blobsContract(fx);
    queueContract(fx);
    webhooksContract(fx);
    guardContract(fx);
    structuresContract(fx);
    imapContract(fx);
    durabilityContract(fx);
    concurrencyContract(fx);
    integrityContract(fx);
  });
}
