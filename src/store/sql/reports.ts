/** DMARC aggregate and TLS-RPT reports received for the site's domains, in SQL both backends run. */
import type { Report, ReportRow } from '../store.js';
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
  };
}
