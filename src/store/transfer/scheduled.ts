/**
 * Scheduled backups, set by three database settings so every node follows the same
 * policy: `backup_dir` (off when unset), `backup_interval` (a duration, default 24h) and
 * `backup_keep` (archives kept, default 7). The queue role checks every minute; when a
 * period of `backup_interval` has begun with no backup, one node claims it (a counter in
 * the store, so several nodes never both write it) and writes `tern-<time>.tern` into the
 * directory in a worker thread, then deletes the oldest beyond `backup_keep`. A backup that
 * fails gives its claim back, so the next check (on any node) tries again; one cut short by
 * a node's death or shutdown is not retried until the next period.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseDuration, parseInteger } from '../../config/parse.js';
import { UserError } from '../../errors.js';
import type { Logger } from 'pino';
import type { Store } from '../store.js';
import { WorkerClient } from '../../worker-client.js';
import type { Manifest, SiteLocation } from './index.js';

export const BACKUP_DIR_SETTING = 'backup_dir';
export const BACKUP_INTERVAL_SETTING = 'backup_interval';
export const BACKUP_KEEP_SETTING = 'backup_keep';
const DEFAULT_INTERVAL = '24h';
const DEFAULT_KEEP = 7;
const MIN_INTERVAL_MS = 60_000;
const CHECK_EVERY_MS = 60_000;

export interface BackupPolicy {
  dir: string;
  intervalMs: number;
  keep: number;
}

/** Checks a setting's value, so `tern setting set` refuses what the schedule could not use. */
export function validateBackupSetting(key: string, value: string): string {
  if (key === BACKUP_DIR_SETTING && !path.isAbsolute(value)) throw new UserError(`${key}: expected an absolute directory path, got ${JSON.stringify(value)}`);
  if (key === BACKUP_INTERVAL_SETTING && parseDuration(key, value) < MIN_INTERVAL_MS) throw new UserError(`${key}: must be at least 1m`);
  if (key === BACKUP_KEEP_SETTING) parseInteger(key, value, 1, 10_000);
  return value.trim();
}

export async function backupPolicy(store: Store): Promise<BackupPolicy | null> {
  const dir = await store.directory.getSetting(BACKUP_DIR_SETTING);
  if (!dir) return null;
  const interval = (await store.directory.getSetting(BACKUP_INTERVAL_SETTING)) ?? DEFAULT_INTERVAL;
  const keep = await store.directory.getSetting(BACKUP_KEEP_SETTING);
  return {
    dir,
    intervalMs: Math.max(MIN_INTERVAL_MS, parseDuration(BACKUP_INTERVAL_SETTING, interval)),
    keep: keep ? parseInteger(BACKUP_KEEP_SETTING, keep, 1) : DEFAULT_KEEP,
  };
}

/** The scheduled archives in `dir`, oldest first (their names sort by time). */
const archivesIn = (dir: string) =>
  readdirSync(dir)
    .filter((n) => /^tern-.*\.tern$/.test(n))
    .sort();

export class BackupSchedule {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  /** The thread backups are written on (backup-worker.ts). */
  private readonly thread = new WorkerClient(
    new URL('./backup-worker.js', import.meta.url),
    undefined,
    (why) => new Error(`the backup thread stopped: ${why}`),
    'while-busy',
  );

  constructor(
    private readonly store: Store,
    private readonly at: SiteLocation,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    const tick = () => {
      this.running ??= this.runDue()
        .then(() => undefined)
        .catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'scheduled backup failed'))
        .finally(() => (this.running = null));
    };
    this.timer = setInterval(tick, CHECK_EVERY_MS);
    this.timer.unref();
    setTimeout(tick, 5_000).unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    // A backup in progress is abandoned (its partial file removed); the period is taken again after a restart.
    await this.thread.close();
    await this.running;
  }

  /** Takes this period's backup when it is due and this node claims it; returns the file written. */
  async runDue(): Promise<string | null> {
    const policy = await backupPolicy(this.store);
    if (!policy) return null;
    const period = Math.floor(this.now() / policy.intervalMs);
    // One claim per period and interval: the first node to count it takes the backup.
    const claim = `backup_claim:${policy.intervalMs}:${period}`;
    if ((await this.store.directory.addToSetting(claim, 1)) !== 1) return null;
    mkdirSync(policy.dir, { recursive: true, mode: 0o700 });
    const file = path.join(policy.dir, `tern-${new Date(this.now()).toISOString().replace(/[:.]/g, '-')}.tern`);
    const started = Date.now();
    let manifest: Manifest;
    try {
      const answer = await this.thread.request({ at: this.at, file });
      if (!answer.ok) throw new Error(String(answer.error));
      manifest = answer.manifest as Manifest;
    } catch (err) {
      // Given back, so the next check (on any node) tries again.
      rmSync(`${file}.partial`, { force: true });
      await this.store.directory.deleteSetting(claim).catch(() => undefined);
      throw err;
    }
    this.log.info(
      { file, messages: manifest.tables.messages?.rows ?? 0, bytes: manifest.compressedBytes, ms: Date.now() - started },
      'scheduled backup written',
    );
    const all = archivesIn(policy.dir);
    for (const old of all.slice(0, Math.max(0, all.length - policy.keep))) rmSync(path.join(policy.dir, old), { force: true });
    // The claims of earlier periods are not needed any more.
    for (const { key } of await this.store.directory.listSettings('backup_claim:'))
      if (key !== claim) await this.store.directory.deleteSetting(key).catch(() => undefined);
    return file;
  }
}
