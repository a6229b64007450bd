/**
 * Scheduled backups (store/transfer/scheduled.ts) on a real store: one archive per period
 * whichever node asks first, the oldest removed beyond `backup_keep`, listed by
 * `tern backup list`, and settings the schedule could not use refused.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/log.js';
import { openStore } from '../../src/store/open.js';
import { readManifest } from '../../src/store/transfer/archive.js';
import { BackupSchedule, validateBackupSetting } from '../../src/store/transfer/scheduled.js';
import { cli, createSite, tempDir } from '../helpers/tern.js';

describe('scheduled backups', () => {
  it('takes one backup per period on one node, and keeps the newest backup_keep', async () => {
    const site = await createSite();
    const dir = join(tempDir('tern-scheduled-'), 'backups');
    const store = await openStore({ dataDir: site.dataDir });
    try {
      assert.equal(await new BackupSchedule(store, { dataDir: site.dataDir }, createLogger('error')).runDue(), null, 'off while backup_dir is unset');
      await store.directory.setSetting('backup_dir', dir);
      await store.directory.setSetting('backup_interval', '1h');
      await store.directory.setSetting('backup_keep', '2');
      let now = Date.parse('2026-03-01T10:15:00Z');
      const nodes = [0, 1].map(() => new BackupSchedule(store, { dataDir: site.dataDir }, createLogger('error'), () => now));
      const first = await nodes[0]!.runDue();
      assert.ok(first);
      assert.equal(readManifest(first).manifest.kind, 'backup');
      assert.equal(await nodes[1]!.runDue(), null, 'the other node does not take the same period again');
      assert.equal(await nodes[0]!.runDue(), null);
      for (const node of [nodes[1]!, nodes[0]!]) {
        now += 3600_000;
        assert.ok(await node.runDue());
      }
      const kept = readdirSync(dir).sort();
      assert.deepEqual(kept, ['tern-2026-03-01T11-15-00-000Z.tern', 'tern-2026-03-01T12-15-00-000Z.tern']);
    } finally {
      await store.close();
    }
    const listed = JSON.parse(await cli(['backup', 'list', '--json', ...site.args])) as Array<{ file: string; kind: string; ok: boolean }>;
    assert.deepEqual(
      listed.map((b) => [b.file, b.kind, b.ok]),
      [
        [join(dir, 'tern-2026-03-01T12-15-00-000Z.tern'), 'backup', true],
        [join(dir, 'tern-2026-03-01T11-15-00-000Z.tern'), 'backup', true],
      ],
    );
  });

  it('refuses settings the schedule could not use', () => {
    assert.throws(() => validateBackupSetting('backup_dir', 'relative/dir'), /absolute directory/);
    assert.throws(() => validateBackupSetting('backup_interval', '30s'), /at least 1m/);
    assert.throws(() => validateBackupSetting('backup_interval', 'daily'), /expected a duration/);
    assert.throws(() => validateBackupSetting('backup_keep', '0'), /between 1/);
    assert.equal(validateBackupSetting('backup_interval', ' 6h '), '6h');
  });
});
