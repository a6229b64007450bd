/**
 * A TCP listener for SMTP or LMTP: enforces connection limits (total and per IP),
 * creates one SmtpSession per connection and drains on shutdown (stop accepting, let
 * open transactions finish, then close what is left).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { UserError } from '../errors.js';
import { formatReply, Replies } from './replies.js';
import { SmtpSession, type SessionConfig, type SessionDeps } from './session.js';

/** How long shutdown waits, past the grace, for commits in flight to be answered. */
const COMMIT_WAIT_MS = 60_000;

export interface ListenerLimits {
  maxConnections: number;
  maxConnectionsPerIp: number;
}

export interface SmtpListener {
  readonly server: Server;
  readonly port: number;
  /** Stops accepting, lets open transactions finish (up to `graceMs`; commits in flight are always answered), then closes the rest. */
  close(graceMs: number): Promise<void>;
}

export async function startSmtpListener(opts: {
  host: string;
  port: number;
  config: SessionConfig;
  deps: SessionDeps;
  limits: ListenerLimits;
}): Promise<SmtpListener> {
  const sessions = new Set<SmtpSession>();
  const perIp = new Map<string, number>();

  const refuse = (socket: Socket, reply: typeof Replies.tooManyConnections) => {
    socket.on('error', () => undefined);
    socket.end(formatReply(reply));
    setTimeout(() => socket.destroy(), 2000).unref();
  };

  const server = createServer({ noDelay: true }, (socket) => {
    const ip = socket.remoteAddress ?? 'unknown';
    if (sessions.size >= opts.limits.maxConnections) return refuse(socket, Replies.tooManyConnections);
    const fromIp = perIp.get(ip) ?? 0;
    if (fromIp >= opts.limits.maxConnectionsPerIp) return refuse(socket, Replies.tooManyConnectionsFromIp);
    perIp.set(ip, fromIp + 1);
    const session: SmtpSession = new SmtpSession(socket, opts.config, opts.deps, () => {
      sessions.delete(session);
      const n = (perIp.get(ip) ?? 1) - 1;
      if (n <= 0) perIp.delete(ip);
      else perIp.set(ip, n);
    });
    sessions.add(session);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new UserError(
          `cannot listen on ${opts.host}:${opts.port} (${opts.config.mode}): ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`,
        ),
      ),
    );
    server.listen(opts.port, opts.host, () => {
      server.removeAllListeners('error');
      resolve();
    });
  });
  server.on('error', (err) => opts.deps.log.error({ err }, 'listener error'));
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
