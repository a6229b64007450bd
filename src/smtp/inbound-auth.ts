/**
 * Inbound authentication on the MX (RFC 7208 SPF, RFC 6376 DKIM, RFC 7489 DMARC, RFC 8617
 * ARC) through mailauth, with the configured resolver. The result is one Authentication-
 * Results field (RFC 8601) plus Received-SPF, stored at the top of each recipient's copy,
 * and a verdict:
 * - DMARC `p=reject` on a failing message: refused with 550 5.7.1;
 * - DMARC `p=quarantine`: delivered to the recipient's Junk mailbox;
 * - an SPF `fail` refuses the message too where the recipient's domain asks for that.
 * What a domain enforces is its `inbound_policy:<domain>` setting (`tern domain policy`;
 * by default DMARC is enforced and SPF is left to DMARC); with `dmarc: monitor` the
 * results are only recorded. A lookup that takes too long never holds the client: past
 * the deadline (or when the checks fail) the message is accepted with
 * `Authentication-Results: <host>; none`.
 */
import { Readable } from 'node:stream';
import { UserError } from '../errors.js';
import type { MailDns } from '../queue/dns.js';
import type { DirectoryStore, MailboxStore } from '../store/store.js';
import { Replies, type Reply } from './replies.js';
import { metrics } from '../metrics.js';
import type { DmarcReports } from '../delivery/dmarc-reports.js';

/** The setting that holds a domain's inbound policy (JSON). */
export const policySetting = (domain: string) => `inbound_policy:${domain}`;

export interface InboundPolicy {
  /** enforce: reject and quarantine as the sender's DMARC record asks; monitor: record only. */
  dmarc: 'enforce' | 'monitor';
  /** reject: an SPF `fail` is refused (550 5.7.23) whatever DMARC says; monitor: SPF counts through DMARC only. */
  spf: 'reject' | 'monitor';
  /** Greylist strangers' mail for the domain (on for all domains with `--greylist`). */
  greylist: boolean;
  /** The MTA-STS policy (RFC 8461) the http role serves for the domain: senders must use TLS to its MX (enforce), report only (testing), or none. */
  mtaSts: 'enforce' | 'testing' | 'none';
}

export const DEFAULT_POLICY: InboundPolicy = { dmarc: 'enforce', spf: 'monitor', greylist: false, mtaSts: 'testing' };

/** A stored or typed policy, checked; unknown fields and values are refused. */
export function parsePolicy(value: unknown): InboundPolicy {
  const v = (value ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(v)) if (!(k in DEFAULT_POLICY)) throw new UserError(`inbound policy: unknown field ${JSON.stringify(k)}`);
  const dmarc = v.dmarc ?? DEFAULT_POLICY.dmarc;
  const spf = v.spf ?? DEFAULT_POLICY.spf;
  if (dmarc !== 'enforce' && dmarc !== 'monitor') throw new UserError(`inbound policy: dmarc is enforce or monitor, got ${JSON.stringify(dmarc)}`);
  if (spf !== 'reject' && spf !== 'monitor') throw new UserError(`inbound policy: spf is reject or monitor, got ${JSON.stringify(spf)}`);
  const greylist = v.greylist ?? DEFAULT_POLICY.greylist;
  if (typeof greylist !== 'boolean') throw new UserError(`inbound policy: greylist is true or false, got ${JSON.stringify(greylist)}`);
  const mtaSts = v.mtaSts ?? DEFAULT_POLICY.mtaSts;
  if (mtaSts !== 'enforce' && mtaSts !== 'testing' && mtaSts !== 'none')
    throw new UserError(`inbound policy: mtaSts is enforce, testing or none, got ${JSON.stringify(mtaSts)}`);
  return { dmarc, spf, greylist, mtaSts };
}

export interface AuthVerdict {
  /** Received-SPF and Authentication-Results lines (CRLF), to store before the message. */
  header: string;
  action: 'accept' | 'junk' | 'reject';
  /** A reject's reply. */
  reply?: Reply;
  /** What decided it: dmarc-reject, dmarc-quarantine, spf-fail. */
  reason?: string;
  results: { spf: string; dkim: string; dmarc: string; arc: string };
}

const POLICY_CACHE_MS = 5_000;
/** The longest the checks may hold a client's reply; past it the message is accepted unchecked. */
export const INBOUND_AUTH_TIMEOUT_MS = 10_000;

export class InboundAuth {
  private readonly policies = new Map<string, { until: number; policy: Promise<InboundPolicy> }>();

  constructor(
    private readonly deps: {
      dns: MailDns;
      directory: DirectoryStore;
      mailboxes: Pick<MailboxStore, 'list'>;
      hostname: string;
      timeoutMs: number;
      /** Counts DMARC results for the aggregate reports, when they are on. */
      reports?: DmarcReports;
    },
  ) {}

