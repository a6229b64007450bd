// A small raw-socket IMAP client for the IMAP bench, the same code for every server: it
// writes tagged commands (pipelining allowed), splits answers into responses (skipping
// over literals while counting their bytes) and resolves each command on its tagged
// answer. It parses nothing else, so the client costs little next to the server.
import net from 'node:net';

export interface ImapReply {
  status: 'OK' | 'NO' | 'BAD';
  /** The tagged line after the tag ("OK [APPENDUID 1 5] APPEND completed"). */
  text: string;
  /** Untagged responses received while this command was the oldest one pending. */
  untagged: number;
  /** Their text without literal contents (only with keep: true). */
  lines: string[];
  /** Literal bytes received in those responses (e.g. bodies of FETCH BODY[]). */
  literalBytes: number;
}

export interface CommandOptions {
  /** Keep the untagged lines (SEARCH results, SELECT's EXISTS). */
  keep?: boolean;
  /** A message literal sent after the command text: `{N+}` when the server has LITERAL+, else a synchronising `{N}`. */
  literal?: Buffer;
}

export interface ConnectOptions {
  port: number;
  host?: string;
  /** Source address (to spread connections over 127.0.0.x). */
  localAddress?: string;
  /** Longest silence while a command waits for its answer. */
  timeoutMs: number;
}

interface Pending {
  tag: string;
  command: string;
  keep: boolean;
  reply: ImapReply;
  resolve(reply: ImapReply): void;
  reject(error: Error): void;
}

/** Thrown for a NO or BAD answer: names the command sent and the answer got. */
export class ImapCommandError extends Error {}

const LITERAL_AT_END = /\{(\d+)\+?\}$/;

export class ImapClient {
  /** The greeting line ("* OK [CAPABILITY …] …"). */
  greeting = '';
  literalPlus = false;
  /** Called for every untagged response (e.g. "* 12 EXISTS" during IDLE). */
  onUntagged: ((line: string) => void) | null = null;
  private nextTag = 1;
  private readonly pending: Pending[] = [];
  private continuations: Array<() => void> = [];
  private rest: Buffer | null = null;
  private literalLeft = 0;
  /** The response being read, when a literal split it. */
  private parts: string[] = [];
  private failure: Error | null = null;
  private greeted: ((line: string) => void) | null = null;

