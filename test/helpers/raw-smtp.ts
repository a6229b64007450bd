/**
 * A raw SMTP/LMTP line client for tests that must send what no real client would
 * (garbage, binary, 1 MB lines, pipelined smuggling attempts) and read exact replies.
 */
import { connect, type Socket } from 'node:net';

export interface SmtpReply {
  code: number;
  lines: string[];
  text: string;
}

export class RawSmtp {
  private buffer = '';
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buffer += d;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<RawSmtp> {
    const socket = connect(port, host);
    await new Promise<void>((res, rej) => {
      socket.once('connect', res);
      socket.once('error', rej);
    });
    return new RawSmtp(socket);
  }

  /** Reads one complete (possibly multi-line) reply; rejects on timeout or close. */
  async read(timeoutMs = 10_000): Promise<SmtpReply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*(\d{3})(?: [^\n]*)?\r?\n/.exec(this.buffer);
      if (m) {
        this.buffer = this.buffer.slice(m[0].length);
        const lines = m[0].split(/\r?\n/).filter(Boolean);
        return { code: Number(m[1]), lines, text: lines.join('\n') };
      }
      if (this.closed) throw new Error(`connection closed; unread: ${JSON.stringify(this.buffer)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a reply; have ${JSON.stringify(this.buffer)}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  async command(line: string): Promise<SmtpReply> {
    this.send(`${line}\r\n`);
    return this.read();
  }

  /** Resolves when the server closes the connection. */
  async waitClosed(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('server did not close the connection');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Connects, reads the greeting and sends EHLO (or LHLO); returns the client. */
export async function openSession(port: number, hello = 'EHLO client.test'): Promise<RawSmtp> {
  const c = await RawSmtp.connect(port);
  const greeting = await c.read();
  if (greeting.code !== 220) throw new Error(`unexpected greeting ${greeting.text}`);
  const r = await c.command(hello);
  if (r.code !== 250) throw new Error(`${hello} failed: ${r.text}`);
  return c;
}
