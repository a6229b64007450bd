/**
 * Whole sites in and out of the archive (archive.ts): `tern backup` and `tern export` write
 * one from a consistent snapshot of either backend while the server keeps serving;
 * `tern restore` and `tern import` fill an empty SQLite file or PostgreSQL database from
 * one, all or nothing; the store takes one before it upgrades an existing site's schema.
 */
import { fsyncPath, syncingWriteStream } from '../../fsync.js';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { UserError } from '../../errors.js';
import { dbTarget, type DbTarget } from '../target.js';
import { POSTGRES_SCHEMA } from '../postgres/index.js';
import { SQLITE_SCHEMA } from '../sqlite/index.js';
import { ArchiveError, ArchiveWriter, readFrames, readManifest, type ArchiveKind, type Manifest } from './archive.js';
import { openPostgresSink, openPostgresSource } from './postgres-site.js';
import type { SiteSink, SiteSource } from './site.js';
import { openSqliteSink, openSqliteSource } from './sqlite-site.js';

export { ArchiveError, readFrames, readManifest, type Manifest } from './archive.js';

/** The schema this Tern writes and reads. */
export const SITE_SCHEMA = Math.min(SQLITE_SCHEMA, POSTGRES_SCHEMA);
const TERN = 'tern 0.1.0';

export interface SiteLocation {
  dataDir: string;
  dbUrl?: string;
}

/** How far a long job has come: rows and bytes done, and the totals when known. */
export interface SiteProgress {
  rows: number;
  totalRows: number;
  bytes: number;
  totalBytes: number;
}
export type OnProgress = (p: SiteProgress) => void;

/** Data-dir files a site takes with it: the TLS certificate and key (ACME's or the self-signed one). */
const SITE_FILES_DIR = 'tls';

function siteFiles(dataDir: string): Array<{ rel: string; abs: string; mode: number }> {
  const dir = path.join(dataDir, SITE_FILES_DIR);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => n.endsWith('.pem'))
    .map((n) => ({ rel: `${SITE_FILES_DIR}/${n}`, abs: path.join(dir, n), mode: statSync(path.join(dir, n)).mode & 0o777 }));
}

/** Writes `file` through `fill`, as `file.partial` renamed into place once it is complete and synced: never a half-written archive under the real name. */
async function writeArchiveFile(file: string, fill: (w: ArchiveWriter) => Promise<Manifest>): Promise<Manifest> {
  const dir = path.dirname(path.resolve(file));
  if (!existsSync(dir)) throw new UserError(`cannot write ${file}: directory ${dir} does not exist`);
  const partial = `${file}.partial`;
  let fd: number;
  try {
    fd = openSync(partial, 'w', 0o600);
  } catch (err) {
    throw new UserError(`cannot write ${file}: ${(err as Error).message}`);
  }
  const out = syncingWriteStream(fd);
  let open = true;
  try {
    const manifest = await fill(new ArchiveWriter(out));
    out.end();
    await once(out, 'finish');
    fsyncSync(fd);
    open = false;
    closeSync(fd);
    renameSync(partial, file);
    await fsyncPath(dir);
    return manifest;
  } catch (err) {
    out.destroy();
    if (open) closeSync(fd);
    rmSync(partial, { force: true });
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw new UserError(`cannot write ${file}: the disk is full`);
    throw err;
  }
}

async function openSource(target: DbTarget): Promise<SiteSource> {
  return target.backend === 'sqlite' ? openSqliteSource(target.file) : openPostgresSource(target.url);
}

