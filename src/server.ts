/**
 * Wires the roles together for `tern serve`: opens listeners for the chosen roles on
 * one store, runs the delivery worker (queue role), reloads TLS on SIGHUP and drains on
 * SIGTERM/SIGINT (stop accepting, let open transactions and deliveries finish, close the
 * store, exit 0).
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { createTlsProvider, type TlsProvider } from './config/tls.js';
import { ROLE_PORTS, type PortName, type Role } from './config/defaults.js';
import { createInjector } from './delivery/inject.js';
import { createLocalDelivery } from './delivery/local-delivery.js';
import { createRecipientResolver } from './delivery/recipient-resolver.js';
import { ByteBudget } from './mail/byte-budget.js';
import { createAuthenticator } from './auth/authenticate.js';
import { MailboxViews } from './imap/mailbox-views.js';
import { RecentTracker } from './imap/recent.js';
import { RenderedStructures } from './imap/render/cache.js';
import { ImapSession, type ImapConfig } from './imap/session.js';
import { startTcpListener, type Refusal } from './net/tcp-listener.js';
import { Pop3Session, type Pop3Config } from './pop3/session.js';
import { DkimSigner } from './queue/dkim.js';
import { MtaSts } from './queue/mta-sts.js';
import { startHttpServer, VERSION } from './http/server.js';
import type { TrustedNetworks } from './config/trusted-networks.js';
import { INBOUND_AUTH_TIMEOUT_MS, InboundAuth } from './smtp/inbound-auth.js';
import { Dnsbl } from './smtp/dnsbl.js';
import { DmarcReports } from './delivery/dmarc-reports.js';
import { SpamFilter } from './smtp/spam-filter.js';
import { AcmeManager } from './config/acme.js';
import { createReportIntake } from './delivery/report-intake.js';
import { Guard, type GreylistOptions, type GuardLimits } from './auth/guard.js';
import { WebhookDispatcher, type WebhookOptions } from './http/webhooks.js';
import { createMailDns } from './queue/dns.js';
import { QueueWorker, type QueueWorkerOptions } from './queue/worker.js';
import { formatReply, Replies } from './smtp/replies.js';
import { createSenderPolicy } from './smtp/sender-policy.js';
import { SmtpSession, type SessionConfig } from './smtp/session.js';
import type { Store } from './store/store.js';
import type { SiteLocation } from './store/transfer/index.js';
import { BackupSchedule } from './store/transfer/scheduled.js';

export interface ServerOptions {
  host: string;
  hostname: string;
  roles: Role[];
  ports: Record<PortName, number>;
  tls: { cert: string; key: string };
  /** Allow passwords in clear text without TLS from any client (loopback may always). */
  insecureAuth: boolean;
  /** The delivery worker's settings (queue role); DNS servers for its lookups ("host:port"). */
  queue: Omit<QueueWorkerOptions, 'hostname' | 'dns' | 'dkim' | 'mtaSts'> & {
    dnsServers: string[];
    /** The HTTPS port of MTA-STS policy hosts. */
    mtaStsPort: number;
    dkim: Omit<QueueWorkerOptions['dkim'], 'signer'>;
  };
  /** Webhook dispatch (http role). */
  webhooks: WebhookOptions;
  /** Clients that skip the checks for strangers on the MX (never a relay permission). */
  trusted: TrustedNetworks;
  /** DNS blocklist zones asked about strangers on the MX; none by default. */
  dnsbl: string[];
  /** The rspamd normal worker that sees strangers' messages (http://host:11333); none by default. */
  rspamd: string | null;
  /** DMARC aggregate reports for the mail received, sent from this address (queue role); none by default. */
  dmarcReports: string | null;
  /** Where the site lives, for scheduled backups (queue role). */
  site: SiteLocation;
  /** ACME certificates for the host name (needs the http role for the HTTP-01 answers); none by default. */
  acme: { directoryUrl: string; email?: string } | null;
  limits: {
    maxMessageSize: number;
    maxRecipients: number;
    maxConnections: number;
    maxConnectionsPerIp: number;
    maxLineLength: number;
    maxErrors: number;
    idleTimeoutSeconds: number;
    greetingDelayMs: number;
    shutdownGraceSeconds: number;
    memoryBudget: number;
  } & GuardLimits;
  /** Greylisting: on for every domain (else per domain, `tern domain policy --greylist on`), and its timings. */
  greylist: { all: boolean } & GreylistOptions;
}

