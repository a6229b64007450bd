/**
 * The DMARC aggregate reports Tern sends (RFC 7489 7.2): a domain's published record read
 * for its `rua` addresses, a day of counted results written as the appendix C XML, and the
 * report message (7.2.1.1: the Subject names the domain, submitter and report id; the XML
 * travels gzipped as `submitter!domain!begin!end!id.xml.gz`).
 */
import { gzipSync } from 'node:zlib';
import { XMLBuilder } from 'fast-xml-parser';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type { DmarcDomainDay, PublishedDmarc } from '../store/store.js';

const UNITS: Record<string, number> = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** The tags of a DMARC record (`v=DMARC1; p=…; rua=…`) a report needs; the defaults are RFC 7489 6.3's. */
export function publishedDmarc(record: string): PublishedDmarc {
  const tags = new Map<string, string>();
  for (const part of record.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) tags.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const p = (tags.get('p') ?? 'none').toLowerCase();
  const pct = Number(tags.get('pct') ?? 100);
  const rua: PublishedDmarc['rua'] = [];
  for (const uri of (tags.get('rua') ?? '').split(',')) {
    // A URI with an optional size limit: mailto:reports@example.com!10m (7.1).
    const m = /^\s*mailto:([^!\s]+@[^!\s]+?)(?:!(\d+)([kmgt])?)?\s*$/i.exec(uri);
    if (!m) continue;
    let address: string;
    try {
      address = decodeURIComponent(m[1]!).toLowerCase();
    } catch {
      continue;
    }
    rua.push({ address, maxBytes: m[2] ? Number(m[2]) * (UNITS[(m[3] ?? '').toLowerCase()] ?? 1) : null });
  }
  return {
    p,
    sp: (tags.get('sp') ?? p).toLowerCase(),
    pct: Number.isInteger(pct) && pct >= 0 && pct <= 100 ? pct : 100,
    adkim: tags.get('adkim')?.toLowerCase() === 's' ? 's' : 'r',
    aspf: tags.get('aspf')?.toLowerCase() === 's' ? 's' : 'r',
    rua,
  };
}

export interface ReportMeta {
  /** The reporting organisation (Tern's host name) and the address reports come from. */
  orgName: string;
  email: string;
  reportId: string;
  /** The period the report covers. */
  begin: Date;
  end: Date;
}

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

/** One domain's day as RFC 7489 appendix C's `feedback` document. */
export function aggregateXml(meta: ReportMeta, day: DmarcDomainDay): string {
  const feedback = {
    version: '1.0',
    report_metadata: {
      org_name: meta.orgName,
      email: meta.email,
      report_id: meta.reportId,
      date_range: { begin: seconds(meta.begin), end: seconds(meta.end) },
    },
    policy_published: {
      domain: day.domain,
      adkim: day.policy.adkim,
      aspf: day.policy.aspf,
      p: day.policy.p,
      sp: day.policy.sp,
      pct: day.policy.pct,
    },
    record: day.rows.map((r) => ({
      row: {
        source_ip: r.source,
        count: r.count,
        policy_evaluated: { disposition: r.disposition, dkim: r.dkim, spf: r.spf, reason: r.reasons.map((type) => ({ type })) },
      },
      identifiers: { envelope_from: r.envelopeFrom, header_from: r.headerFrom },
      auth_results: {
        dkim: r.dkimResults.map((d) => ({ domain: d.domain, selector: d.selector, result: d.result })),
        spf: { domain: r.spfResult.domain, scope: r.spfResult.scope, result: r.spfResult.result },
      },
    })),
  };
  const builder = new XMLBuilder({ format: true, indentBy: '  ', suppressEmptyNode: false });
  return `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build({ feedback })}`;
}

/** The report message for one domain's day, to `to` (its rua addresses), compressed as 7.2.1.1 asks. */
export async function reportMessage(meta: ReportMeta, day: DmarcDomainDay, to: string[]): Promise<{ data: Buffer; attachmentBytes: number }> {
  const gz = gzipSync(aggregateXml(meta, day));
  const filename = `${meta.orgName}!${day.domain}!${seconds(meta.begin)}!${seconds(meta.end)}!${meta.reportId}.xml.gz`;
  const composer = new MailComposer({
    from: meta.email,
    to,
    subject: `Report Domain: ${day.domain} Submitter: ${meta.orgName} Report-ID: <${meta.reportId}>`,
    messageId: `<${meta.reportId}@${meta.orgName}>`,
    date: meta.end,
    text: `DMARC aggregate report from ${meta.orgName} for ${day.domain}, ${meta.begin.toISOString()} to ${meta.end.toISOString()} (RFC 7489).\n`,
    attachments: [{ filename, content: gz, contentType: 'application/gzip' }],
  });
  const data = await new Promise<Buffer>((resolve, reject) => composer.compile().build((err, message) => (err ? reject(err) : resolve(message))));
  return { data, attachmentBytes: gz.length };
}
