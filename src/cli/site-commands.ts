/**
 * Whole sites as one file (store/transfer): `tern backup FILE` and `tern export FILE` write
 * a consistent snapshot while the server keeps serving, `tern restore FILE` and
 * `tern import FILE` fill an empty site from one (`tern restore FILE --account A` brings
 * one account's mail back into a running site instead), `tern backup verify|list`.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { restoreMail } from '../admin/restore.js';
import { parseInteger } from '../config/parse.js';
import { UserError } from '../errors.js';
import { exportSite, importSite, readManifest, snapshotDir, verifyArchive, type Manifest, type OnProgress } from '../store/transfer/index.js';
import { dataDir, printJson, printTable, withStore, type GlobalOptions } from './context.js';
import { createProgress } from './progress.js';

/** `--json` given after a subcommand of `backup` is taken by `backup` itself. */
const jsonOf = (cmd: Command) => cmd.parent?.opts<{ json?: boolean }>().json;
const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
const rowsOf = (m: Manifest) => Object.values(m.tables).reduce((n, t) => n + t.rows, 0);

/** What the JSON summaries print: the manifest without per-table digests, plus how long it took. */
function summary(file: string, m: Manifest, ms: number) {
  return {
    file,
    kind: m.kind,
    schema: m.schema,
    backend: m.backend,
    createdAt: m.createdAt,
    rows: rowsOf(m),
    tables: Object.fromEntries(Object.entries(m.tables).map(([k, v]) => [k, v.rows])),
    messages: m.tables.messages?.rows ?? 0,
    bytes: m.bytes,
    compressedBytes: m.compressedBytes,
    sha256: m.sha256,
    seconds: ms / 1000,
  };
}

async function run(what: string, o: { json?: boolean }, work: (onProgress: OnProgress) => Promise<Manifest>, file: string) {
  const started = Date.now();
  const progress = createProgress(what, { json: o.json, unit: 'rows' });
  let m: Manifest;
  try {
    m = await work((p) => progress.set(p.rows, p.bytes, p.totalRows || undefined));
  } finally {
    progress.finish();
  }
  const s = summary(file, m, Date.now() - started);
  if (o.json) return printJson(s);
  console.log(
    `${file}: ${s.messages} messages, ${s.rows} rows, ${mb(s.bytes)} (${mb(s.compressedBytes)} compressed), schema ${s.schema}, from ${s.backend}, in ${s.seconds.toFixed(1)} s`,
  );
}

export function registerSiteCommands(program: Command, globals: () => GlobalOptions): void {
  const at = () => ({ dataDir: dataDir(globals()), dbUrl: globals().db });

  const backup = program
    .command('backup')
    .description('a consistent snapshot of the whole site in one file, taken while the server keeps serving; `backup list`, `backup verify FILE`')
    .argument('[file]', 'the archive to write')
    .option('--json', 'print a JSON summary')
    .action(async (file: string | undefined, o: { json?: boolean }) => {
      if (!file) throw new UserError('tern backup needs a FILE to write (or: tern backup list, tern backup verify FILE)');
      await run('backing up', o, (onProgress) => exportSite(at(), file, { kind: 'backup', onProgress }), file);
    });
  backup
    .command('verify <file>')
    .description('read a whole archive and check its checksum, row counts and digests, writing nothing')
    .option('--json', 'print a JSON summary')
    .action(async (file: string, o: { json?: boolean }, cmd: Command) => {
      await run('verifying', { json: o.json ?? jsonOf(cmd) }, (onProgress) => verifyArchive(file, { onProgress }), file);
    });
  backup
    .command('list')
    .description('the archives in a directory (default: the scheduled backups directory, else <data>/snapshots), newest first')
    .option('--dir <dir>', 'the directory to list')
    .option('--json', 'print JSON')
    .action(async (o: { dir?: string; json?: boolean }, cmd: Command) => {
      o.json ??= jsonOf(cmd);
      const dir = o.dir ?? (await withStore(globals(), (s) => s.directory.getSetting('backup_dir'))) ?? snapshotDir(at().dataDir);
      if (!existsSync(dir)) throw new UserError(`there is no directory ${dir}`);
      const rows = readdirSync(dir)
        .filter((n) => n.endsWith('.tern'))
        .map((n) => {
          const file = path.join(dir, n);
          try {
            const { manifest: m } = readManifest(file);
            return {
              file,
              ok: true,
              kind: m.kind,
              createdAt: m.createdAt,
              schema: m.schema,
              messages: m.tables.messages?.rows ?? 0,
              bytes: statSync(file).size,
            };
          } catch (err) {
            return { file, ok: false, error: (err as Error).message, bytes: statSync(file).size };
          }
        })
        .sort((a, b) => String(b.createdAt ?? '').localeCompare(String(a.createdAt ?? '')));
      if (o.json) return printJson(rows);
      printTable(
        ['FILE', 'KIND', 'TAKEN', 'SCHEMA', 'MESSAGES', 'SIZE'],
        rows.map((r) =>
          r.ok ? [r.file, r.kind!, r.createdAt!, String(r.schema), String(r.messages), mb(r.bytes)] : [r.file, 'damaged', r.error!, '', '', mb(r.bytes)],
        ),
      );
    });

  program
    .command('restore <file>')
    .description('fill an empty data directory or database from an archive; with --account, bring that mail back into the running site instead')
    .option('--account <address>', 'restore only this account (created if missing) into the running site')
    .option('--mailbox <name>', 'with --account: only this mailbox')
    .option('--uid <n>', 'with --mailbox: only this message')
    .option('--json', 'print a JSON summary')
    .action(async (file: string, o: { account?: string; mailbox?: string; uid?: string; json?: boolean }) => {
      if (!o.account) {
        if (o.mailbox || o.uid) throw new UserError('--mailbox and --uid need --account');
        return run('restoring', o, (onProgress) => importSite(at(), file, { onProgress }), file);
      }
      if (o.uid && !o.mailbox) throw new UserError('--uid needs --mailbox');
      const uid = o.uid === undefined ? undefined : parseInteger('--uid', o.uid, 1, 2 ** 32 - 1);
      const r = await withStore(globals(), (s) => restoreMail(s, file, { account: o.account!, mailbox: o.mailbox, uid }));
      if (o.json) return printJson(r);
      console.log(
        `${r.account}: ${r.restored} message(s) restored into ${r.mailboxes.length} mailbox(es)${r.skipped ? `, ${r.skipped} already there` : ''}${r.createdAccount ? ' (account created)' : ''}`,
      );
    });

  program
    .command('export <file>')
    .description('write the whole site to one file, to move it to another machine or backend (SQLite ⇄ PostgreSQL)')
    .option('--json', 'print a JSON summary')
    .action(async (file: string, o: { json?: boolean }) => {
      await run('exporting', o, (onProgress) => exportSite(at(), file, { kind: 'export', onProgress }), file);
    });
  program
    .command('import <file>')
    .description('fill an empty data directory or database (--db) with a site written by tern export or tern backup')
    .option('--json', 'print a JSON summary')
    .action(async (file: string, o: { json?: boolean }) => {
      await run('importing', o, (onProgress) => importSite(at(), file, { onProgress }), file);
    });
}