  private constructor(
    private readonly socket: net.Socket,
    private readonly timeoutMs: number,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.feed(chunk));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('connection closed by the server')));
    socket.on('timeout', () => {
      if (this.pending.length > 0 || this.greeted) {
        this.fail(new Error(`no answer within ${this.timeoutMs / 1000} s${this.pending[0] ? ` to ${this.pending[0].command}` : ''}`));
        socket.destroy();
      }
    });
    socket.setTimeout(timeoutMs);
  }

  /** Connects and waits for the greeting. */
  static connect(o: ConnectOptions): Promise<ImapClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port: o.port, host: o.host ?? '127.0.0.1', localAddress: o.localAddress });
      const client = new ImapClient(socket, o.timeoutMs);
      socket.once('error', reject);
      client.greeted = (line) => {
        client.greeted = null;
        socket.off('error', reject);
        client.greeting = line;
        if (!line.startsWith('* OK')) {
          socket.destroy();
          reject(new Error(`greeting: ${line}`));
          return;
        }
        resolve(client);
      };
      socket.once('close', () => reject(client.failure ?? new Error('connection closed before the greeting')));
    });
  }

  get closed(): boolean {
    return this.failure !== null;
  }

  /** Sends one command; resolves with its tagged answer (NO and BAD included). */
  send(command: string, o: CommandOptions = {}): Promise<ImapReply> {
    if (this.failure) return Promise.reject(this.failure);
    const tag = `b${this.nextTag++}`;
    return new Promise<ImapReply>((resolve, reject) => {
      const reply: ImapReply = { status: 'BAD', text: '', untagged: 0, lines: [], literalBytes: 0 };
      this.pending.push({ tag, command, keep: o.keep ?? false, reply, resolve, reject });
      if (!o.literal) {
        this.socket.write(`${tag} ${command}\r\n`);
      } else if (this.literalPlus) {
        this.socket.write(Buffer.concat([Buffer.from(`${tag} ${command} {${o.literal.length}+}\r\n`), o.literal, Buffer.from('\r\n')]));
      } else {
        const literal = o.literal;
        this.continuations.push(() => this.socket.write(Buffer.concat([literal, Buffer.from('\r\n')])));
        this.socket.write(`${tag} ${command} {${literal.length}}\r\n`);
      }
    });
  }

  /** Sends one command and throws ImapCommandError unless the answer is OK. */
  async ok(command: string, o: CommandOptions = {}): Promise<ImapReply> {
    const reply = await this.send(command, o);
    if (reply.status !== 'OK') {
      const sent = o.literal ? `${command} {${o.literal.length}+}` : command;
      throw new ImapCommandError(`"${sent}" answered "${reply.status} ${reply.text}"`.slice(0, 400));
    }
    return reply;
  }

  async login(user: string, password: string): Promise<void> {
    const quote = (s: string): string => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
    const reply = await this.ok(`LOGIN ${quote(user)} ${quote(password)}`);
    const capability = /\[CAPABILITY ([^\]]*)\]/i.exec(reply.text)?.[1] ?? /\[CAPABILITY ([^\]]*)\]/i.exec(this.greeting)?.[1] ?? '';
    this.literalPlus = /(^| )LITERAL\+( |$)/i.test(capability);
    if (!capability) this.literalPlus = /(^| )LITERAL\+( |$)/i.test((await this.ok('CAPABILITY', { keep: true })).lines.join(' '));
  }

  /** SELECT; returns the EXISTS count. */
  async select(mailbox: string): Promise<number> {
    const reply = await this.ok(`SELECT "${mailbox}"`, { keep: true });
    for (const line of reply.lines) {
      const m = /^\* (\d+) EXISTS/i.exec(line);
      if (m) return Number(m[1]);
    }
    return 0;
  }

  /** Starts IDLE and resolves once the server answered "+"; untagged updates then go to onUntagged. */
  idle(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.continuations.push(() => {
        this.socket.setTimeout(0);
        resolve();
      });
      this.send('IDLE').catch(reject);
    });
  }

  /** Closes the socket at once (no LOGOUT): the cheap way to drop thousands of connections. */
  destroy(): void {
    this.failure ??= new Error('closed by the client');
    this.socket.destroy();
  }

  async logout(): Promise<void> {
    await this.send('LOGOUT').catch(() => undefined);
    this.destroy();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const p of this.pending.splice(0)) p.reject(this.failure);
  }

  private feed(chunk: Buffer): void {
    const data = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    this.rest = null;
    let at = 0;
    while (at < data.length) {
      if (this.literalLeft > 0) {
        const n = Math.min(this.literalLeft, data.length - at);
        if (this.pending[0]) this.pending[0].reply.literalBytes += n;
        this.literalLeft -= n;
        at += n;
        continue;
      }
      const eol = data.indexOf(10, at);
      if (eol < 0) {
        this.rest = Buffer.from(data.subarray(at));
        return;
      }
      const segment = data.toString('utf8', at, eol > at && data[eol - 1] === 13 ? eol - 1 : eol);
      at = eol + 1;
      const literal = LITERAL_AT_END.exec(segment);
      this.parts.push(segment);
      if (literal) {
        this.literalLeft = Number(literal[1]);
        continue;
      }
      const response = this.parts.length === 1 ? segment : this.parts.join('');
      this.parts = [];
      this.dispatch(response);
    }
  }

  private dispatch(response: string): void {
    if (this.greeted) return this.greeted(response);
    if (response.startsWith('+')) {
      this.continuations.shift()?.();
      return;
    }
    if (response.startsWith('* ')) {
      const oldest = this.pending[0];
      if (oldest) {
        oldest.reply.untagged += 1;
        if (oldest.keep) oldest.reply.lines.push(response);
      }
      this.onUntagged?.(response);
      return;
    }
    const space = response.indexOf(' ');
    const tag = response.slice(0, space);
    const index = this.pending.findIndex((p) => p.tag === tag);
    if (index < 0) return;
    const [p] = this.pending.splice(index, 1);
    const rest = response.slice(space + 1);
    const word = rest.slice(0, rest.indexOf(' ') < 0 ? rest.length : rest.indexOf(' ')).toUpperCase();
    p!.reply.status = word === 'OK' || word === 'NO' ? word : 'BAD';
    p!.reply.text = rest.slice(word.length + 1);
    p!.resolve(p!.reply);
  }
}
