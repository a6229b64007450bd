/**
 * A TCP listener for SMTP or LMTP: enforces connection limits (total and per IP),
 * creates one SmtpSession per connection and drains on shutdown (stop accepting, let
 * open transactions finish, then close what is left).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { UserError } from '../errors.js';
import { formatReply, Replies } from './replies.js';
import { SmtpSession, type SessionConfig, type SessionDeps } from './session.js';

export interface ListenerLimits {
  maxConnections: number;
  maxConnectionsPerIp: number;
}

export interface SmtpListener {
  readonly server: Server;
  readonly port: number;
  /** Stops accepting, lets open transactions finish (up to `graceMs`), then closes the rest. */
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
      const deadline = Date.now() + graceMs;
      while (sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const s of sessions) s.destroy();
      await closed;
    },
  };
}