/** Writes the site at `from` to the archive `file`, from one consistent snapshot, while the site keeps serving. */
export async function exportSite(from: SiteLocation, file: string, o: { kind?: ArchiveKind; onProgress?: OnProgress } = {}): Promise<Manifest> {
  const source = await openSource(dbTarget(from));
  try {
    if (source.schema === 0) throw new UserError('there is no site to export: the database is empty');
    let totalRows = 0;
    for (const t of source.tables) totalRows += await source.count(t);
    const progress: SiteProgress = { rows: 0, totalRows, bytes: 0, totalBytes: 0 };
    return await writeArchiveFile(file, async (w) => {
      for (const table of source.tables) {
        let started = false;
        for await (const batch of source.rows(table)) {
          if (!started) await w.table(table, batch.columns);
          started = true;
          for (const row of batch.rows) await w.row(row);
          progress.rows += batch.rows.length;
          progress.bytes = w.bytes;
          o.onProgress?.(progress);
        }
      }
      for (const f of siteFiles(from.dataDir)) await w.file(f.rel, f.mode, readFileSync(f.abs));
      return w.finish({ kind: o.kind ?? 'export', schema: source.schema, backend: source.backend, tern: TERN });
    });
  } finally {
    await source.close();
  }
}

async function openSink(target: DbTarget): Promise<SiteSink> {
  if (target.backend === 'postgres') return openPostgresSink(target.url);
  const dir = path.dirname(path.resolve(target.file));
  mkdirSync(dir, { recursive: true });
  return openSqliteSink(target.file);
}

/**
 * Fills the empty site at `to` from the archive `file`. Nothing is kept unless the whole
 * archive reads back intact (checksum, every table's count and digest); the data-dir
 * files it holds (TLS) are written only where none exist.
 */
export async function importSite(to: SiteLocation, file: string, o: { onProgress?: OnProgress } = {}): Promise<Manifest> {
  const { manifest } = readManifest(file);
  if (manifest.schema > SITE_SCHEMA)
    throw new ArchiveError(`${file} holds a site at schema ${manifest.schema}, newer than this Tern knows (${SITE_SCHEMA}): upgrade Tern`);
  const sink = await openSink(dbTarget(to));
  const files: Array<{ path: string; mode: number; data: Buffer }> = [];
  const totalRows = Object.values(manifest.tables).reduce((n, t) => n + t.rows, 0);
  const progress: SiteProgress = { rows: 0, totalRows, bytes: 0, totalBytes: manifest.compressedBytes };
  try {
    await sink.begin(manifest.schema);
    for await (const f of readFrames(file, (n) => (progress.bytes = n))) {
      if (f.type === 'table') await sink.table(f.name, f.columns);
      else if (f.type === 'row') {
        await sink.row(f.values);
        if (++progress.rows % 500 === 0) o.onProgress?.(progress);
      } else files.push(f);
    }
    await sink.commit();
  } catch (err) {
    await sink.abort();
    throw err;
  }
  o.onProgress?.(progress);
  for (const f of files) {
    const dest = path.join(to.dataDir, f.path);
    if (!f.path.startsWith(`${SITE_FILES_DIR}/`) || f.path.includes('..') || existsSync(dest)) continue;
    mkdirSync(path.dirname(dest), { recursive: true, mode: 0o700 });
    writeFileSync(dest, f.data, { mode: f.mode });
  }
  return manifest;
}

/** Reads the whole archive and checks it, writing nothing. */
export async function verifyArchive(file: string, o: { onProgress?: OnProgress } = {}): Promise<Manifest> {
  const { manifest } = readManifest(file);
  const progress: SiteProgress = { rows: 0, totalRows: 0, bytes: 0, totalBytes: manifest.compressedBytes };
  for await (const f of readFrames(file, (n) => (progress.bytes = n))) if (f.type === 'row' && ++progress.rows % 1000 === 0) o.onProgress?.(progress);
  o.onProgress?.(progress);
  return manifest;
}

/** Where automatic snapshots go: `<data>/snapshots`. */
export const snapshotDir = (dataDir: string) => path.join(dataDir, 'snapshots');

/** The snapshot the store takes before upgrading an existing site's schema; returns its path. */
export async function upgradeSnapshot(at: SiteLocation, from: number, to: number): Promise<string> {
  const dir = snapshotDir(at.dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `pre-upgrade-schema${from}-to-${to}-${new Date().toISOString().replace(/[:.]/g, '-')}.tern`);
  await exportSite(at, file, { kind: 'snapshot' });
  return file;
}
