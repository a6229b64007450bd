/**
 * DMARC aggregate reports for mail received over the MX, end to end: with reports off
 * (the default) nothing is counted; with `--dmarc-reports` on, strangers' messages from
 * domains whose DMARC records carry `rua` are counted, and `tern report send` queues one
 * report per domain that the queue delivers to a receiving server found through a local
 * DNS server. An address in another domain gets reports only with its consent record; one
 * whose size limit the report exceeds gets none; a domain without `rua` is not counted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { simpleParser } from 'mailparser';
import { parseReport } from '../../src/mail/reports.js';
import { openStore } from '../../src/store/open.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { openSession } from '../helpers/raw-smtp.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { cli, createSite, freePort, startTern, type Site, type TernServer } from '../helpers/tern.js';

const message = (from: string, subject: string) =>
  `From: <${from}>\r\nTo: <alice@example.test>\r\nSubject: ${subject}\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@sender.test>\r\n\r\nHello.\r\n`;

describe('DMARC aggregate reports sent', { timeout: 120_000 }, () => {
  let dns: TestDnsServer;
  let sink: SmtpSink;
  let site: Site;
  let tern: TernServer | undefined;
  let mxPort: number;

  before(async () => {
    mxPort = await freePort();
    sink = await startSmtpSink({ host: '127.0.0.5', port: mxPort });
    const pass = 'v=spf1 ip4:127.0.0.0/8 -all';
    dns = await startDnsServer([
      { type: 'TXT', name: 'sender.test', text: pass },
      // Reports to another domain (which consents) and to an address of its own that takes at most 10 bytes.
      { type: 'TXT', name: '_dmarc.sender.test', text: 'v=DMARC1; p=none; rua=mailto:dmarc@reports.test,mailto:tiny@sender.test!10' },
      { type: 'TXT', name: 'sender.test._report._dmarc.reports.test', text: 'v=DMARC1' },
      { type: 'TXT', name: 'quar.test', text: 'v=spf1 ip4:192.0.2.1 -all' },
      { type: 'TXT', name: '_dmarc.quar.test', text: 'v=DMARC1; p=quarantine; rua=mailto:agg@quar.test' },
      { type: 'TXT', name: 'noconsent.test', text: pass },
      { type: 'TXT', name: '_dmarc.noconsent.test', text: 'v=DMARC1; p=none; rua=mailto:agg@elsewhere.test' },
      { type: 'TXT', name: 'norua.test', text: pass },
      { type: 'TXT', name: '_dmarc.norua.test', text: 'v=DMARC1; p=none' },
      ...['reports.test', 'quar.test', 'sender.test', 'elsewhere.test'].map((name) => ({ type: 'MX' as const, name, exchange: 'mx.sink.test', priority: 10 })),
      { type: 'A', name: 'mx.sink.test', address: '127.0.0.5' },
    ]);
    site = await createSite();
  });
  after(async () => {
    await tern?.stop();
    await Promise.all([sink?.close(), dns?.close()]);
  });

  const start = (extra: string[] = []) =>
    startTern(site, ['--trusted-networks', 'none', '--dns-server', dns.address, '--mx-port', String(mxPort), '--retry-delay', '1s', ...extra]);

  async function send(from: string, subject: string): Promise<void> {
    const c = await openSession(tern!.smtpPort, 'EHLO sender.test');
    try {
      assert.equal((await c.command(`MAIL FROM:<${from}>`)).code, 250);
      assert.equal((await c.command('RCPT TO:<alice@example.test>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      c.send(`${message(from, subject)}.\r\n`);
      const reply = await c.read();
      assert.equal(reply.code, 250, reply.text);
    } finally {
      await c.command('QUIT').catch(() => undefined);
    }
  }

  async function countedDays(): Promise<string[]> {
    const store = await openStore({ dataDir: site.dataDir });
    try {
      return await store.directory.dmarcDays();
    } finally {
      await store.close();
    }
  }

  it('counts nothing while reports are off (the default)', async () => {
    tern = await start();
    await send('a@sender.test', 'Not counted');
    await tern.stop();
    tern = undefined;
    assert.deepEqual(await countedDays(), []);
  });

  it('counts the results by domain and sends each domain its report through the queue', async () => {
    tern = await start(['--dmarc-reports', 'dmarc-reports@example.test']);
    for (const n of [1, 2, 3]) await send(`user${n}@sender.test`, `Hello ${n}`);
    await send('someone@quar.test', 'Quarantined');
    await send('a@noconsent.test', 'No consent');
    await send('a@norua.test', 'No reports wanted');
    const today = new Date().toISOString().slice(0, 10);
    assert.deepEqual(await countedDays(), [today]);

    const out = JSON.parse(
      await cli(['report', 'send', '--date', today, '--from', 'dmarc-reports@example.test', '--dns-server', dns.address, '--json', ...site.args]),
    ) as Array<{
      domain: string;
      messages: number;
      rows: number;
      to: string[];
      skipped: Array<{ address: string; reason: string }>;
    }>;
    assert.deepEqual(
      out.map((r) => [r.domain, r.messages, r.rows, r.to, r.skipped.map((s) => s.address)]),
      [
        ['noconsent.test', 1, 1, [], ['agg@elsewhere.test']],
        ['quar.test', 1, 1, ['agg@quar.test'], []],
        ['sender.test', 3, 1, ['dmarc@reports.test'], ['tiny@sender.test']],
      ],
    );
    assert.match(out[0]!.skipped[0]!.reason, /elsewhere\.test does not take reports for noconsent\.test/);
    assert.match(out[2]!.skipped[0]!.reason, /over its limit of 10/);

    const received = await sink.waitFor(2, 30_000);
    const byDomain = new Map<string, { to: string[]; xml: Buffer; subject: string; from: string }>();
    for (const m of received) {
      const mail = await simpleParser(m.data);
      const report = parseReport(mail.attachments[0]!.content);
      assert.ok(report, 'the attachment is a DMARC report');
      byDomain.set(report.domain, { to: m.to, xml: mail.attachments[0]!.content, subject: mail.subject ?? '', from: m.from });
      assert.equal(report.reporter, 'mx.example.test');
      assert.equal(m.from, 'dmarc-reports@example.test');
    }
    assert.deepEqual(byDomain.get('sender.test')?.to, ['dmarc@reports.test']);
    assert.deepEqual(byDomain.get('quar.test')?.to, ['agg@quar.test']);
    assert.match(byDomain.get('sender.test')!.subject, /^Report Domain: sender\.test Submitter: mx\.example\.test Report-ID: </);

    const rows = (domain: string) => parseReport(byDomain.get(domain)!.xml)!.rows;
    assert.deepEqual(rows('sender.test'), [{ source: '127.0.0.1', count: 3, disposition: 'none', dkim: 'fail', spf: 'pass', headerFrom: 'sender.test' }]);
    assert.deepEqual(rows('quar.test'), [{ source: '127.0.0.1', count: 1, disposition: 'quarantine', dkim: 'fail', spf: 'fail', headerFrom: 'quar.test' }]);

    assert.deepEqual(await countedDays(), [], 'the day was taken');
    assert.match(
      await cli(['report', 'send', '--date', today, '--from', 'dmarc-reports@example.test', '--dns-server', dns.address, ...site.args]),
      /no DMARC results to report/,
    );
  });

  it('refuses a bad --date and sending while reports are off without --from', async () => {
    const { runCli } = await import('../helpers/tern.js');
    const bad = await runCli(['report', 'send', '--date', '2026-13-45', '--from', 'x@example.test', ...site.args]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--date: expected YYYY-MM-DD, got "2026-13-45"/);
    const off = await runCli(['report', 'send', ...site.args]);
    assert.notEqual(off.code, 0);
    assert.match(off.stderr, /DMARC reports are off: give --from, or run tern setting set dmarc_reports/);
  });
});
