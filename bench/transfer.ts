// The transfer phase: a site of `messages` bulk-loaded messages on each backend, then
// `tern export` (messages/s and MB/s of site data read, compressed and written) and
// `tern import` of that archive into an empty site of the same backend; then, on SQLite,
// the longest pause clients see while `tern backup` runs under SMTP load: the slowest
// reply to the end of DATA and the longest gap between two acknowledgements, before and
// during the backup. Figures only.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backend } from './config.js';
import { ADDRESS, errorText, newTern, SENDER, withTern, type BenchContext } from './context.js';
import { sendMessage } from './smtp-client.js';
import type { TernServer } from './tern.js';
import { runCommand } from './util.js';

const BULK_LOAD = join(dirname(fileURLToPath(import.meta.url)), 'bulk-load.js');

export interface TransferRow {
  backend: Backend;
  messages?: number;
  /** Uncompressed site data in the archive, and the archive's size. */
  dataMB?: number;
  archiveMB?: number;
  exportSeconds?: number;
  importSeconds?: number;
  /** Peak resident memory of the tern export and tern import processes. */
  exportRssMiB?: number;
  importRssMiB?: number;
  error?: string;
}

export interface PauseFigures {
  replies: number;
  p50Ms: number;
  p99Ms: number;
  maxReplyMs: number;
  /** Longest time with no acknowledgement from any client. */
  maxGapMs: number;
  /** When the slowest reply ended and the longest gap began, in seconds from the backup's start. */
  slowestAtS: number;
  gapAtS: number;
}

export interface TransferResult {
  rows: TransferRow[];
  backupPause?: { clients: number; backupSeconds: number; before: PauseFigures; during: PauseFigures } | { error: string };
}

interface CliJson {
  messages: number;
  bytes: number;
  compressedBytes: number;
  seconds: number;
  /** Added by the bench, not in the command's JSON: its peak RSS. */
  rssMiB: number;
}

async function tern(ctx: BenchContext, args: string[]): Promise<CliJson> {
  const r = await runCommand(process.execPath, [ctx.cli, ...args, '--json'], { timeoutMs: 3 * 3600_000, sampleMemory: true });
  if (r.code !== 0) throw new Error(`tern ${args[0]} failed: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`);
  return { ...(JSON.parse(r.stdout) as CliJson), rssMiB: (r.peakRssKiB ?? 0) / 1024 };
}

async function siteArgs(ctx: BenchContext, backend: Backend, name: string): Promise<string[]> {
  const data = ['--data', join(ctx.root, name)];
  if (backend === 'sqlite') return data;
  if (!ctx.postgres) throw new Error(`no PostgreSQL cluster: ${ctx.postgresError}`);
  return [...data, '--db', await ctx.postgres.createDatabase(name)];
}

/** Bulk-loads the site at `source` (CLI arguments), then exports it and imports the archive into an empty site of the same backend. */
async function exportImport(ctx: BenchContext, backend: Backend, source: () => Promise<string[]>): Promise<TransferRow> {
  const { messages, size } = ctx.config.transfer;
  const row: TransferRow = { backend };
  try {
    ctx.log(`transfer (${backend}): bulk-loading ${messages} messages of ${size} bytes`);
    const args = await source();
    const loaded = await runCommand(process.execPath, [BULK_LOAD, ...args, '--messages', String(messages), '--size', String(size), '--address', ADDRESS], {
      timeoutMs: 3 * 3600_000,
    });
    if (loaded.code !== 0) throw new Error(`bulk load failed: ${loaded.stderr.trim().split('\n').slice(-2).join(' | ')}`);
    const file = join(ctx.root, `transfer_${backend}.tern`);
    const exported = await tern(ctx, ['export', file, ...args]);
    Object.assign(row, {
      messages: exported.messages,
      dataMB: exported.bytes / 1e6,
      archiveMB: exported.compressedBytes / 1e6,
      exportSeconds: exported.seconds,
      exportRssMiB: exported.rssMiB,
    });
    ctx.log(`transfer (${backend}): exported ${exported.messages} messages in ${exported.seconds.toFixed(1)} s`);
    const imported = await tern(ctx, ['import', file, ...(await siteArgs(ctx, backend, `transfer_${backend}_target`))]);
    row.importSeconds = imported.seconds;
    row.importRssMiB = imported.rssMiB;
    ctx.log(`transfer (${backend}): imported in ${imported.seconds.toFixed(1)} s`);
  } catch (error) {
    row.error = errorText(error);
  }
  return row;
}

function figures(samples: Array<{ at: number; ms: number }>, began: number): PauseFigures {
  const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
  const at = samples.map((s) => s.at).sort((a, b) => a - b);
  let gap = 0;
  let gapAt = 0;
  for (let i = 1; i < at.length; i++) {
    if (at[i]! - at[i - 1]! > gap) [gap, gapAt] = [at[i]! - at[i - 1]!, at[i - 1]!];
  }
  const slowest = samples.reduce((a, b) => (b.ms > a.ms ? b : a), { at: began, ms: 0 });
  const q = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))] ?? 0;
  return {
    replies: ms.length,
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    maxReplyMs: slowest.ms,
    maxGapMs: gap,
    slowestAtS: (slowest.at - began) / 1000,
    gapAtS: (gapAt - began) / 1000,
  };
}

