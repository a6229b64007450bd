/**
 * Wires the roles together for `tern serve`: opens listeners for the chosen roles on
 * one store, reloads TLS on SIGHUP and drains on SIGTERM/SIGINT (stop accepting, let
 * open transactions finish, close the store, exit 0).
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { createTlsProvider, type TlsProvider } from './config/tls.js';
import { ROLE_PORTS, type PortName, type Role } from './config/defaults.js';
import { createLocalDelivery } from './delivery/local-delivery.js';
import { createRecipientResolver } from './delivery/recipient-resolver.js';
import { ByteBudget } from './mail/byte-budget.js';
import { createAuthenticator } from './auth/authenticate.js';
import { MailboxViews } from './imap/mailbox-views.js';
import { RecentTracker } from './imap/recent.js';
import { RenderedStructures } from './imap/render/cache.js';
import { ImapSession, type ImapConfig } from './imap/session.js';
import { startTcpListener } from './net/tcp-listener.js';
import { Pop3Session, type Pop3Config } from './pop3/session.js';
import { startSmtpListener } from './smtp/listener.js';
import type { SessionConfig } from './smtp/session.js';
import type { Store } from './store/store.js';

export interface ServerOptions {
  host: string;
  hostname: string;
  roles: Role[];
  ports: Record<PortName, number>;
  tls: { cert: string; key: string };
  /** Allow passwords in clear text without TLS from any client (loopback may always). */
  insecureAuth: boolean;
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
  };
}

export interface RunningServer {
  /** Port actually bound by each open listener (useful with port 0 in tests… and logs). */
  listening: Array<{ name: PortName; host: string; port: number }>;
  tls: TlsProvider;
  stop(): Promise<void>;
}

export async function startServer(store: Store, options: ServerOptions, log: Logger): Promise<RunningServer> {
  const tls = createTlsProvider(options.tls.cert, options.tls.key);
  const deps = {
    resolver: createRecipientResolver(store.directory, { hostname: options.hostname }),
    delivery: createLocalDelivery(store, log),
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

  const mailboxDeps = { store, auth: createAuthenticator(store.directory, log), tls, log, budget: deps.budget };
  const imapDeps = { ...mailboxDeps, recent: new RecentTracker(), views: new MailboxViews(store), rendered: new RenderedStructures() };
  const mailboxListener = (name: PortName, port: number, open: Parameters<typeof startTcpListener>[0]['open'], refusal: string) =>
    startTcpListener({ name, host: options.host, port, implicitTls: name === 'imaps' || name === 'pop3s', tls, ...limits, log, open, refusal });

  const listeners: Array<{ name: PortName; listener: { port: number; close(graceMs: number): Promise<void> } }> = [];
  try {
    for (const role of options.roles) {
      for (const name of ROLE_PORTS[role]) {
        const port = options.ports[name];
        if (port === 0) continue;
        const implicitTls = name === 'imaps' || name === 'pop3s';
        if (role === 'imap') {
          const config: ImapConfig = {
            hostname: options.hostname,
            implicitTls,
            insecureAuth: options.insecureAuth,
            maxMessageSize: options.limits.maxMessageSize,
          };
          const open = (socket: Socket, onClose: () => void) => new ImapSession(socket, config, imapDeps, onClose);
          listeners.push({ name, listener: await mailboxListener(name, port, open, '* BYE Too many connections, try later\r\n') });
        } else if (role === 'pop3') {
          const config: Pop3Config = {
            hostname: options.hostname,
            implicitTls,
            insecureAuth: options.insecureAuth,
            maxMessageSize: options.limits.maxMessageSize,
          };
          const open = (socket: Socket, onClose: () => void) => new Pop3Session(socket, config, mailboxDeps, onClose);
          listeners.push({ name, listener: await mailboxListener(name, port, open, '-ERR [SYS/TEMP] Too many connections, try later\r\n') });
        } else {
          const mode = name === 'lmtp' ? 'lmtp' : 'smtp';
          const config: SessionConfig = { ...base, mode, greetingDelayMs: mode === 'smtp' ? options.limits.greetingDelayMs : 0 };
          listeners.push({ name, listener: await startSmtpListener({ host: options.host, port, config, deps, limits }) });
        }
      }
    }
  } catch (err) {
    await Promise.all(listeners.map((l) => l.listener.close(0)));
    throw err;
  }

  return {
    listening: listeners.map((l) => ({ name: l.name, host: options.host, port: l.listener.port })),
    tls,
    async stop() {
      await Promise.all(listeners.map((l) => l.listener.close(options.limits.shutdownGraceSeconds * 1000)));
    },
  };
}
