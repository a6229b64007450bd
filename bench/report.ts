// The benchmark's result shape, the tables printed at the end and the JSON file.
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProfileSummary } from './cpu-profile.js';
import type { ImapPhaseResult } from './imap.js';
import { formatImap } from './imap-report.js';
import { formatQueue, type QueuePhaseResult } from './queue.js';
import { formatApi, type ApiPhaseResult } from './api.js';
import { formatTransfer, type TransferResult } from './transfer.js';
import { formatPortal, type PortalResult } from './portal.js';
import type { ConcurrentResult, ProbeResult, Spread } from './large.js';

/** One load: smtp-source -s sessions -m messages -l size. */
export interface Load {
  label: string;
  size: number;
  messages: number;
  sessions: number;
}

/** One measured target at one load. */
export interface Row {
  load: string;
  protocol: 'smtp' | 'lmtp';
  /** "smtp-sink", "Tern SQLite", "Tern PostgreSQL", "Postfix 250", "Postfix Maildir", "Dovecot". */
  server: string;
  kind: 'ceiling' | 'tern' | 'reference';
  ok: boolean;
  error?: string;
  command?: string;
  /** Wall time the figure is based on: smtp-source's run, or until the Maildir held every message. */
  seconds?: number;
  perSecond?: number;
  /** Body megabytes (10^6 bytes, smtp-source -l) per second. */
  mbPerSecond?: number;
  /** Tern: msg/s over the reference's (Postfix's 250s for SMTP, Dovecot for LMTP). */
  ratio?: number | null;
  /** Tern over SMTP: msg/s over Postfix's rate into the Maildir. */
  ratioDelivered?: number | null;
  /** msg/s as a percentage of smtp-sink's at the same load. */
  percentOfCeiling?: number | null;
  /** Tern: peak RSS (VmHWM) during this row, MiB. */
  rssMiB?: number | null;
  stored?: number | null;
  expected?: number;
  /** Lines the server logged for the delivered messages (Tern "message accepted", Postfix "status=sent", Dovecot "saved mail to"). */
  logLines?: number | null;
}

export interface FullStoreResult {
  ok: boolean;
  error?: string;
  /** Messages the bulk loader put in before the measured run. */
  preloaded?: number;
  bulkLoadSeconds?: number;
  bulkLoadPerSecond?: number;
  /** Size of the data dir after the bulk load. */
  dataDirMiB?: number;
  empty?: Row;
  full?: Row;
  /** full msg/s over empty msg/s. */
  ratio?: number | null;
}

export interface LargeMemoryResult {
  ok: boolean;
  error?: string;
  idleRssMiB?: number | null;
  peakRssMiB?: number | null;
  load?: ConcurrentResult;
}

export interface LatencyResult {
  ok: boolean;
  error?: string;
  peakRssMiB?: number | null;
  probes?: ProbeResult;
}

export interface ProfileResult {
  ok: boolean;
  error?: string;
  row?: Row;
  /** Where the .cpuprofile files were kept. */
  dir?: string;
  summaries?: ProfileSummary[];
}

export interface BenchReport {
  startedAt: string;
  finishedAt?: string;
  parameters: Record<string, unknown>;
  ports: Record<string, number>;
  environment: Record<string, string>;
  /** Filesystem of each data dir: "ext4 /dev/vda on / (rw,relatime)". */
  filesystems: Record<string, string>;
  rows: Row[];
  fullStore?: FullStoreResult;
  largeMemory?: LargeMemoryResult;
  latency?: LatencyResult;
  profile?: ProfileResult;
  imap?: ImapPhaseResult;
  queue?: QueuePhaseResult;
  api?: ApiPhaseResult;
  transfer?: TransferResult;
  portal?: PortalResult;
}

const fixed = (value: number | null | undefined, digits: number): string =>
  value === null || value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits);

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows].map((cells) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd(),
  );
}

function storedCell(r: Row): string {
  if (r.stored === undefined) return '-';
  return `${r.stored === null ? '?' : r.stored}/${r.expected ?? '?'}`;
}

function rowCells(r: Row): string[] {
  return [
    r.load,
    r.protocol.toUpperCase(),
    r.server,
    fixed(r.perSecond, 1),
    fixed(r.mbPerSecond, 1),
    fixed(r.ratio, 2),
    fixed(r.ratioDelivered, 2),
    fixed(r.percentOfCeiling, 0),
    fixed(r.rssMiB, 0),
    storedCell(r),
    r.logLines === undefined || r.logLines === null ? '-' : String(r.logLines),
    r.ok ? '' : `FAILED: ${r.error ?? 'unknown error'}`,
  ];
}

const ROW_HEADER = ['load', 'proto', 'server', 'msg/s', 'MB/s', 'x ref', 'x Maildir', '% ceil', 'RSS MiB', 'stored', 'log lines', ''];

const ms = (s: Spread | null | undefined): string => (s ? `${s.min.toFixed(0)} / ${s.median.toFixed(0)} / ${s.max.toFixed(0)} ms` : '-');

