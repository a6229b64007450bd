/**
 * The TCP listener of every protocol (SMTP, LMTP, submission, IMAP, POP3): plain or
 * implicit TLS, limits on open connections (total and per client IP), one session per
 * connection, and draining on shutdown (stop accepting, tell sessions to finish, then
 * close what is left; a session committing a message is waited for, so its reply goes out).
 */
import { metrics } from '../metrics.js';
import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { TlsProvider } from '../config/tls.js';
import type { Guard } from '../auth/guard.js';
import { UserError } from '../errors.js';

export interface ListenerSession {
  /** Asked to end: say goodbye at the next safe point. */
  shutdown(): void;
  /** Closes the connection now. */
  destroy(): void;
  /** True while a message is being committed: shutdown waits for its reply (SMTP, LMTP). */
  readonly committing?: boolean;
}

export interface TcpListenerOptions {
  name: string;
  host: string;
  port: number;
  /** Implicit TLS (imaps, pop3s): the handshake comes before the first byte of the protocol. */
  implicitTls: boolean;
  tls: TlsProvider;
  maxConnections: number;
  maxConnectionsPerIp: number;
  log: Logger;
  /** Builds the session for an accepted connection; `onClose` must be called once when it ends. */
  open(socket: Socket, onClose: () => void): ListenerSession;
  /** The line sent to a client refused: too many connections in all or from its address, banned, or past the connection rate. */
  refusal: (reason: Refusal) => string;
  /** Bans and connection rates for strangers. */
  guard?: Pick<Guard, 'admitConnection'>;
}

export type Refusal = 'total' | 'per-ip' | 'banned' | 'rate';

export interface TcpListener {
  readonly server: Server;
  readonly port: number;
  close(graceMs: number): Promise<void>;
}

const HANDSHAKE_MS = 30_000;
/** How long shutdown waits, past the grace, for commits in flight to be answered. */
const COMMIT_WAIT_MS = 60_000;

/** Wraps an accepted socket as the server side of TLS (implicit TLS, or STARTTLS/STLS after the client asked). */
export function startTls(socket: Socket, tls: TlsProvider): TLSSocket {
  return new TLSSocket(socket, { isServer: true, secureContext: tls.context() });
}

export async function startTcpListener(opts: TcpListenerOptions): Promise<TcpListener> {
  const sessions = new Set<ListenerSession>();
  const perIp = new Map<string, number>();

  const accept = (socket: Socket) => {
    socket.setNoDelay(true);
    const ip = socket.remoteAddress ?? 'unknown';
    const fromIp = perIp.get(ip) ?? 0;
    const admitted = opts.guard?.admitConnection(ip) ?? 'ok';
    if (admitted !== 'ok' || sessions.size >= opts.maxConnections || fromIp >= opts.maxConnectionsPerIp) {
      socket.on('error', () => undefined);
      const reason = admitted !== 'ok' ? admitted : sessions.size >= opts.maxConnections ? 'total' : 'per-ip';
      socket.end(opts.refusal(reason));
      setTimeout(() => socket.destroy(), 2000).unref();
      return;
    }
    perIp.set(ip, fromIp + 1);
    let closed = false;
    metrics.connections.inc({ listener: opts.name });
    const session = opts.open(socket, () => {
      if (closed) return;
      closed = true;
      metrics.connections.dec({ listener: opts.name });
      sessions.delete(session);
      const n = (perIp.get(ip) ?? 1) - 1;
      if (n <= 0) perIp.delete(ip);
      else perIp.set(ip, n);
    });
    if (!closed) sessions.add(session);
  };

  const server = createServer((raw) => {
    if (!opts.implicitTls) return accept(raw);
    // The handshake must finish within HANDSHAKE_MS; a failed one just closes the socket.
    const socket = startTls(raw, opts.tls);
    const timer = setTimeout(() => socket.destroy(), HANDSHAKE_MS);
    socket.once('secure', () => {
      clearTimeout(timer);
      accept(socket);
    });
    socket.once('error', () => {
      clearTimeout(timer);
      socket.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new UserError(`cannot listen on ${opts.host}:${opts.port} (${opts.name}): ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`)),
    );
    server.listen(opts.port, opts.host, () => {
      server.removeAllListeners('error');
      resolve();
    });
  });
  server.on('error', (err) => opts.log.error({ err, listener: opts.name }, 'listener error'));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;

  return {
    server,
    port,
    async close(graceMs) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sessions) s.shutdown();
      const wait = async (until: number, done: () => boolean) => {
        while (!done() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      };
      await wait(Date.now() + graceMs, () => sessions.size === 0);
      // Past the grace, a session whose message is being committed still gets its reply
      // (a 250 for a stored message, never silence); the store's own deadline bounds this.
      for (const s of sessions) if (!s.committing) s.destroy();
      await wait(Date.now() + COMMIT_WAIT_MS, () => ![...sessions].some((s) => s.committing));
      for (const s of sessions) s.destroy();
      await closed;
    },
  };
}
