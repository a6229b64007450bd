/**
 * A receiving SMTP server for outbound tests, on the smtp-server package: it keeps every
 * message (envelope and bytes), counts connections, and answers each recipient as the
 * test decides (accept, 4xx, 5xx), so delivery, retries and bounces can be watched from
 * the far end.
 */
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

export interface SinkMessage {
  from: string;
  to: string[];
  data: Buffer;
  /** The AUTH user of the session, if any. */
  user: string | null;
  secure: boolean;
  /** The MAIL FROM and RCPT TO parameters as sent (e.g. { NOTIFY: 'SUCCESS' }), per recipient. */
  mailArgs: Record<string, unknown>;
  rcptArgs: Array<Record<string, unknown>>;
}

export interface SmtpSink {
  readonly host: string;
  readonly port: number;
  readonly messages: SinkMessage[];
  /** Connections accepted so far. */
  readonly connections: number;
  /** Decides the RCPT reply: null accepts; an Error with responseCode refuses. */
  rcpt: (address: string, attempt: number) => { code: number; message: string } | null;
  /** Resolves once `n` messages have arrived (or fails after `ms`). */
  waitFor(n: number, ms?: number): Promise<SinkMessage[]>;
  close(): Promise<void>;
}

export interface SmtpSinkOptions {
  host?: string;
  port?: number;
  auth?: { user: string; pass: string };
  hideDsn?: boolean;
  /** STARTTLS certificate and key (PEM); smtp-server's own self-signed one by default. */
  tls?: { cert: string; key: string };
  /** Offers no STARTTLS at all. */
  noStartTls?: boolean;
}

export async function startSmtpSink(opts: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const messages: SinkMessage[] = [];
  const attempts = new Map<string, number>();
  let connections = 0;
  const waiters: Array<() => void> = [];
  const sink: SmtpSink = {
    host: opts.host ?? '127.0.0.1',
    port: 0,
    messages,
    get connections() {
      return connections;
    },
    rcpt: () => null,
    async waitFor(n, ms = 20_000) {
      const until = Date.now() + ms;
      while (messages.length < n) {
        if (Date.now() > until) throw new Error(`expected ${n} messages at the sink, got ${messages.length}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
      return messages;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const options: SMTPServerOptions = {
    secure: false,
    authOptional: !opts.auth,
    allowInsecureAuth: true,
    disabledCommands: [...(opts.auth ? [] : ['AUTH']), ...(opts.noStartTls ? ['STARTTLS'] : [])],
    hideSTARTTLS: false,
    ...(opts.tls ?? {}),
    hideDSN: Boolean(opts.hideDsn),
    logger: false,
    size: 50 * 1024 * 1024,
    onConnect(_session, callback) {
      connections++;
      callback();
    },
    onAuth(auth, _session, callback) {
      if (opts.auth && auth.username === opts.auth.user && auth.password === opts.auth.pass) return callback(null, { user: auth.username });
      callback(new Error('Invalid username or password'));
    },
    onRcptTo(address, _session, callback) {
      const n = (attempts.get(address.address) ?? 0) + 1;
      attempts.set(address.address, n);
      const refusal = sink.rcpt(address.address, n);
      if (!refusal) return callback();
      callback(Object.assign(new Error(refusal.message), { responseCode: refusal.code }));
    },
    onData(stream, session, callback) {
      const parts: Buffer[] = [];
      stream.on('data', (c: Buffer) => parts.push(c));
      stream.on('end', () => {
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(parts),
          user: (session.user as string | undefined) ?? null,
          secure: session.secure,
          mailArgs: (session.envelope.mailFrom ? session.envelope.mailFrom.args : {}) as Record<string, unknown>,
          rcptArgs: session.envelope.rcptTo.map((r) => (r.args || {}) as Record<string, unknown>),
        });
        for (const w of waiters.splice(0)) w();
        callback();
      });
    },
  };
  const server = new SMTPServer(options);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, sink.host, () => resolve());
  });
  server.on('error', () => undefined);
  const address = server.server.address();
  Object.assign(sink, { port: typeof address === 'object' && address ? address.port : 0 });
  return sink;
}
