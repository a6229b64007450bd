// The IMAP phase's part of the printed report: one table of steps (Tern, Dovecot, the
// ratio), the notes that let the two be compared (hits, EXISTS), and the IDLE memory test.
import type { ImapPhaseResult } from './imap.js';
import type { ImapMeasure } from './imap-steps.js';

const fixed = (value: number | null | undefined, digits: number): string =>
  value === null || value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits);

function figure(m: ImapMeasure | undefined): string {
  if (!m) return '-';
  const rate = m.perSecond === undefined ? '' : fixed(m.perSecond, m.perSecond < 10 ? 2 : 0);
  return m.ok ? rate : `${rate ? `${rate} ` : ''}FAILED`;
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows].map((cells) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd(),
  );
}

export function formatImap(r: ImapPhaseResult): string[] {
  const lines = ['IMAP (one raw-socket client for both servers, loopback; each server warmed up first; ratio = Tern / Dovecot):'];
  for (const [name, why] of Object.entries(r.failures)) lines.push(`  ${name} FAILED: ${why}`);
  const rows = r.steps.map((s) => [s.title, s.unit, figure(s.results.tern), figure(s.results.dovecot), fixed(s.ratio, 2)]);
  lines.push(...table(['step', 'unit', 'Tern', 'Dovecot', 'ratio'], rows).map((l) => `  ${l}`));
  const notes: string[] = [];
  for (const s of r.steps) {
    for (const [name, m] of Object.entries(s.results)) {
      const ms = s.id === 'big-select-first' && m.seconds !== undefined ? `${(m.seconds * 1000).toFixed(0)} ms` : '';
      const text = [ms, m.note, m.ok ? '' : `FAILED: ${m.error ?? 'unknown error'}`].filter(Boolean).join('; ');
      if (text) notes.push(`    ${s.id} ${name}: ${text}`);
    }
  }
  if (notes.length > 0) lines.push('  notes:', ...notes);
  const i = r.idle;
  if (i) {
    lines.push(
      `  Tern with ${i.connections} connections in IDLE (LOGIN, SELECT INBOX of ${i.inboxMessages ?? '?'} messages, IDLE; open files: ${i.openFiles ?? '?'}):`,
    );
    if (!i.ok) lines.push(`    FAILED: ${i.error ?? 'unknown error'}`);
    lines.push(`    ${i.idling} reached IDLE in ${fixed(i.openSeconds, 0)} s (${fixed(i.openedPerSecond, 0)}/s)`);
    lines.push(
      `    Tern VmRSS: before ${fixed(i.rssBeforeMiB, 0)} MiB, idle ${fixed(i.rssIdleMiB, 0)} MiB (goal < 1024), after the delivery ${fixed(i.rssAfterMiB, 0)} MiB; peak (VmHWM) ${fixed(i.hwmMiB, 0)} MiB`,
    );
    if (i.existsSeen !== undefined) {
      const e = i.existsMs;
      const delay = e ? `, ms after the SMTP 250 min/median/max ${e.min.toFixed(0)} / ${e.median.toFixed(0)} / ${e.max.toFixed(0)}` : '';
      lines.push(
        `    one message delivered over SMTP: ${i.existsSeen} of ${i.idling} connections saw EXISTS within ${fixed(i.existsWaitSeconds, 1)} s${delay}`,
      );
    }
  }
  for (const [name, how] of Object.entries(r.targets)) lines.push(`  ${name}: ${how}`);
  return lines;
}