/** Listeners that speak TLS from the first byte. */
const IMPLICIT_TLS = new Set<PortName>(['submissions', 'imaps', 'pop3s']);

export interface RunningServer {
  /** Port actually bound by each open listener (useful with port 0 in tests… and logs). */
  listening: Array<{ name: PortName; host: string; port: number }>;
  tls: TlsProvider;
  stop(): Promise<void>;
}

export async function startServer(store: Store, options: ServerOptions, log: Logger): Promise<RunningServer> {
  const tls = createTlsProvider(options.tls.cert, options.tls.key);
  const signer = new DkimSigner(store.directory);
  const deps = {
    resolver: createRecipientResolver(store.directory, { hostname: options.hostname }),
    delivery: createLocalDelivery(store, log, { signer, hostname: options.hostname }, createReportIntake(store, log)),
    blobs: store.blobs,
    budget: new ByteBudget(options.limits.memoryBudget),
    tls,
    log,
  };
  const base: Omit<SessionConfig, 'mode' | 'greetingDelayMs'> = {
    hostname: options.hostname,
    maxMessageSize: options.limits.maxMessageSize,
    maxRecipients: options.limits.maxRecipients,
    maxLineLength: options.limits.maxLineLength,
    maxErrors: options.limits.maxErrors,
    idleTimeoutMs: options.limits.idleTimeoutSeconds * 1000,
  };
  const limits = { maxConnections: options.limits.maxConnections, maxConnectionsPerIp: options.limits.maxConnectionsPerIp };

  const guard = new Guard(store.directory, options.trusted, options.limits, log);
  await guard.start();
  const auth = createAuthenticator(store.directory, log, guard);
  const mailboxDeps = { store, auth, tls, log, budget: deps.budget };
  const injector = createInjector({ ...deps, hostname: options.hostname });
  const submissionDeps = { ...deps, injector, auth, senders: createSenderPolicy(store.directory), guard };
  // Lookups for the MX checks time out sooner than the queue's: a client is waiting for its reply.
  const authDns = createMailDns({ servers: options.queue.dnsServers, timeoutMs: 2_000, tries: 1 });
  const dmarcReports = options.dmarcReports
    ? new DmarcReports({ store, injector, dns: authDns, log, hostname: options.hostname, from: options.dmarcReports })
    : undefined;
  const inboundAuth = new InboundAuth({
    reports: dmarcReports,
    dns: authDns,
    directory: store.directory,
    mailboxes: store.mailboxes,
    hostname: options.hostname,
    timeoutMs: INBOUND_AUTH_TIMEOUT_MS,
  });
  const dnsbl = options.dnsbl.length ? new Dnsbl(authDns, options.dnsbl) : undefined;
  const spamFilter = options.rspamd ? new SpamFilter(options.rspamd) : undefined;
  const mxDeps = { ...deps, injector, trusted: options.trusted, inboundAuth, guard, greylist: options.greylist, dnsbl, spamFilter };
  const imapDeps = { ...mailboxDeps, recent: new RecentTracker(), views: new MailboxViews(store), rendered: new RenderedStructures() };
  const listen = (
    name: PortName,
    port: number,
    open: Parameters<typeof startTcpListener>[0]['open'],
    refusal: Parameters<typeof startTcpListener>[0]['refusal'],
  ) => startTcpListener({ name, host: options.host, port, implicitTls: IMPLICIT_TLS.has(name), tls, ...limits, log, open, refusal, guard });
  const smtpRefusals = {
    total: Replies.tooManyConnections,
    'per-ip': Replies.tooManyConnectionsFromIp,
    banned: Replies.banned,
    rate: Replies.connectionRate,
  } as const;
  const smtpRefusal = (reason: Refusal) => formatReply(smtpRefusals[reason]);
  const refusalText = (reason: Refusal) =>
    reason === 'banned'
      ? 'Your address is banned for repeated failed logins'
      : reason === 'rate'
        ? 'Too many new connections from your address'
        : 'Too many connections';
  let worker: QueueWorker | null = null;
  let dispatcher: WebhookDispatcher | null = null;
  let backups: BackupSchedule | null = null;
  let acmeManager: AcmeManager | null = null;

  const listeners: Array<{ name: PortName; listener: { port: number; close(graceMs: number): Promise<void> } }> = [];
  try {
    for (const role of options.roles) {
      for (const name of ROLE_PORTS[role]) {
        const port = options.ports[name];
        if (port === 0) continue;
        const implicitTls = IMPLICIT_TLS.has(name);
        if (role === 'http') {
          const listener = await startHttpServer({
            store,
            injector,
            hostname: options.hostname,
            log,
            host: options.host,
            port,
            maxMessageSize: options.limits.maxMessageSize,
            limits: { maxRecipients: options.limits.maxRecipients, maxAttachments: 100 },
            guard,
            authenticator: auth,
            dnsServers: options.queue.dnsServers,
          });
          listeners.push({ name, listener });
        } else if (role === 'imap') {
          const config: ImapConfig = {
            hostname: options.hostname,
            implicitTls,
            insecureAuth: options.insecureAuth,
            maxMessageSize: options.limits.maxMessageSize,
          };
          const open = (socket: Socket, onClose: () => void) => new ImapSession(socket, config, imapDeps, onClose);
          listeners.push({ name, listener: await listen(name, port, open, (why) => `* BYE ${refusalText(why)}, try later\r\n`) });
        } else if (role === 'pop3') {
          const config: Pop3Config = {
            hostname: options.hostname,
            implicitTls,
            insecureAuth: options.insecureAuth,
            maxMessageSize: options.limits.maxMessageSize,
            // The autologout stays at RFC 1939's 10 minutes; a line dribbled a byte at a time gets --idle-timeout, as on SMTP.
            lineTimeoutMs: options.limits.idleTimeoutSeconds * 1000,
          };
          const open = (socket: Socket, onClose: () => void) => new Pop3Session(socket, config, mailboxDeps, onClose);
          listeners.push({
            name,
            listener: await listen(name, port, open, (why) => `-ERR [${why === 'banned' ? 'AUTH' : 'SYS/TEMP'}] ${refusalText(why)}, try later\r\n`),
          });
        } else {
          const mode = name === 'lmtp' ? 'lmtp' : role === 'submission' ? 'submission' : 'smtp';
          const config: SessionConfig = {
            ...base,
            mode,
            insecureAuth: options.insecureAuth,
            greetingDelayMs: mode === 'smtp' ? options.limits.greetingDelayMs : 0,
          };
          const sessionDeps = mode === 'submission' ? submissionDeps : mode === 'smtp' ? mxDeps : deps;
          const open = (socket: Socket, onClose: () => void) => new SmtpSession(socket, config, sessionDeps, onClose);
          listeners.push({ name, listener: await listen(name, port, open, smtpRefusal) });
        }
      }
    }
    if (options.roles.includes('http') && options.acme) {
      const files = { certFile: options.tls.cert, keyFile: options.tls.key };
      acmeManager = new AcmeManager(store.directory, tls, { ...options.acme, hostnames: [options.hostname], ...files }, log);
      acmeManager.start();
    }
    if (options.roles.includes('http')) {
      dispatcher = new WebhookDispatcher(store, options.webhooks, log, `Tern/${VERSION} (${options.hostname})`);
      dispatcher.start();
    }
    if (options.roles.includes('queue')) {
      const { dnsServers, dkim, mtaStsPort, ...queue } = options.queue;
      const dns = createMailDns({ servers: dnsServers });
      const mtaSts = new MtaSts({ dns, directory: store.directory, port: mtaStsPort, timeoutMs: queue.connectTimeoutMs, log });
      const workerOptions = { ...queue, hostname: options.hostname, dns, mtaSts, dkim: { ...dkim, signer } };
      worker = new QueueWorker(store, injector, workerOptions, log);
      worker.start();
      dmarcReports?.start();
      backups = new BackupSchedule(store, options.site, log);
      backups.start();
    }
  } catch (err) {
    await Promise.all([...listeners.map((l) => l.listener.close(0)), dispatcher?.stop()]);
    throw err;
  }

  return {
    listening: listeners.map((l) => ({ name: l.name, host: options.host, port: l.listener.port })),
    tls,
    async stop() {
      await Promise.all([
        ...listeners.map((l) => l.listener.close(options.limits.shutdownGraceSeconds * 1000)),
        worker?.stop(),
        dispatcher?.stop(),
        acmeManager?.stop(),
        backups?.stop(),
      ]);
      guard.stop();
      dmarcReports?.stop();
      await signer.close();
    },
  };
}
