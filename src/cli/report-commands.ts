/** `tern report list|summary`: DMARC and TLS reports received for the site's domains (admin/reports.ts). */
import type { Command } from 'commander';
import { listReports, publicReport, summarizeReports } from '../admin/reports.js';
import { parseInteger } from '../config/parse.js';
import { printJson, printTable, withStore, type GlobalOptions } from './context.js';

export function registerReportCommands(program: Command, globals: () => GlobalOptions): void {
  const report = program.command('report').description('DMARC aggregate and TLS reports other mail systems sent about our domains');
  report
    .command('list')
    .description('reports received, newest first')
    .option('--domain <domain>', 'only this domain')
    .option('--kind <kind>', 'dmarc or tlsrpt')
    .option('--limit <n>', 'how many', '50')
    .option('--json', 'print JSON')
    .action(async (o: { domain?: string; kind?: string; limit: string; json?: boolean }) => {
      const limit = parseInteger('--limit', o.limit, 1, 10_000);
      const reports = await withStore(globals(), (s) => listReports(s, null, { domain: o.domain, kind: o.kind, limit }));
      if (o.json) return printJson(reports.map(publicReport));
      printTable(
        ['ID', 'KIND', 'DOMAIN', 'REPORTER', 'FROM', 'TO', 'ROWS'],
        reports.map((r) => [String(r.id), r.kind, r.domain, r.reporter, r.begin.toISOString(), r.end.toISOString(), String(r.rows.length)]),
      );
    });
  report
    .command('summary <domain>')
    .description('per sending address: messages the DMARC reporters saw, DKIM and SPF passes, what they did; per TLS reporter: sessions')
    .option('--json', 'print JSON')
    .action(async (domain: string, o: { json?: boolean }) => {
      const s = await withStore(globals(), (st) => summarizeReports(st, null, domain));
      if (o.json) return printJson(s);
      console.log(`${s.domain}: ${s.reports} report(s)`);
      if (s.dmarc.length)
        printTable(
          ['SOURCE', 'MESSAGES', 'DKIM PASS', 'SPF PASS', 'DISPOSITIONS', 'REPORTERS'],
          s.dmarc.map((r) => [
            r.source,
            String(r.messages),
            String(r.dkimPass),
            String(r.spfPass),
            Object.entries(r.dispositions)
              .map(([k, v]) => `${k}=${v}`)
              .join(' '),
            r.reporters.join(', '),
          ]),
        );
      if (s.tls.length)
        printTable(
          ['TLS REPORTER', 'SUCCESS', 'FAILURE', 'FAILURES'],
          s.tls.map((t) => [
            t.reporter,
            String(t.success),
            String(t.failure),
            Object.entries(t.failures)
              .map(([k, v]) => `${k}=${v}`)
              .join(' '),
          ]),
        );
    });
}
