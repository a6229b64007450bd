/**
 * The DMARC aggregate reports Tern sends: a published record's tags and report addresses
 * (with size limits), the appendix C XML read back by Tern's own report parser, and which
 * days the daily job sends (only days that ended over ten minutes ago, each once) into a
 * real store, with the report address's consent looked up in a local DNS server.
 */
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { simpleParser } from 'mailparser';
import { withInjector } from '../../src/cli/context.js';
import { DmarcReports, parseDmarcReports } from '../../src/delivery/dmarc-reports.js';
import { createLogger } from '../../src/log.js';
import { aggregateXml, publishedDmarc, reportMessage } from '../../src/mail/dmarc-report.js';
import { parseReport } from '../../src/mail/reports.js';
import { createMailDns } from '../../src/queue/dns.js';
import { openStore } from '../../src/store/open.js';
import { collect, type DmarcDomainDay, type DmarcRow, type Store } from '../../src/store/store.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { cli, createSite, type Site } from '../helpers/tern.js';

const row: DmarcRow = {
  source: '192.0.2.7',
  headerFrom: 'mail.sender.test',
  envelopeFrom: 'bounces.sender.test',
  disposition: 'quarantine',
  dkim: 'fail',
  spf: 'fail',
  reasons: ['sampled_out'],
  dkimResults: [{ domain: 'sender.test', selector: 's1', result: 'fail' }],
  spfResult: { domain: 'bounces.sender.test', scope: 'mfrom', result: 'softfail' },
};

describe('DMARC aggregate reports we send', () => {
  it('reads the tags a report needs from a DMARC record', () => {
    assert.deepEqual(publishedDmarc('v=DMARC1; p=reject; rua=mailto:a@x.test,mailto:b%2Bdmarc@y.test!10m, https://z.test/r ,mailto:c@x.test!500; adkim=s'), {
      p: 'reject',
      sp: 'reject',
      pct: 100,
      adkim: 's',
      aspf: 'r',
      rua: [
        { address: 'a@x.test', maxBytes: null },
        { address: 'b+dmarc@y.test', maxBytes: 10 * 1024 * 1024 },
        { address: 'c@x.test', maxBytes: 500 },
      ],
    });
    const d = publishedDmarc('v=DMARC1;p=quarantine;sp=none;pct=25;aspf=s');
    assert.deepEqual([d.p, d.sp, d.pct, d.adkim, d.aspf, d.rua], ['quarantine', 'none', 25, 'r', 's', []]);
    assert.equal(publishedDmarc('v=DMARC1; p=none; pct=250').pct, 100, 'a pct out of range counts as 100');
  });

  it('writes RFC 7489 appendix C XML that a report reader takes', () => {
    const day: DmarcDomainDay = {
      domain: 'sender.test',
      policy: { p: 'quarantine', sp: 'quarantine', pct: 50, adkim: 'r', aspf: 'r', rua: [] },
      rows: [
        { ...row, count: 4 },
        { ...row, source: '2001:db8::1', disposition: 'none', dkim: 'pass', reasons: [], dkimResults: [], count: 1 },
      ],
    };
    const meta = {
      orgName: 'mx.<example>.test',
      email: 'dmarc@example.test',
      reportId: '2026-11-20.abc',
      begin: new Date('2026-11-20T00:00:00Z'),
      end: new Date('2026-11-20T23:59:59Z'),
    };
    const xml = aggregateXml(meta, day);
    assert.match(xml, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<feedback>/);
    assert.match(xml, /<org_name>mx.&lt;example&gt;.test<\/org_name>/, 'text is escaped');
    assert.match(xml, /<date_range>\s*<begin>1795132800<\/begin>\s*<end>1795219199<\/end>/);
    assert.match(xml, /<reason>\s*<type>sampled_out<\/type>\s*<\/reason>/);
    assert.match(xml, /<dkim>\s*<domain>sender.test<\/domain>\s*<selector>s1<\/selector>\s*<result>fail<\/result>\s*<\/dkim>/);
    assert.match(xml, /<spf>\s*<domain>bounces.sender.test<\/domain>\s*<scope>mfrom<\/scope>\s*<result>softfail<\/result>\s*<\/spf>/);
    assert.match(xml, /<envelope_from>bounces.sender.test<\/envelope_from>/);
    const parsed = parseReport(Buffer.from(xml));
    assert.ok(parsed);
    assert.deepEqual([parsed.kind, parsed.domain, parsed.reporter, parsed.reportId], ['dmarc', 'sender.test', 'mx.<example>.test', '2026-11-20.abc']);
    assert.deepEqual(parsed.rows, [
      { source: '192.0.2.7', count: 4, disposition: 'quarantine', dkim: 'fail', spf: 'fail', headerFrom: 'mail.sender.test' },
      { source: '2001:db8::1', count: 1, disposition: 'none', dkim: 'pass', spf: 'fail', headerFrom: 'mail.sender.test' },
    ]);
  });

  it('mails the report gzipped under the name and subject RFC 7489 7.2.1.1 gives', async () => {
    const day: DmarcDomainDay = {
      domain: 'sender.test',
      policy: { p: 'none', sp: 'none', pct: 100, adkim: 'r', aspf: 'r', rua: [] },
      rows: [{ ...row, count: 2 }],
    };
    const meta = {
      orgName: 'mx.example.test',
      email: 'dmarc@example.test',
      reportId: 'r1',
      begin: new Date('2026-11-20T00:00:00Z'),
      end: new Date('2026-11-20T23:59:59Z'),
    };
    const { data, attachmentBytes } = await reportMessage(meta, day, ['agg@sender.test']);
    const mail = await simpleParser(data);
    assert.equal(mail.subject, 'Report Domain: sender.test Submitter: mx.example.test Report-ID: <r1>');
    assert.equal(mail.from?.text, 'dmarc@example.test');
    const [gz] = mail.attachments;
    assert.equal(gz?.filename, 'mx.example.test!sender.test!1795132800!1795219199!r1.xml.gz');
    assert.equal(gz?.contentType, 'application/gzip');
    assert.equal(gz?.content.length, attachmentBytes);
    assert.equal(parseReport(gz.content)?.rows.length, 1);
    assert.match(gunzipSync(gz.content).toString(), /<count>2<\/count>/);
  });

  it('takes the From address, or off', () => {
    assert.equal(parseDmarcReports('--dmarc-reports', 'DMARC@Example.TEST'), 'dmarc@example.test');
    for (const off of [undefined, null, '', 'off', 'none']) assert.equal(parseDmarcReports('--dmarc-reports', off), null);
    assert.throws(() => parseDmarcReports('--dmarc-reports', 'not an address'), /--dmarc-reports: expected the address reports come from, or off/);
  });
});

