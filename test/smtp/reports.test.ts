/**
 * DMARC aggregate and TLS reports arriving for the site's domains: a zipped DMARC XML
 * report and a gzipped TLS-RPT JSON report, mailed to a local account, are parsed and
 * kept once each (a resent one is not kept twice); one about a domain that is not ours is
 * not kept; `tern report list|summary` and `/api/v1/reports` show them.
 */
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { zipSync } from 'fflate';
import { openSession } from '../helpers/raw-smtp.js';
import { cli, createSite, freePort, startTern, type Site, type TernServer } from '../helpers/tern.js';

const dmarcXml = (domain: string, id: string) => `<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata><org_name>Reporter Inc</org_name><email>noreply@reporter.test</email><report_id>${id}</report_id>
    <date_range><begin>1764028800</begin><end>1764115199</end></date_range></report_metadata>
  <policy_published><domain>${domain}</domain><p>none</p><pct>100</pct></policy_published>
  <record><row><source_ip>192.0.2.10</source_ip><count>5</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>
    <identifiers><header_from>${domain}</header_from></identifiers></record>
  <record><row><source_ip>198.51.100.7</source_ip><count>2</count><policy_evaluated><disposition>quarantine</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>${domain}</header_from></identifiers></record>
</feedback>`;

const tlsRpt = {
  'organization-name': 'Reporter Inc',
  'date-range': { 'start-datetime': '2026-11-24T00:00:00Z', 'end-datetime': '2026-11-24T23:59:59Z' },
  'contact-info': 'tlsrpt@reporter.test',
  'report-id': '2026-11-24T00:00:00Z_example.test',
  policies: [
    {
      policy: { 'policy-type': 'sts', 'policy-string': ['version: STSv1', 'mode: testing'], 'policy-domain': 'example.test', 'mx-host': ['mx.example.test'] },
      summary: { 'total-successful-session-count': 90, 'total-failure-session-count': 2 },
      'failure-details': [
        { 'result-type': 'certificate-expired', 'sending-mta-ip': '203.0.113.5', 'receiving-mx-hostname': 'mx.example.test', 'failed-session-count': 2 },
      ],
    },
  ],
};

/** A report mail with one attachment. */
function reportMail(subject: string, filename: string, type: string, content: Uint8Array): string {
  const b64 = Buffer.from(content).toString('base64').replace(/.{76}/g, '$&\r\n');
  return [
    'From: <noreply@reporter.test>',
    'To: <alice@example.test>',
    `Subject: ${subject}`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b"',
    '',
    '--b',
    'Content-Type: text/plain',
    '',
    'This is a report.',
    '--b',
    `Content-Type: ${type}; name="${filename}"`,
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment; filename="${filename}"`,
    '',
    b64,
    '--b--',
    '',
  ].join('\r\n');
}

describe('DMARC and TLS reports', { timeout: 60_000 }, () => {
  let site: Site;
  let tern: TernServer;
  let httpPort: number;

  before(async () => {
    site = await createSite();
    httpPort = await freePort();
    tern = await startTern(site, ['--http-port', String(httpPort)]);
  });
  after(async () => {
    await tern?.stop();
  });

  async function send(message: string) {
    const c = await openSession(tern.smtpPort);
    try {
      await c.command('MAIL FROM:<noreply@reporter.test>');
      await c.command('RCPT TO:<alice@example.test>');
      await c.command('DATA');
      c.send(`${message}.\r\n`);
      assert.equal((await c.read()).code, 250);
    } finally {
      c.close();
    }
  }
  const kept = async () => JSON.parse(await cli(['report', 'list', '--json', ...site.args])) as Array<{ kind: string; domain: string; reportId: string }>;
  async function waitForReports(n: number) {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const list = await kept();
      if (list.length >= n || Date.now() > deadline) return list;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  it('keeps the reports for our domains, once each', async () => {
    const zip = zipSync({ 'reporter.test!example.test!1764028800!1764115199.xml': Buffer.from(dmarcXml('example.test', 'r-1')) });
    await send(reportMail('Report Domain: example.test Submitter: reporter.test Report-ID: r-1', 'report.zip', 'application/zip', zip));
    const gz = gzipSync(JSON.stringify(tlsRpt));
    await send(reportMail('Report Domain: example.test', 'report.json.gz', 'application/tlsrpt+gzip', gz));
    await send(reportMail('Not ours', 'other.xml.gz', 'application/gzip', gzipSync(dmarcXml('elsewhere.test', 'r-2'))));
    assert.deepEqual((await waitForReports(2)).map((r) => [r.kind, r.domain, r.reportId]).sort(), [
      ['dmarc', 'example.test', 'r-1'],
      ['tlsrpt', 'example.test', '2026-11-24T00:00:00Z_example.test'],
    ]);
    // The same report again is not kept twice.
    await send(reportMail('Report Domain: example.test (again)', 'report.zip', 'application/zip', zip));
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await kept()).length, 2);
  });

  it('sums them up per sending address and TLS reporter, in the CLI and the API', async () => {
    const summary = JSON.parse(await cli(['report', 'summary', 'example.test', '--json', ...site.args])) as {
      reports: number;
      dmarc: Array<{ source: string; messages: number; dkimPass: number; spfPass: number; dispositions: Record<string, number> }>;
      tls: Array<{ reporter: string; success: number; failure: number; failures: Record<string, number> }>;
    };
    assert.equal(summary.reports, 2);
    assert.deepEqual(
      summary.dmarc.map((s) => [s.source, s.messages, s.dkimPass, s.spfPass, s.dispositions]),
      [
        ['192.0.2.10', 5, 5, 5, { none: 5 }],
        ['198.51.100.7', 2, 0, 0, { quarantine: 2 }],
      ],
    );
    assert.deepEqual(summary.tls, [{ reporter: 'Reporter Inc', success: 90, failure: 2, failures: { 'certificate-expired': 2 } }]);

    const key = (JSON.parse(await cli(['apikey', 'create', '--scope', 'admin', '--json', ...site.args])) as { key: string }).key;
    const api = async (path: string) => {
      const r = await fetch(`http://127.0.0.1:${httpPort}${path}`, { headers: { authorization: `Bearer ${key}` } });
      return { status: r.status, body: (await r.json()) as unknown };
    };
    const viaApi = await api('/api/v1/reports/summary?domain=example.test');
    assert.equal(viaApi.status, 200);
    assert.deepEqual(viaApi.body, summary);
    const dmarcOnly = (await api('/api/v1/reports?kind=dmarc')).body as Array<{ reporter: string; rows: unknown[] }>;
    assert.deepEqual(
      dmarcOnly.map((r) => [r.reporter, r.rows.length]),
      [['Reporter Inc', 2]],
    );
    assert.equal((await api('/api/v1/reports?kind=arf')).status, 400);
    assert.equal((await api('/api/v1/reports/summary?domain=nowhere.test')).status, 404);
  });
});
