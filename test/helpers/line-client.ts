/**
 * What the tests' raw protocol clients share (SMTP/LMTP in raw-smtp.ts, POP3 in
 * pop3/support.ts, IMAP in imap/support.ts): a socket read as latin1 text into a buffer,
 * waiting until what arrived passes a test (failing on close or timeout), STARTTLS, and
 * noticing when the server closes the connection.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export async function openSocket(port: number, o: { tls?: boolean; localAddress?: string } = {}): Promise<Socket> {
  const socket = o.tls
    ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false })
    : connect({ port, host: '127.0.0.1', localAddress: o.localAddress });
  await new Promise<void>((res, rej) => {
    socket.once(o.tls ? 'secureConnect' : 'connect', () => res());
    socket.once('error', rej);
  });
  return socket;
}

export class LineClient {
  protected buffer = '';
  private waiters: Array<() => void> = [];
  closed = false;
  /** When the connection closed (Date.now()). */
  closedAt = 0;

  constructor(public socket: Socket) {
    this.listen(socket);
  }

  private listen(socket: Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buffer += d;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.closedAt = Date.now();
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits until `test()` holds for what has arrived; throws when the connection closes first or time runs out. */
  protected async waitFor(test: () => boolean, timeoutMs: number, what = 'an answer'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!test()) {
      if (this.closed) throw new Error(`connection closed while waiting for ${what}; unread: ${JSON.stringify(this.buffer.slice(0, 500))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; unread: ${JSON.stringify(this.buffer.slice(0, 500))}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  /** Waits until what arrived matches `re`; returns all of it and clears it. */
  async until(re: RegExp, timeoutMs = 10_000): Promise<string> {
    await this.waitFor(() => re.test(this.buffer), timeoutMs, String(re));
    const out = this.buffer;
    this.buffer = '';
    return out;
  }

  send(data: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  /** Whatever has arrived and not been read. */
  unread(): string {
    return this.buffer;
  }

  /** Upgrades the connection to TLS (after the server's go-ahead to STARTTLS or STLS). */
  async startTls(): Promise<void> {
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('close');
    const secure = tlsConnect({ socket: this.socket, rejectUnauthorized: false });
    await new Promise<void>((res, rej) => {
      secure.once('secureConnect', () => res());
      secure.once('error', rej);
    });
    this.socket = secure;
    this.listen(secure);
  }

  /** Resolves when the server closes the connection. */
  async waitClosed(timeoutMs = 10_000): Promise<void> {
    await this.waitFor(() => this.closed, timeoutMs, 'the server to close the connection').catch((err: Error) => {
      if (!this.closed) throw new Error(`server did not close the connection (${err.message})`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
