/**
 * The process's Prometheus metrics (prom-client), in one registry that `/metrics` renders:
 * counters the protocol and delivery code increment as things happen, so every role
 * reports what it did whether or not this process serves HTTP.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export const registry = new Registry();

export const metrics = {
  /** Messages accepted (stored or queued), by the way they came: smtp, lmtp, submission, local (the API, bounces, tern send). */
  received: new Counter({ name: 'tern_messages_received_total', help: 'Messages accepted, by how they arrived', labelNames: ['via'], registers: [registry] }),
  /** Outbound delivery attempts per recipient, by outcome: delivered, deferred, failed. */
  deliveries: new Counter({ name: 'tern_deliveries_total', help: 'Outbound recipient attempts, by outcome', labelNames: ['result'], registers: [registry] }),
  /** Delivery status notifications sent, by action: failed (bounces), delayed, delivered, relayed. */
  notices: new Counter({
    name: 'tern_delivery_notices_total',
    help: 'Delivery status notifications sent, by action',
    labelNames: ['action'],
    registers: [registry],
  }),
  /** One attempt of a queue entry (one SMTP transaction per DSN group), seconds. */
  deliveryDuration: new Histogram({
    name: 'tern_delivery_duration_seconds',
    help: 'Outbound attempts of a queue entry over an open connection',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  }),
  /** Open client connections, by listener (smtp, submission, imaps…). */
  connections: new Gauge({ name: 'tern_open_connections', help: 'Open client connections, by listener', labelNames: ['listener'], registers: [registry] }),
  /** Inbound authentication results on the MX, by method (spf, dkim, dmarc, arc) and result (pass, fail, none…; method "all" and result "unchecked" when the checks failed or ran out of time). */
  inboundAuth: new Counter({
    name: 'tern_inbound_auth_total',
    help: 'Inbound SPF, DKIM, DMARC and ARC results',
    labelNames: ['method', 'result'],
    registers: [registry],
  }),
  /** rspamd's verdicts on strangers' messages, by its action ("error" when it gave none). */
  spamVerdicts: new Counter({ name: 'tern_spam_verdicts_total', help: "rspamd's actions on inbound messages", labelNames: ['action'], registers: [registry] }),
  /** Strangers refused at the greeting because a DNS blocklist lists them, by zone. */
  dnsblHits: new Counter({
    name: 'tern_dnsbl_hits_total',
    help: 'Clients refused because a DNS blocklist lists them',
    labelNames: ['zone'],
    registers: [registry],
  }),
  /** DMARC aggregate reports Tern queued for other domains' report addresses (one per address). */
  dmarcReports: new Counter({ name: 'tern_dmarc_reports_sent_total', help: 'DMARC aggregate reports queued for other domains', registers: [registry] }),
  /** Inbound messages refused or sent to Junk by policy, by reason (dmarc-reject, dmarc-quarantine, spf-fail). */
  inboundVerdicts: new Counter({
    name: 'tern_inbound_verdicts_total',
    help: 'Inbound messages refused or quarantined by authentication policy',
    labelNames: ['action', 'reason'],
    registers: [registry],
  }),
};