describe('the daily DMARC report job', { timeout: 60_000 }, () => {
  let site: Site;
  let store: Store;
  let dns: TestDnsServer;
  let reports: DmarcReports;
  let finish: () => void;
  let done: Promise<void>;

  before(async () => {
    site = await createSite();
    await cli(['user', 'add', 'agg@example.test', '--password-stdin', ...site.args], 'password123\n');
    // example.test takes reports for sender.test (RFC 7489 7.1); not for other.test.
    dns = await startDnsServer([{ type: 'TXT', name: 'sender.test._report._dmarc.example.test', text: 'v=DMARC1' }]);
    store = await openStore({ dataDir: site.dataDir });
    const ready = new Promise<DmarcReports>((resolve) => {
      done = withInjector(store, 'mx.example.test', async (injector) => {
        resolve(
          new DmarcReports({
            store,
            injector,
            dns: createMailDns({ servers: [dns.address] }),
            log: createLogger('silent', 2),
            hostname: 'mx.example.test',
            from: 'dmarc@example.test',
          }),
        );
        await new Promise<void>((r) => (finish = r));
      });
    });
    reports = await ready;
  });
  after(async () => {
    finish?.();
    await done;
    await store?.close();
    await dns?.close();
  });

  it('sends a day once it has ended, to the addresses that consent, and only once', async () => {
    const policy = { p: 'none', sp: 'none', pct: 100, adkim: 'r' as const, aspf: 'r' as const, rua: [{ address: 'agg@example.test', maxBytes: null }] };
    await store.directory.recordDmarc({ day: '2026-11-20', domain: 'sender.test', policy, row });
    await store.directory.recordDmarc({ day: '2026-11-20', domain: 'other.test', policy, row: { ...row, headerFrom: 'other.test' } });
    await store.directory.recordDmarc({ day: '2026-11-21', domain: 'sender.test', policy, row });

    assert.deepEqual(await reports.sendDue(new Date('2026-11-21T00:09:00Z')), [], 'a day that ended under ten minutes ago waits');
    const sent = await reports.sendDue(new Date('2026-11-21T00:11:00Z'));
    assert.deepEqual(
      sent.map((s) => [s.domain, s.messages, s.to, s.skipped]),
      [
        ['other.test', 1, [], [{ address: 'agg@example.test', reason: 'example.test does not take reports for other.test' }]],
        ['sender.test', 1, ['agg@example.test'], []],
      ],
    );
    assert.deepEqual(await reports.sendDue(new Date('2026-11-21T12:00:00Z')), [], 'sent days are gone');
    assert.deepEqual(await store.directory.dmarcDays(), ['2026-11-21']);

    const [message] = await store.mailboxes.messagesOf('agg@example.test');
    assert.ok(message, 'the report was delivered to the local report address');
    const mail = await simpleParser(await collect(store.mailboxes.read(message.id)));
    assert.match(mail.subject ?? '', /^Report Domain: sender.test Submitter: mx.example.test Report-ID: <2026-11-20\.[0-9a-f]{12}>$/);
    assert.equal(parseReport(mail.attachments[0]!.content)?.domain, 'sender.test');
  });
});