/** SMTP load on the bulk-loaded SQLite site: replies timed for a few seconds, then while `tern backup` runs. */
async function backupPause(ctx: BenchContext, server: TernServer): Promise<TransferResult['backupPause']> {
  const clients = ctx.config.transfer.clients;
  try {
    return await withTern(ctx, server, async () => {
      const samples: Array<{ at: number; ms: number }> = [];
      let stop = false;
      const client = async () => {
        while (!stop) {
          const r = await sendMessage({ port: ctx.config.ports.ternSmtp, from: SENDER, to: ADDRESS, size: 4096, timeoutMs: ctx.config.timeoutMs });
          if (r.code !== 250) throw new Error(`SMTP ${r.code} ${r.reply || r.error || ''}`);
          samples.push({ at: Date.now(), ms: r.totalMs });
        }
      };
      const load = Promise.all(Array.from({ length: clients }, client));
      load.catch(() => (stop = true));
      await new Promise((r) => setTimeout(r, 5000));
      const began = Date.now();
      await tern(ctx, ['backup', join(ctx.root, 'live-backup.tern'), '--data', server.dataDir]);
      const ended = Date.now();
      stop = true;
      await load;
      // A reply counts as during the backup if any of its wait overlapped it: one stalled by the backup's last fsync arrives after the command exits.
      const before = samples.filter((s) => s.at < began);
      const during = samples.filter((s) => s.at >= began && s.at - s.ms <= ended);
      return { clients, backupSeconds: (ended - began) / 1000, before: figures(before, began), during: figures(during, began) };
    });
  } catch (error) {
    return { error: errorText(error) };
  }
}

export async function transferPhase(ctx: BenchContext): Promise<TransferResult> {
  const result: TransferResult = { rows: [] };
  for (const backend of ctx.config.backends) {
    if (backend === 'postgres') {
      result.rows.push(await exportImport(ctx, backend, () => siteArgs(ctx, backend, 'transfer_postgres_source')));
      continue;
    }
    // The SQLite site is served afterwards, for the live backup: provisioned as the bench's servers are.
    const server = await newTern(ctx, { backend, name: 'transfer_sqlite_source', lmtp: false });
    result.rows.push(
      await exportImport(ctx, backend, async () => {
        await server.provision();
        return ['--data', server.dataDir];
      }),
    );
    result.backupPause = await backupPause(ctx, server);
  }
  return result;
}

export function formatTransfer(t: TransferResult): string {
  const lines = [`Site transfer (tern export / tern import, ${t.rows[0]?.messages ?? '?'} messages)`];
  lines.push(
    'backend     messages  data MB  archive MB  export s  export msg/s  export MB/s  export RSS MiB  import s  import msg/s  import MB/s  import RSS MiB',
  );
  for (const r of t.rows) {
    if (r.error) {
      lines.push(`${r.backend.padEnd(10)}  error: ${r.error}`);
      continue;
    }
    const rate = (n?: number, s?: number) => (n !== undefined && s ? (n / s).toFixed(0) : '-');
    const mbs = (n?: number, s?: number) => (n !== undefined && s ? (n / s).toFixed(1) : '-');
    lines.push(
      [
        r.backend.padEnd(10),
        String(r.messages).padStart(8),
        r.dataMB!.toFixed(1).padStart(7),
        r.archiveMB!.toFixed(1).padStart(10),
        r.exportSeconds!.toFixed(1).padStart(8),
        rate(r.messages, r.exportSeconds).padStart(12),
        mbs(r.dataMB, r.exportSeconds).padStart(11),
        (r.exportRssMiB?.toFixed(0) ?? '-').padStart(14),
        (r.importSeconds?.toFixed(1) ?? '-').padStart(8),
        rate(r.messages, r.importSeconds).padStart(12),
        mbs(r.dataMB, r.importSeconds).padStart(11),
        (r.importRssMiB?.toFixed(0) ?? '-').padStart(14),
      ].join('  '),
    );
  }
  const p = t.backupPause;
  if (p && 'error' in p) lines.push(`Backup under load: error: ${p.error}`);
  else if (p) {
    const f = (x: PauseFigures) =>
      `${x.replies} replies, p50 ${x.p50Ms.toFixed(0)} ms, p99 ${x.p99Ms.toFixed(0)} ms, slowest ${x.maxReplyMs.toFixed(0)} ms (at ${x.slowestAtS.toFixed(1)} s), longest gap ${x.maxGapMs} ms (at ${x.gapAtS.toFixed(1)} s)`;
    lines.push(`Backup under load (${p.clients} SMTP clients, backup took ${p.backupSeconds.toFixed(1)} s; times from its start):`);
    lines.push(`  before: ${f(p.before)}`);
    lines.push(`  during: ${f(p.during)}`);
  }
  return lines.join('\n');
}