/** Renders the final report as lines of text. */
export function formatReport(report: BenchReport): string {
  const lines: string[] = [];
  if (report.rows.length > 0) {
    lines.push('Throughput (smtp-source, one message per connection; x ref = Tern msg/s over Postfix 250s (SMTP) or Dovecot (LMTP);');
    lines.push('x Maildir = over Postfix until the last file is in its Maildir; % ceil = of smtp-sink at the same load; RSS = Tern VmHWM during the row)');
    lines.push(...table(ROW_HEADER, report.rows.map(rowCells)), '');
  }
  const f = report.fullStore;
  if (f) {
    lines.push('Accept rate with a full store (SQLite, SMTP):');
    if (!f.ok) lines.push(`  FAILED: ${f.error ?? 'unknown error'}`);
    if (f.preloaded !== undefined) {
      lines.push(
        `  bulk load: ${f.preloaded} messages in ${fixed(f.bulkLoadSeconds, 1)} s (${fixed(f.bulkLoadPerSecond, 0)} msg/s), data dir ${fixed(f.dataDirMiB, 0)} MiB`,
      );
    }
    if (f.empty && f.full) {
      lines.push(...table(ROW_HEADER, [f.empty, f.full].map(rowCells)).map((l) => `  ${l}`));
      lines.push(`  full/empty: ${fixed(f.ratio, 2)}`);
    }
    lines.push('');
  }
  const m = report.largeMemory;
  if (m) {
    lines.push('Large messages, memory:');
    if (!m.ok) lines.push(`  FAILED: ${m.error ?? 'unknown error'}`);
    if (m.load) {
      const l = m.load;
      lines.push(
        `  ${l.connections} concurrent x ${(l.size / 1e6).toFixed(1)} MB: replies ${JSON.stringify(l.replies)} in ${l.seconds.toFixed(1)} s (${l.mbPerSecond.toFixed(0)} MB/s accepted)`,
      );
      lines.push(`  Tern RSS idle ${fixed(m.idleRssMiB, 0)} MiB, peak ${fixed(m.peakRssMiB, 0)} MiB; end-of-DATA to reply min/median/max ${ms(l.replyMs)}`);
      if (l.firstError) lines.push(`  first non-250: ${l.firstError.slice(0, 200)}`);
    }
    lines.push('');
  }
  const t = report.latency;
  if (t) {
    lines.push('Small message while large ones arrive:');
    if (!t.ok) lines.push(`  FAILED: ${t.error ?? 'unknown error'}`);
    if (t.probes) {
      const p = t.probes;
      const b = p.background;
      lines.push(
        `  background: ${b.connections} x ${(b.size / 1e6).toFixed(1)} MB, replies ${JSON.stringify(b.replies)} in ${b.seconds.toFixed(1)} s; Tern peak RSS ${fixed(t.peakRssMiB, 0)} MiB`,
      );
      lines.push(`  ${p.duringLoad} one-line probes during the load, replies ${JSON.stringify(p.codes)} (min / median / max):`);
      lines.push(`    end of DATA to 250: ${ms(p.replyMs)}`);
      lines.push(`    connect to greeting: ${ms(p.greetingMs)}`);
      lines.push(`    connect to 250:      ${ms(p.totalMs)}`);
    }
    lines.push('');
  }
  const p = report.profile;
  if (p) {
    lines.push('CPU profile of tern serve (node --cpu-prof):');
    if (!p.ok) lines.push(`  FAILED: ${p.error ?? 'unknown error'}`);
    if (p.row) lines.push(`  load: ${p.row.command ?? p.row.load}: ${fixed(p.row.perSecond, 1)} msg/s under the profiler`);
    for (const s of p.summaries ?? []) {
      lines.push(`  ${s.thread} (${s.file.split('/').pop()}): ${(s.busyMs / 1000).toFixed(1)} s busy of ${(s.totalMs / 1000).toFixed(1)} s while the load ran`);
      for (const e of s.functions.slice(0, 15)) {
        const under = (e.callers ?? [])
          .filter((c) => c.percent >= 10)
          .map((c) => `${c.percent.toFixed(0)}% ${c.name.replace(' src/', ' ')}`)
          .join(', ');
        lines.push(`    ${e.percent.toFixed(1).padStart(5)}%  ${e.name}${under ? `  [under ${under}]` : ''}`);
      }
      lines.push('    by file:');
      for (const e of s.files.slice(0, 8)) lines.push(`    ${e.percent.toFixed(1).padStart(5)}%  ${e.name}`);
    }
    if (p.dir) lines.push(`  profiles: ${p.dir}`);
    lines.push('');
  }
  if (report.imap) lines.push(...formatImap(report.imap), '');
  if (report.queue) lines.push(...formatQueue(report.queue), '');
  if (report.api) lines.push(...formatApi(report.api), '');
  if (report.transfer) lines.push(formatTransfer(report.transfer), '');
  if (report.portal) lines.push(...formatPortal(report.portal), '');
  lines.push('Environment:');
  for (const [key, value] of Object.entries(report.environment)) lines.push(`  ${key}: ${value}`);
  for (const [key, value] of Object.entries(report.filesystems)) lines.push(`  filesystem of ${key}: ${value}`);
  return lines.join('\n');
}

export async function writeReport(path: string, report: BenchReport): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(report, null, 2)}\n`);
}

// Alone: `node dist/bench/report.js [bench/out/results.json]` prints a saved report again.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2] ?? 'bench/out/results.json';
  console.log(formatReport(JSON.parse(readFileSync(file, 'utf8')) as BenchReport));
}
