/**
 * Keeps the DMARC and TLS reports that arrive for the site's domains: after a message from
 * outside is stored, one with an attachment of a report's type is read again (in the
 * background: the sender already has its 250), each report in it parsed (mail/reports.ts)
 * and kept once (`tern report`, `/api/v1/reports`) when its domain is one of ours.
 */
import type { Logger } from 'pino';
import { parseStoredStructure, type MimePart } from '../mail/mime/index.js';
import { collect, type NewDelivery, type Store } from '../store/store.js';

/** Content types reports come as (RFC 7489 7.2.1.1, RFC 8460 5.3). */
const REPORT_TYPES = new Set([
  'application/zip',
  'application/x-zip-compressed',
  'application/gzip',
  'application/x-gzip',
  'application/xml',
  'text/xml',
  'application/tlsrpt+gzip',
  'application/tlsrpt+json',
]);

/** Messages larger than this are not looked into (reports are small; a zip bomb is not). */
const MAX_MESSAGE_BYTES = 10 * 1024 * 1024;

export interface ReportIntake {
  /** Looks into a stored message for reports, in the background. */
  consider(delivery: NewDelivery): void;
}

function hasReportPart(p: MimePart): boolean {
  return REPORT_TYPES.has(`${p.type}/${p.subtype}`) || (p.children ?? []).some(hasReportPart);
}

export function createReportIntake(store: Store, log: Logger): ReportIntake {
  async function read(delivery: NewDelivery): Promise<void> {
    const chunks = await store.blobs.read(delivery.blob.hash);
    if (!chunks) return;
    // Loaded when the first report arrives: a site that gets none never pays for the parsers.
    const [{ simpleParser }, { parseReport }] = await Promise.all([import('mailparser'), import('../mail/reports.js')]);
    const parsed = await simpleParser(await collect(chunks), { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true, skipTextLinks: true });
    for (const a of parsed.attachments) {
      const report = parseReport(a.content);
      if (!report) continue;
      if (!(await store.directory.isLocalDomain(report.domain))) {
        log.info({ id: delivery.ternId, domain: report.domain, reporter: report.reporter }, 'report for a domain that is not ours: not kept');
        continue;
      }
      const kept = await store.directory.addReport(report);
      log.info(
        { id: delivery.ternId, kind: report.kind, domain: report.domain, reporter: report.reporter, reportId: report.reportId, kept },
        kept ? 'report kept' : 'report already kept',
      );
    }
  }

  return {
    consider(delivery) {
      const structure = delivery.blob.structure;
      if (!structure || delivery.blob.size > MAX_MESSAGE_BYTES) return;
      try {
        if (!hasReportPart(parseStoredStructure(structure.json).root)) return;
      } catch {
        return;
      }
      read(delivery).catch((err: unknown) => log.warn({ id: delivery.ternId, err: (err as Error).message }, 'report could not be read'));
    },
  };
}
