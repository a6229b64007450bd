/**
 * The DMARC and TLS reports kept for the site's domains, for `tern report` and the API:
 * the list, and a summary per domain — per sending address what the DMARC reporters saw
 * (messages, DKIM and SPF passes, what was done), and per TLS reporter its successes and
 * failures. A key limited to a domain sees its domain's only.
 */
import { UserError } from '../errors.js';
import { normalizeDomain } from '../mail/address.js';
import type { Report, Store } from '../store/store.js';
import { scopeDomain, type Actor } from './actor.js';
import { existingDomain } from './domains.js';

const SUMMARY_REPORTS = 10_000;

export async function listReports(store: Store, actor: Actor, f: { domain?: string; kind?: string; limit: number }): Promise<Report[]> {
  if (f.kind !== undefined && f.kind !== 'dmarc' && f.kind !== 'tlsrpt') throw new UserError(`kind: dmarc or tlsrpt, got ${JSON.stringify(f.kind)}`);
  const domain = scopeDomain(actor, f.domain ? normalizeDomain(f.domain) : undefined);
  return store.directory.listReports({ domain, kind: f.kind, limit: f.limit });
}

export interface ReportSummary {
  domain: string;
  reports: number;
  dmarc: Array<{ source: string; messages: number; dkimPass: number; spfPass: number; dispositions: Record<string, number>; reporters: string[] }>;
  tls: Array<{ reporter: string; success: number; failure: number; failures: Record<string, number> }>;
}

export async function summarizeReports(store: Store, actor: Actor, domain: string): Promise<ReportSummary> {
  const d = await existingDomain(store.directory, actor, domain);
  const reports = await store.directory.listReports({ domain: d, limit: SUMMARY_REPORTS });
  const sources = new Map<string, ReportSummary['dmarc'][number]>();
  const tls = new Map<string, ReportSummary['tls'][number]>();
  for (const r of reports) {
    for (const row of r.rows) {
      if ('source' in row) {
        const s = sources.get(row.source) ?? { source: row.source, messages: 0, dkimPass: 0, spfPass: 0, dispositions: {}, reporters: [] };
        s.messages += row.count;
        if (row.dkim === 'pass') s.dkimPass += row.count;
        if (row.spf === 'pass') s.spfPass += row.count;
        s.dispositions[row.disposition] = (s.dispositions[row.disposition] ?? 0) + row.count;
        if (!s.reporters.includes(r.reporter)) s.reporters.push(r.reporter);
        sources.set(row.source, s);
      } else {
        const t = tls.get(r.reporter) ?? { reporter: r.reporter, success: 0, failure: 0, failures: {} };
        t.success += row.success;
        t.failure += row.failure;
        for (const f of row.failures) t.failures[f.type] = (t.failures[f.type] ?? 0) + f.count;
        tls.set(r.reporter, t);
      }
    }
  }
  return {
    domain: d,
    reports: reports.length,
    dmarc: [...sources.values()].sort((a, b) => b.messages - a.messages),
    tls: [...tls.values()].sort((a, b) => a.reporter.localeCompare(b.reporter)),
  };
}

export const publicReport = (r: Report) => ({ ...r, begin: r.begin.toISOString(), end: r.end.toISOString(), receivedAt: r.receivedAt.toISOString() });
