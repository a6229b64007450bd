/**
 * Reading the reports other mail systems send about a domain's mail: DMARC aggregate
 * reports (RFC 7489 7.2, XML, usually zipped or gzipped) and TLS reports (RFC 8460, JSON,
 * usually gzipped). Attachments are decompressed with a size cap (a zip bomb stops at
 * MAX_REPORT_BYTES) and parsed into the rows Tern keeps; anything else is not a report
 * (null).
 */
import { gunzipSync } from 'node:zlib';
import { XMLParser } from 'fast-xml-parser';
import { unzipSync } from 'fflate';
import type { Report, ReportRow } from '../store/store.js';

export type ParsedReport = Omit<Report, 'id' | 'receivedAt'>;

/** Largest report accepted, uncompressed. */
export const MAX_REPORT_BYTES = 20 * 1024 * 1024;
/** The report in an attachment, or null when it holds none. */
export function parseReport(content: Buffer): ParsedReport | null {
  const text = decompress(content);
  if (text === null) return null;
  const start = text.trimStart();
  try {
    if (start.startsWith('<')) return parseDmarc(start);
    if (start.startsWith('{')) return parseTlsRpt(start);
  } catch {
    return null; // not a report after all
  }
  return null;
}

function decompress(b: Buffer): string | null {
  if (b[0] === 0x1f && b[1] === 0x8b) return gunzipSync(b, { maxOutputLength: MAX_REPORT_BYTES }).toString('utf8');
  if (b[0] === 0x50 && b[1] === 0x4b) {
    const files = unzipSync(b, { filter: (f) => f.originalSize <= MAX_REPORT_BYTES && /\.(xml|json)$/i.test(f.name) });
    const first = Object.values(files)[0];
    return first ? Buffer.from(first).toString('utf8') : null;
  }
  return b.length <= MAX_REPORT_BYTES ? b.toString('utf8') : null;
}

const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const seconds = (v: unknown) => new Date(Number(v) * 1000);

interface DmarcXml {
  feedback?: {
    report_metadata?: { org_name?: string; report_id?: string | number; date_range?: { begin?: number; end?: number } };
    policy_published?: { domain?: string };
    record?: Array<{
      row?: { source_ip?: string; count?: number; policy_evaluated?: { disposition?: string; dkim?: string; spf?: string } };
      identifiers?: { header_from?: string };
    }>;
  };
}

function parseDmarc(xml: string): ParsedReport | null {
  const doc = new XMLParser({ ignoreAttributes: true, parseTagValue: true, isArray: (name) => name === 'record' }).parse(xml) as DmarcXml;
  const f = doc.feedback;
  const meta = f?.report_metadata;
  const domain = f?.policy_published?.domain;
  if (!meta?.org_name || meta.report_id === undefined || !domain) return null;
  const rows: ReportRow[] = list(f.record).map((r) => ({
    source: String(r.row?.source_ip ?? ''),
    count: Number(r.row?.count ?? 0),
    disposition: String(r.row?.policy_evaluated?.disposition ?? 'none'),
    dkim: String(r.row?.policy_evaluated?.dkim ?? 'none'),
    spf: String(r.row?.policy_evaluated?.spf ?? 'none'),
    headerFrom: String(r.identifiers?.header_from ?? domain),
  }));
  return {
    kind: 'dmarc',
    domain: String(domain).toLowerCase(),
    reporter: String(meta.org_name),
    reportId: String(meta.report_id),
    begin: seconds(meta.date_range?.begin),
    end: seconds(meta.date_range?.end),
    rows,
  };
}

interface TlsRptJson {
  'organization-name'?: string;
  'report-id'?: string;
  'date-range'?: { 'start-datetime'?: string; 'end-datetime'?: string };
  policies?: Array<{
    policy?: { 'policy-type'?: string; 'policy-domain'?: string; 'mx-host'?: string[] };
    summary?: { 'total-successful-session-count'?: number; 'total-failure-session-count'?: number };
    'failure-details'?: Array<{ 'result-type'?: string; 'sending-mta-ip'?: string; 'failed-session-count'?: number }>;
  }>;
}

function parseTlsRpt(json: string): ParsedReport | null {
  const r = JSON.parse(json) as TlsRptJson;
  const domain = r.policies?.[0]?.policy?.['policy-domain'];
  if (!r['organization-name'] || !r['report-id'] || !domain) return null;
  return {
    kind: 'tlsrpt',
    domain: domain.toLowerCase(),
    reporter: r['organization-name'],
    reportId: r['report-id'],
    begin: new Date(r['date-range']?.['start-datetime'] ?? 0),
    end: new Date(r['date-range']?.['end-datetime'] ?? 0),
    rows: (r.policies ?? []).map((p) => ({
      policy: String(p.policy?.['policy-type'] ?? 'no-policy-found'),
      mx: list(p.policy?.['mx-host']).map(String),
      success: Number(p.summary?.['total-successful-session-count'] ?? 0),
      failure: Number(p.summary?.['total-failure-session-count'] ?? 0),
      failures: (p['failure-details'] ?? []).map((d) => ({
        type: String(d['result-type'] ?? 'unknown'),
        ip: d['sending-mta-ip'] ?? null,
        count: Number(d['failed-session-count'] ?? 0),
      })),
    })),
  };
}
