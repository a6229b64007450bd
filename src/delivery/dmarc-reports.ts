/**
 * DMARC aggregate reports for the mail Tern receives (RFC 7489 7.2), off by default
 * (`--dmarc-reports ADDRESS`, or the setting `dmarc_reports`). After each stranger's
 * message whose From domain publishes a DMARC record with `rua` addresses, the result is
 * counted in the store by day; once a day (UTC) has ended, the node that takes the day's
 * counts (store.takeDmarcDay: one node of several) sends each domain its report through
 * the outbound queue. A report address outside the domain is used only when its domain
 * agrees to take the reports (7.1: a `<domain>._report._dmarc.<rua domain>` record).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuthenticateResult } from 'mailauth';
import { UserError } from '../errors.js';
import { domainOf, normalizeAddress } from '../mail/address.js';
import { metrics } from '../metrics.js';
import type { MailDns } from '../queue/dns.js';
import type { DmarcRow, Store } from '../store/store.js';
import type { Injector } from './inject.js';

/** The setting that turns reports on: the address they come from. */
export const DMARC_REPORTS_SETTING = 'dmarc_reports';
/** The From address of the reports, or null when they are off (`off`, `none` or nothing). */
export function parseDmarcReports(name: string, value: string | null | undefined): string | null {
  if (!value || value === 'off' || value === 'none') return null;
  try {
    return normalizeAddress(value);
  } catch {
    throw new UserError(`${name}: expected the address reports come from, or off; got ${JSON.stringify(value)}`);
  }
}

/** A day's reports go out once it has been over this long (late counts of the day's last messages land first). */
const SETTLE_MS = 10 * 60_000;
const CHECK_EVERY_MS = 60 * 60_000;
const FIRST_CHECK_MS = 60_000;

/** The UTC day of a moment, YYYY-MM-DD. */
export const utcDay = (d: Date): string => d.toISOString().slice(0, 10);

/** What one domain's report became. */
export interface SentReport {
  domain: string;
  rows: number;
  messages: number;
  /** The addresses it was queued for, and those left out (and why). */
  to: string[];
  skipped: Array<{ address: string; reason: string }>;
  ternId: string | null;
}

export class DmarcReports {
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: { store: Store; injector: Injector; dns: MailDns; log: Logger; hostname: string; from: string }) {}

  /**
   * Counts one checked message (after its verdict; the write is not waited for, and a lost
   * count costs only a report's accuracy). Nothing is counted when the From domain asks for
   * no reports.
   */
  record(r: AuthenticateResult, o: { ip: string; sender: string; helo: string; disposition: DmarcRow['disposition']; reasons: string[] }): void {
    const dmarc = r.dmarc;
    if (!dmarc || !dmarc.rr) return;
    void import('../mail/dmarc-report.js')
      .then(({ publishedDmarc }) => {
        const policy = publishedDmarc(dmarc.rr!);
        if (policy.rua.length === 0) return;
        const mfrom = o.sender ? domainOf(o.sender) : o.helo;
        const row: DmarcRow = {
          source: o.ip,
          headerFrom: (dmarc.status.header as { d?: string } | undefined)?.d ?? dmarc.domain,
          envelopeFrom: mfrom,
          disposition: o.disposition,
          dkim: dmarc.alignment.dkim.result ? 'pass' : 'fail',
          spf: dmarc.alignment.spf.result ? 'pass' : 'fail',
          reasons: o.reasons,
          dkimResults: r.dkim.results.map((d) => ({ domain: d.signingDomain, selector: d.selector ?? '', result: d.status.result })),
          spfResult: { domain: r.spf ? r.spf.domain : mfrom, scope: o.sender ? 'mfrom' : 'helo', result: r.spf ? r.spf.status.result : 'none' },
        };
        return this.deps.store.directory.recordDmarc({ day: utcDay(new Date()), domain: dmarc.domain, policy, row });
      })
      .catch((err: unknown) => this.deps.log.warn({ err: (err as Error).message }, 'DMARC result not counted'));
  }

  /** Checks for ended days once an hour (the first time a minute after start). */
  start(): void {
    const tick = () => {
      this.sendDue(new Date()).catch((err: unknown) => this.deps.log.error({ err: (err as Error).message }, 'DMARC reports not sent'));
      this.timer = setTimeout(tick, CHECK_EVERY_MS).unref();
    };
    this.timer = setTimeout(tick, FIRST_CHECK_MS).unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Sends the reports of every day that ended (and settled) before `now`. */
  async sendDue(now: Date): Promise<SentReport[]> {
    const last = utcDay(new Date(now.getTime() - SETTLE_MS - 86_400_000));
    const sent: SentReport[] = [];
    for (const day of await this.deps.store.directory.dmarcDays()) if (day <= last) sent.push(...(await this.send(day)));
    return sent;
  }

  /** Takes one day's counts and sends each domain its report (a day already taken sends nothing). */
  async send(day: string): Promise<SentReport[]> {
    const { reportMessage } = await import('../mail/dmarc-report.js');
    const begin = new Date(`${day}T00:00:00Z`);
    const end = new Date(begin.getTime() + 86_400_000 - 1000);
    const out: SentReport[] = [];
    for (const d of await this.deps.store.directory.takeDmarcDay(day)) {
      const meta = { orgName: this.deps.hostname, email: this.deps.from, reportId: `${day}.${randomBytes(6).toString('hex')}`, begin, end };
      const skipped: SentReport['skipped'] = [];
      const agreed: typeof d.policy.rua = [];
      for (const r of d.policy.rua) {
        if (await this.takesReportsFor(d.domain, domainOf(r.address))) agreed.push(r);
        else skipped.push({ address: r.address, reason: `${domainOf(r.address)} does not take reports for ${d.domain}` });
      }
      const sent: SentReport = { domain: d.domain, rows: d.rows.length, messages: d.rows.reduce((n, r) => n + r.count, 0), to: [], skipped, ternId: null };
      out.push(sent);
      if (agreed.length === 0) continue;
      const { data, attachmentBytes } = await reportMessage(
        meta,
        d,
        agreed.map((r) => r.address),
      );
      const fits = agreed.filter((r) => r.maxBytes === null || attachmentBytes <= r.maxBytes);
      for (const r of agreed.filter((x) => !fits.includes(x)))
        skipped.push({ address: r.address, reason: `the report (${attachmentBytes} bytes) is over its limit of ${r.maxBytes}` });
      if (fits.length === 0) continue;
      const result = await this.deps.injector.inject({ from: this.deps.from, to: fits.map((r) => r.address), data });
      sent.to = fits.map((r) => r.address);
      sent.ternId = result.ternId;
      metrics.dmarcReports.inc(fits.length);
      this.deps.log.info({ id: result.ternId, day, domain: d.domain, to: sent.to, rows: sent.rows, messages: sent.messages, skipped }, 'DMARC report queued');
    }
    return out;
  }

  /** RFC 7489 7.1: a report address in another domain needs that domain's consent, published in DNS. */
  private async takesReportsFor(domain: string, ruaDomain: string): Promise<boolean> {
    if (ruaDomain === domain || ruaDomain.endsWith(`.${domain}`)) return true;
    try {
      const records = (await this.deps.dns.resolve(`${domain}._report._dmarc.${ruaDomain}`, 'TXT')) as string[][];
      return records.some((chunks) => /^v=DMARC1\s*(;|$)/i.test(chunks.join('')));
    } catch {
      return false;
    }
  }
}
