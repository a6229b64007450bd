// The benchmark's result shape, the table printed at the end and the JSON file.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface TargetResult {
  server: string;
  command?: string;
  ok: boolean;
  seconds?: number;
  perSecond?: number;
  /** Messages found stored / delivered after the run (null when it could not be read). */
  stored?: number | null;
  expected?: number;
  /** For Postfix: seconds after smtp-source finished until the Maildir held every message. */
  drainSeconds?: number;
  error?: string;
}

export interface Comparison {
  protocol: 'smtp' | 'lmtp';
  tern: TargetResult;
  reference: TargetResult;
  /** Tern msg/s divided by the reference server's msg/s. */
  ratio: number | null;
}

export interface MemoryResult {
  idleRssMiB: number | null;
  peakRssMiB: number | null;
  hwmMiB: number | null;
  samples: number;
}

export interface BenchReport {
  startedAt: string;
  parameters: { messages: number; sessions: number; size: number };
  ports: Record<string, number>;
  environment: Record<string, string>;
  comparisons: Comparison[];
  ternMemory: MemoryResult;
}

export function ratioOf(tern: TargetResult, reference: TargetResult): number | null {
  if (!tern.ok || !reference.ok || !tern.perSecond || !reference.perSecond) return null;
  return tern.perSecond / reference.perSecond;
}

const fixed = (value: number | null | undefined, digits: number): string =>
  value === null || value === undefined ? '-' : value.toFixed(digits);

function storedCell(r: TargetResult): string {
  if (r.stored === undefined) return '-';
  const count = r.stored === null ? '?' : String(r.stored);
  const drained = r.drainSeconds !== undefined ? ` (+${r.drainSeconds.toFixed(1)} s to drain)` : '';
  return `${count}/${r.expected ?? '?'}${drained}`;
}

function row(cells: string[], widths: number[]): string {
  return cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
}

/** Renders the final table as lines of text. */
export function formatReport(report: BenchReport): string {
  const p = report.parameters;
  const lines = [`Tern bench: ${p.messages} messages of ${p.size} bytes, ${p.sessions} parallel sessions, one message per connection (smtp-source)`, ''];
  const widths = [6, 9, 10, 9, 34];
  lines.push(row(['proto', 'server', 'msg/s', 'seconds', 'stored'], widths));
  for (const c of report.comparisons) {
    for (const r of [c.tern, c.reference]) {
      const cells = [c.protocol.toUpperCase(), r.server, fixed(r.perSecond, 1), fixed(r.seconds, 2), storedCell(r)];
      lines.push(row(cells, widths) + (r.ok ? '' : `  FAILED: ${r.error ?? 'unknown error'}`));
    }
  }
  lines.push('');
  for (const c of report.comparisons) {
    lines.push(`${c.protocol.toUpperCase()} ratio Tern/${c.reference.server}: ${c.ratio === null ? 'n/a' : c.ratio.toFixed(2)}`);
  }
  const m = report.ternMemory;
  lines.push(`Tern RSS: idle ${fixed(m.idleRssMiB, 1)} MiB, peak ${fixed(m.hwmMiB, 1)} MiB (VmHWM; max sampled VmRSS ${fixed(m.peakRssMiB, 1)} MiB, ${m.samples} samples)`);
  return lines.join('\n');
}

export async function writeReport(path: string, report: BenchReport): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(report, null, 2)}\n`);
}
