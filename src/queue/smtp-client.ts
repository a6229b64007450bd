/**
 * One outbound SMTP connection, on nodemailer's SMTP client (SMTPConnection): connect
 * (implicit TLS, or STARTTLS when offered: opportunistic, with a plain-text retry when
 * the handshake fails, unless TLS is required), optional AUTH, then any number of
 * transactions (RSET between them) so one connection carries a destination's queue.
 *
 * Results are per recipient: a RCPT refusal fails (5xx) or defers (4xx) that recipient
 * alone; a refusal of MAIL FROM or of the message applies to every recipient of it.
 */
import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';

export interface SmtpTarget {
  /** The host name (TLS server name, logs). */
  host: string;
  /** Where to connect: an IP address (or a name for a smarthost). */
  address: string;
  port: number;
  /** Implicit TLS (port 465 style). */
  secure?: boolean;
  /** Refuse to send without TLS (MTA-STS enforce, a smarthost that asks for it). */
  requireTls?: boolean;
  auth?: { user: string; pass: string };
}

export interface Envelope {
  from: string;
  to: string[];
  size: number;
  dsn?: { ret?: string | null; envid?: string | null; notify?: string | null; orcpt?: string | null };
}

/** What the server said to each recipient of one transaction. */
export interface TransactionResult {
  /** Address → the reply; `code` 2xx accepted, 4xx try again, 5xx failed. */
  replies: Map<string, { code: number; reply: string }>;
  /** The server offers DSN (RFC 3461), so it takes over success notices. */
  dsn: boolean;
}

interface SmtpError extends Error {
  code?: string;
  response?: string;
  responseCode?: number;
  rejectedErrors?: SmtpError[];
  recipient?: string;
}

/** A connection-level failure: a code (4xx unless the server said 5xx) and the text for every recipient. */
export class ConnectionError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

const replyCode = (e: SmtpError): number => e.responseCode ?? 451;
const replyText = (e: SmtpError): string => (e.response ? e.response.replace(/\r?\n/g, ' ') : `${e.code ?? 'error'}: ${e.message}`);

export class OutboundConnection {
  private broken = false;
  private used = 0;

  private constructor(
    private readonly conn: SMTPConnection,
    readonly target: SmtpTarget,
  ) {
    conn.on('error', () => (this.broken = true));
    conn.on('end', () => (this.broken = true));
  }

  /** Whether the connection can carry another transaction. */
  get usable(): boolean {
    return !this.broken;
  }

  get secure(): boolean {
    return Boolean((this.conn as unknown as { secure?: boolean }).secure);
  }

  /** TLS with a certificate that is valid for the host (checked even where it was not required). */
  get verified(): boolean {
    return this.secure && Boolean((this.conn as unknown as { _socket?: { authorized?: boolean } })._socket?.authorized);
  }

  static async open(target: SmtpTarget, options: { hostname: string; timeoutMs: number }): Promise<OutboundConnection> {
    try {
      return await OutboundConnection.connect(target, options, false);
    } catch (err) {
      // Opportunistic TLS: a failed handshake is retried in clear text (as Postfix does), unless TLS is required.
      if ((err as SmtpError).code === 'ETLS' && !target.requireTls && !target.secure) return OutboundConnection.connect(target, options, true);
      throw err;
    }
  }

