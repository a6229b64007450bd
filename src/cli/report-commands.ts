/**
 * `tern report list|summary`: DMARC and TLS reports received for the site's domains
 * (admin/reports.ts); `tern report send`: the DMARC aggregate reports Tern owes others.
 */
import { Option, type Command } from 'commander';
import { listReports, publicReport, summarizeReports } from '../admin/reports.js';
import { siteHostname } from '../config/init-data-dir.js';
import { parseDnsServers, parseInteger } from '../config/parse.js';
import { DMARC_REPORTS_SETTING, DmarcReports, parseDmarcReports, utcDay } from '../delivery/dmarc-reports.js';
import { UserError } from '../errors.js';
import { createLogger } from '../log.js';
import { createMailDns } from '../queue/dns.js';
import { printJson, printTable, withInjector, withStore, type GlobalOptions } from './context.js';

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
  report
    .command('send')
    .description(
      "send a day's DMARC aggregate reports now, to the domains whose DMARC records ask for them (with reports on, tern serve sends each day once it has ended)",
    )
    .option('--date <day>', 'the UTC day, YYYY-MM-DD (default: yesterday)')
    .option('--from <address>', 'the address reports come from (default: the setting "dmarc_reports")')
    .addOption(
      new Option('--dns-server <host:port,...>', "DNS resolver(s) for the report addresses' consent records (default: the system resolver)").env(
        'TERN_DNS_SERVER',
      ),
    )
    .option('--json', 'print JSON')
    .action(async (o: { date?: string; from?: string; dnsServer?: string; json?: boolean }) => {
      const day = o.date ?? utcDay(new Date(Date.now() - 86_400_000));
      if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || Number.isNaN(Date.parse(`${day}T00:00:00Z`)))
        throw new UserError(`--date: expected YYYY-MM-DD, got ${JSON.stringify(day)}`);
      const dns = createMailDns({ servers: parseDnsServers('--dns-server', o.dnsServer) });
      const sent = await withStore(globals(), async (store) => {
        const name = o.from ? '--from' : `setting ${DMARC_REPORTS_SETTING}`;
        const from = parseDmarcReports(name, o.from ?? (await store.directory.getSetting(DMARC_REPORTS_SETTING)));
        if (!from)
          throw new UserError(`DMARC reports are off: give --from, or run tern setting set ${DMARC_REPORTS_SETTING} ADDRESS (the address they come from)`);
        const hostname = await siteHostname(store, undefined);
        const log = createLogger('warn', 2);
        return withInjector(store, hostname, (injector) => new DmarcReports({ store, injector, dns, log, hostname, from }).send(day));
      });
      if (o.json) return printJson(sent);
      if (sent.length === 0) console.log(`${day}: no DMARC results to report`);
      for (const r of sent) {
        const to = r.to.length ? `queued for ${r.to.join(', ')} (message ${r.ternId})` : 'not sent';
        console.log(`${day} ${r.domain}: ${r.messages} message(s) in ${r.rows} row(s), ${to}`);
        for (const k of r.skipped) console.log(`  skipped ${k.address}: ${k.reason}`);
      }
    });
}