  /** The policy that applies to mail for `domain` (remembered for a few seconds). */
  policyFor(domain: string): Promise<InboundPolicy> {
    const now = Date.now();
    const hit = this.policies.get(domain);
    if (hit && hit.until > now) return hit.policy;
    if (this.policies.size > 10_000) this.policies.clear();
    const policy = (async () => {
      const raw = await this.deps.directory.getSetting(policySetting(domain));
      try {
        return parsePolicy(raw ? JSON.parse(raw) : {});
      } catch {
        return DEFAULT_POLICY; // a damaged setting must not refuse mail
      }
    })();
    policy.catch(() => this.policies.delete(domain));
    this.policies.set(domain, { until: now + POLICY_CACHE_MS, policy });
    return policy;
  }

  async check(o: { ip: string; helo: string; sender: string; message: AsyncIterable<Buffer>; recipientDomains: string[] }): Promise<AuthVerdict> {
    const host = this.deps.hostname;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), this.deps.timeoutMs)));
    // mailauth's checks are loaded with the first stranger's message (a site that only takes mail from trusted hosts never loads them).
    const { authenticate } = await import('mailauth');
    const checked = authenticate(Readable.from(o.message), {
      ip: o.ip,
      helo: o.helo,
      sender: o.sender,
      mta: host,
      resolver: (name, rrtype) => this.deps.dns.resolve(name, rrtype),
      disableBimi: true,
    });
    // A check that fails or runs out of time must not cost the message: it is accepted, unchecked.
    const r = await Promise.race([checked, deadline])
      .catch(() => null)
      .finally(() => clearTimeout(timer));
    if (!r) {
      checked.catch(() => undefined);
      metrics.inboundAuth.inc({ method: 'all', result: 'unchecked' });
      return { header: `Authentication-Results: ${host}; none\r\n`, action: 'accept', results: { spf: 'none', dkim: 'none', dmarc: 'none', arc: 'none' } };
    }
    const dkim = r.dkim.results.length === 0 ? 'none' : r.dkim.results.some((x) => x.status.result === 'pass') ? 'pass' : r.dkim.results[0]!.status.result;
    const results = {
      spf: r.spf ? r.spf.status.result : 'none',
      dkim,
      dmarc: r.dmarc ? r.dmarc.status.result : 'none',
      arc: r.arc ? r.arc.status.result : 'none',
    };
    for (const [method, result] of Object.entries(results)) metrics.inboundAuth.inc({ method, result });

    const policies = await Promise.all([...new Set(o.recipientDomains)].map((d) => this.policyFor(d)));
    const enforcesDmarc = policies.some((p) => p.dmarc === 'enforce');
    const rejectsSpf = policies.some((p) => p.spf === 'reject');
    const verdict: AuthVerdict = { header: r.headers, action: 'accept', results };
    /** Why the outcome is not what the sender's policy asks, for the DMARC reports (RFC 7489 appendix C, PolicyOverrideType). */
    const overrides: string[] = [];
    if (r.dmarc && results.dmarc === 'fail') {
      const policy = applied(r.dmarc.policy, r.dmarc.pct);
      const from = r.dmarc.domain;
      if (policy !== r.dmarc.policy) overrides.push('sampled_out');
      if (!enforcesDmarc) {
        if (policy !== 'none') overrides.push('local_policy');
      } else if (policy === 'reject') Object.assign(verdict, { action: 'reject', reason: 'dmarc-reject', reply: Replies.dmarcReject(from) });
      else if (policy === 'quarantine') Object.assign(verdict, { action: 'junk', reason: 'dmarc-quarantine' });
    }
    if (verdict.action !== 'reject' && rejectsSpf && r.spf && results.spf === 'fail') {
      Object.assign(verdict, { action: 'reject', reason: 'spf-fail', reply: Replies.spfFail(r.spf.domain, o.ip) });
      overrides.push('local_policy');
    }
    if (verdict.reason) metrics.inboundVerdicts.inc({ action: verdict.action, reason: verdict.reason });
    const disposition = verdict.action === 'reject' ? 'reject' : verdict.action === 'junk' ? 'quarantine' : 'none';
    this.deps.reports?.record(r, { ip: o.ip, sender: o.sender, helo: o.helo, disposition, reasons: overrides });
    return verdict;
  }

  /** Where a quarantined copy goes: the account's Junk mailbox (by its special use, else by name); INBOX when it has none. */
  async junkMailbox(accountId: number): Promise<string | undefined> {
    const boxes = await this.deps.mailboxes.list(accountId);
    return (boxes.find((b) => b.specialUse === '\\Junk') ?? boxes.find((b) => b.name === 'Junk'))?.name;
  }
}

/** RFC 7489 6.6.4: with pct below 100, that share of failing messages gets the policy and the rest the next milder one. */
function applied(policy: string, pct: number | undefined): string {
  if (pct === undefined || pct >= 100 || Math.random() * 100 < pct) return policy;
  return policy === 'reject' ? 'quarantine' : 'none';
}
