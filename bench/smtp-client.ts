// A minimal SMTP client for the large-message runs: one transaction per connection, the
// body streamed from one reused 64 KiB buffer (so the client holds almost nothing), with
// timings for the greeting and for the reply to the end of DATA.
import net from 'node:net';

export interface SendSpec {
  port: number;
  from: string;
  to: string;
  /** Body bytes after the headers (rounded up to whole lines). */
  size: number;
  timeoutMs: number;
}

export interface SendResult {
  /** Reply code to the end of DATA (or to the command that failed); 0 when the connection broke. */
  code: number;
  reply: string;
  /** Connect to the greeting. */
  greetingMs: number;
  /** Last byte of the message sent to the reply. */
  replyMs: number;
  /** Connect to the reply to the end of DATA. */
  totalMs: number;
  bodyBytes: number;
  error?: string;
}

const LINE = `${'x'.repeat(76)}\r\n`;
const CHUNK = Buffer.from(LINE.repeat(Math.floor(65536 / LINE.length)));

/** Reads SMTP replies (multi-line aware) from a socket as they arrive. */
export class ReplyReader {
  private buffered = '';
  private lines: string[] = [];
  private waiting: ((reply: { code: number; text: string }) => void) | null = null;
  private failure: Error | null = null;
  private failed: ((error: Error) => void) | null = null;
  /** A reply that arrived while nobody was waiting (e.g. an early 452 during DATA). */
  pending: { code: number; text: string } | null = null;

  constructor(socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.feed(chunk));
    const fail = (error: Error): void => {
      this.failure ??= error;
      this.failed?.(this.failure);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }

  private feed(chunk: string): void {
    this.buffered += chunk;
    let end: number;
    while ((end = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, end).replace(/\r$/, '');
      this.buffered = this.buffered.slice(end + 1);
      this.lines.push(line);
      if (line.length >= 3 && line[3] !== '-') {
        const reply = { code: Number(line.slice(0, 3)), text: this.lines.join('\n') };
        this.lines = [];
        if (this.waiting) {
          const deliver = this.waiting;
          this.waiting = null;
          this.failed = null;
          deliver(reply);
        } else {
          this.pending = reply;
        }
      }
    }
  }

  next(timeoutMs: number): Promise<{ code: number; text: string }> {
    if (this.pending) {
      const reply = this.pending;
      this.pending = null;
      return Promise.resolve(reply);
    }
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs);
      this.waiting = (reply) => {
        clearTimeout(timer);
        resolve(reply);
      };
      this.failed = (error) => {
        clearTimeout(timer);
        reject(error);
      };
    });
  }
}

/** Writes and, when the socket's buffer is full, waits for it to drain (or close), leaving no listeners behind. */
export function write(socket: net.Socket, data: Buffer | string): Promise<void> {
  if (socket.destroyed || socket.write(data)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

/** Sends one message of spec.size body bytes over a new connection; never throws. */
export async function sendMessage(spec: SendSpec): Promise<SendResult> {
  const started = performance.now();
  const elapsed = (): number => performance.now() - started;
  const result: SendResult = { code: 0, reply: '', greetingMs: NaN, replyMs: NaN, totalMs: NaN, bodyBytes: 0 };
  const socket = net.connect({ host: '127.0.0.1', port: spec.port });
  socket.on('error', () => {
    /* reported through the reader */
  });
  const replies = new ReplyReader(socket);
  const expect = async (command: string | null, wanted: number): Promise<boolean> => {
    if (command !== null) await write(socket, `${command}\r\n`);
    const reply = await replies.next(spec.timeoutMs);
    result.code = reply.code;
    result.reply = reply.text;
    return Math.floor(reply.code / 100) === Math.floor(wanted / 100);
  };
  try {
    if (!(await expect(null, 220))) return result;
    result.greetingMs = elapsed();
    if (!(await expect('EHLO bench.client', 250))) return result;
    if (!(await expect(`MAIL FROM:<${spec.from}>`, 250))) return result;
    if (!(await expect(`RCPT TO:<${spec.to}>`, 250))) return result;
    if (!(await expect('DATA', 354))) return result;
    const id = `${Date.now().toString(36)}.${Math.random().toString(36).slice(2)}`;
    await write(socket, `From: <${spec.from}>\r\nTo: <${spec.to}>\r\nSubject: bench ${spec.size}\r\nMessage-ID: <${id}@bench.client>\r\n\r\n`);
    while (result.bodyBytes < spec.size && !replies.pending && !socket.destroyed) {
      const chunk =
        spec.size - result.bodyBytes >= CHUNK.length ? CHUNK : CHUNK.subarray(0, Math.ceil((spec.size - result.bodyBytes) / LINE.length) * LINE.length);
      await write(socket, chunk);
      result.bodyBytes += chunk.length;
    }
    if (!replies.pending) await write(socket, '.\r\n');
    const sentAt = elapsed();
    const ok = await expect(null, 250);
    result.replyMs = elapsed() - sentAt;
    result.totalMs = elapsed();
    if (ok) await write(socket, 'QUIT\r\n');
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
  } finally {
    socket.end();
    setTimeout(() => socket.destroy(), 1000).unref();
  }
  return result;
}
