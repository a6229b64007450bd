/**
 * In SQL both backends run: DMARC aggregate and TLS-RPT reports received for the site's
 * domains, and the DMARC results counted for the aggregate reports Tern sends.
 */
import type { DmarcDomainDay, DmarcRow, PublishedDmarc, Report, ReportRow } from '../store.js';
import type { Row, Sql } from './sql.js';

function toReport(r: Row): Report {
  return {
    id: Number(r.id),
    kind: r.kind as Report['kind'],
    domain: String(r.domain),
    reporter: String(r.reporter),
    reportId: String(r.report_id),
    begin: new Date(Number(r.begin_at)),
    end: new Date(Number(r.end_at)),
    receivedAt: new Date(Number(r.received_at)),
    rows: JSON.parse(String(r.rows)) as ReportRow[],
  };
}

export const REPORT_OPS = {
  async addReport(sql: Sql, a: Omit<Report, 'id' | 'receivedAt' | 'begin' | 'end'> & { begin: number; end: number; now: number }): Promise<boolean> {
    const n = await sql.run(
      `INSERT INTO reports (kind, domain, reporter, report_id, begin_at, end_at, received_at, rows) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (kind, reporter, report_id) DO NOTHING`,
      [a.kind, a.domain, a.reporter, a.reportId, a.begin, a.end, a.now, JSON.stringify(a.rows)],
    );
    return n > 0;
  },

  async recordDmarc(sql: Sql, a: { day: string; domain: string; policy: PublishedDmarc; row: DmarcRow }): Promise<void> {
    await sql.run(
      `INSERT INTO dmarc_records (day, domain, result, count) VALUES (?, ?, ?, 1)
       ON CONFLICT (day, domain, result) DO UPDATE SET count = dmarc_records.count + 1`,
      [a.day, a.domain, JSON.stringify(a.row)],
    );
    await sql.run(`INSERT INTO dmarc_policies (day, domain, policy) VALUES (?, ?, ?) ON CONFLICT (day, domain) DO UPDATE SET policy = excluded.policy`, [
      a.day,
      a.domain,
      JSON.stringify(a.policy),
    ]);
  },

  async takeDmarcDay(sql: Sql, a: { day: string }): Promise<DmarcDomainDay[]> {
    const policies = await sql.all('DELETE FROM dmarc_policies WHERE day = ? RETURNING domain, policy', [a.day]);
    const records = await sql.all('DELETE FROM dmarc_records WHERE day = ? RETURNING domain, result, count', [a.day]);
    const byDomain = new Map<string, DmarcDomainDay>();
    for (const p of policies) byDomain.set(String(p.domain), { domain: String(p.domain), policy: JSON.parse(String(p.policy)) as PublishedDmarc, rows: [] });
    for (const r of records) byDomain.get(String(r.domain))?.rows.push({ ...(JSON.parse(String(r.result)) as DmarcRow), count: Number(r.count) });
    return [...byDomain.values()].filter((d) => d.rows.length > 0).sort((x, y) => (x.domain < y.domain ? -1 : 1));
  },
} as const;

export function createReportReads(sql: Sql) {
  return {
    async listReports(f: { domain?: string; kind?: Report['kind']; limit: number }): Promise<Report[]> {
      const conditions: Array<[string, unknown]> = [];
      if (f.domain) conditions.push(['domain = ?', f.domain]);
      if (f.kind) conditions.push(['kind = ?', f.kind]);
      const where = conditions.map(([c]) => c);
      const params = conditions.map(([, v]) => v);
      const rows = await sql.all(`SELECT * FROM reports ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY end_at DESC, id DESC LIMIT ?`, [
        ...params,
        f.limit,
      ]);
      return rows.map(toReport);
    },
    async dmarcDays(): Promise<string[]> {
      return (await sql.all('SELECT DISTINCT day FROM dmarc_policies ORDER BY day')).map((r) => String(r.day));
    },
  };
}
