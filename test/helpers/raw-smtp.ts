/**
 * A raw SMTP/LMTP line client for tests that must send what no real client would
 * (garbage, binary, 1 MB lines, pipelined smuggling attempts) and read exact replies.
 */
import { LineClient, openSocket } from './line-client.js';

export interface SmtpReply {
  code: number;
  lines: string[];
  text: string;
}

export class RawSmtp extends LineClient {
  static async connect(port: number): Promise<RawSmtp> {
    return new RawSmtp(await openSocket(port));
  }

  /** Reads one complete (possibly multi-line) reply; rejects on timeout or close. */
  async read(timeoutMs = 10_000): Promise<SmtpReply> {
    const reply = /^(?:\d{3}-[^\n]*\n)*(\d{3})(?: [^\n]*)?\r?\n/;
    await this.waitFor(() => reply.test(this.buffer), timeoutMs, 'a reply');
    const m = reply.exec(this.buffer)!;
    this.buffer = this.buffer.slice(m[0].length);
    const lines = m[0].split(/\r?\n/).filter(Boolean);
    return { code: Number(m[1]), lines, text: lines.join('\n') };
  }

  async command(line: string): Promise<SmtpReply> {
    this.send(`${line}\r\n`);
    return this.read();
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
