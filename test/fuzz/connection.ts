/**
 * The fuzz client's connection: a plain TCP socket that can be upgraded to TLS in place
 * once the server agreed to STARTTLS (SMTP 220, IMAP OK), with writes that report a
 * server that stopped reading.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

export type WriteResult = 'written' | 'closed' | 'timeout';

export class FuzzConnection {
  private socket: Socket | TLSSocket;
  closed = false;

  private constructor(
    socket: Socket,
    private readonly onData: (chunk: Buffer) => void,
    private readonly onClose: () => void,
  ) {
    this.socket = socket;
    socket.on('data', onData);
    socket.on('error', () => undefined); // resets and broken pipes show up as 'close'
    socket.once('close', () => this.markClosed());
  }

  static open(port: number, onData: (chunk: Buffer) => void, onClose: () => void, timeoutMs: number): Promise<FuzzConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host: '127.0.0.1', noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no TCP connection to port ${port} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new FuzzConnection(socket, onData, onClose));
      });
    });
  }

  get secure(): boolean {
    return 'encrypted' in this.socket;
  }

  private markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
  }

  write(bytes: Buffer, timeoutMs: number): Promise<WriteResult> {
    if (this.closed || this.socket.destroyed) return Promise.resolve('closed');
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), timeoutMs);
      this.socket.write(bytes, (err) => {
        clearTimeout(timer);
        resolve(err ? 'closed' : 'written');
      });
    });
  }

  /** Starts TLS on the open connection (self-signed server certificate accepted). */
  startTls(timeoutMs: number): Promise<{ ok: true } | { ok: false; reason: string }> {
    const plain = this.socket;
    plain.removeListener('data', this.onData);
    return new Promise((resolve) => {
      const secure = tlsConnect({ socket: plain, rejectUnauthorized: false, servername: 'localhost' });
      this.socket = secure;
      secure.on('error', () => undefined);
      const timer = setTimeout(() => finish({ ok: false, reason: `no TLS handshake within ${timeoutMs} ms` }), timeoutMs);
      const finish = (result: { ok: true } | { ok: false; reason: string }) => {
        clearTimeout(timer);
        secure.removeListener('secureConnect', onSecure);
        secure.removeListener('error', onError);
        secure.removeListener('close', onClosed);
        resolve(result);
      };
      const onSecure = () => finish({ ok: true });
      const onError = (err: Error) => finish({ ok: false, reason: err.message });
      const onClosed = () => finish({ ok: false, reason: 'connection closed during the TLS handshake' });
      secure.once('secureConnect', onSecure);
      secure.once('error', onError);
      secure.once('close', onClosed);
      secure.on('data', this.onData);
      secure.once('close', () => this.markClosed());
    });
  }

  /** Reads nothing for `ms`: replies pile up in the socket buffers, and then the server's. */
  stallReading(ms: number): void {
    const socket = this.socket;
    socket.pause();
    setTimeout(() => socket.resume(), ms).unref();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
