/**
 * Durability in the Store contract: commitSettings() must report what makes an acknowledged write durable.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import type { Store } from '../../../src/store/store.js';
import type { Fixture } from './support.js';

/** What commitSettings() must report: the settings that make an acknowledged write durable. */
const DURABLE_SETTINGS: Record<Store['kind'], Record<string, string>> = {
  sqlite: { journal_mode: 'wal', synchronous: 'FULL' },
  postgres: { synchronous_commit: 'on' },
};

export function durabilityContract(fx: Fixture): void {
  let store: Store;
  describe('durability', () => {
    before(() => {
      store = fx.store;
    });

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
}