  private static async connect(target: SmtpTarget, options: { hostname: string; timeoutMs: number }, plain: boolean): Promise<OutboundConnection> {
    const failed = (err: SmtpError) => new ConnectionError(`${target.host}[${target.address}]:${target.port}: ${replyText(err)}`, replyCode(err));
    // Our own socket, with Nagle off: a message's last small write (the final dot) must
    // not wait for the receiver's delayed ACK (40 ms a message on Linux).
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ host: target.address, port: target.port, noDelay: true });
      const timer = setTimeout(() => s.destroy(Object.assign(new Error('connection timed out'), { code: 'ETIMEDOUT' })), options.timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(failed(err));
      });
    });
    const conn = new SMTPConnection({
      connection: socket,
      host: target.address,
      port: target.port,
      secure: Boolean(target.secure),
      ignoreTLS: plain,
      requireTLS: Boolean(target.requireTls),
      opportunisticTLS: !target.requireTls,
      name: options.hostname,
      connectionTimeout: options.timeoutMs,
      greetingTimeout: options.timeoutMs,
      socketTimeout: options.timeoutMs * 5,
      // Certificates are checked only where a policy requires TLS (MTA-STS, a smarthost); elsewhere any TLS beats none.
      tls: { servername: target.host, rejectUnauthorized: Boolean(target.requireTls) },
    });
    await new Promise<void>((resolve, reject) => {
      conn.once('error', reject);
      conn.connect(() => resolve()); // called once the greeting and EHLO (and STARTTLS) are done
    }).catch((err: SmtpError) => {
      conn.close();
      throw err.code === 'ETLS' ? err : failed(err); // ETLS: open() may retry in clear text
    });
    conn.removeAllListeners('error');
    const connection = new OutboundConnection(conn, target);
    if (target.auth) {
      await new Promise<void>((resolve, reject) => conn.login(target.auth!, (err) => (err ? reject(failed(err)) : resolve()))).catch((err) => {
        conn.close();
        throw err;
      });
    }
    return connection;
  }

  /** Sends one message; per-recipient replies. Throws ConnectionError when the connection failed on the way. */
  async send(envelope: Envelope, message: AsyncIterable<Buffer>): Promise<TransactionResult> {
    if (this.used++ > 0) await new Promise<void>((resolve, reject) => this.conn.reset((err) => (err ? reject(err) : resolve()))).catch(this.fail);
    const replies = new Map<string, { code: number; reply: string }>();
    const dsn = envelope.dsn;
    const info = await new Promise<SMTPConnection.SentMessageInfo>((resolve, reject) =>
      this.conn.send(
        {
          from: envelope.from,
          to: envelope.to,
          size: envelope.size,
          use8BitMime: true,
          dsn: dsn && {
            ret: (dsn.ret ?? undefined) as SMTPConnection.DSNOptions['ret'],
            envid: dsn.envid ?? undefined,
            notify: (dsn.notify?.split(',') ?? undefined) as SMTPConnection.DSNOption[] | undefined,
            orcpt: dsn.orcpt ?? undefined,
          },
        },
        Readable.from(message),
        (err, result) => (err ? reject(err) : resolve(result)),
      ),
    ).catch((err: SmtpError) => {
      if (err.responseCode === undefined || err.code === 'ECONNECTION' || err.code === 'ETIMEDOUT' || err.code === 'ESOCKET') this.broken = true;
      if (!err.responseCode) throw new ConnectionError(`${this.target.host}: ${replyText(err)}`, 451);
      // Every recipient refused, or MAIL FROM / the message itself refused: the same reply for all, except RCPT replies of their own.
      for (const r of err.rejectedErrors ?? []) if (r.recipient) replies.set(r.recipient, { code: replyCode(r), reply: replyText(r) });
      for (const to of envelope.to) if (!replies.has(to)) replies.set(to, { code: replyCode(err), reply: replyText(err) });
      return null;
    });
    const ehlo = (info as { ehlo?: string[] } | null)?.ehlo ?? [];
    if (info) {
      for (const r of info.rejectedErrors ?? [])
        if ((r as SmtpError).recipient) replies.set((r as SmtpError).recipient!, { code: replyCode(r), reply: replyText(r) });
      for (const to of info.accepted) replies.set(to, { code: Number(info.response.slice(0, 3)) || 250, reply: info.response.replace(/\r?\n/g, ' ') });
    }
    return { replies, dsn: ehlo.some((line) => /^DSN\b/i.test(line)) };
  }

  private readonly fail = (err: SmtpError): never => {
    this.broken = true;
    throw new ConnectionError(`${this.target.host}: ${replyText(err)}`, replyCode(err) >= 500 ? 451 : replyCode(err));
  };

  close(): void {
    this.broken = true;
    try {
      this.conn.quit();
    } catch {
      this.conn.close();
    }
    setTimeout(() => this.conn.close(), 2000).unref();
  }
}
