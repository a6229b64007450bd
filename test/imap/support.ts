/**
 * IMAP test support: a served site with IMAP ports, a raw-socket IMAP client for parser and
 * protocol edge cases, and imapflow clients logged in as the site's users.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { ImapFlow } from 'imapflow';
import { serveForSuite, type Site, type SuiteOptions, type TernServer } from '../helpers/tern.js';

export interface ImapSuite {
  readonly site: Site;
  readonly tern: TernServer;
  readonly imapPort: number;
  readonly imapsPort: number;
}

/** A fresh site served with IMAP (and SMTP for delivering test mail) for one describe block. */
export function serveImap(opts: Omit<SuiteOptions, 'ports'> = {}): ImapSuite {
  const suite = serveForSuite({ ...opts, ports: ['imap', 'imaps'] });
  return {
    get site() {
      return suite.site;
    },
    get tern() {
      return suite.tern;
    },
    get imapPort() {
      return suite.port('imap');
    },
    get imapsPort() {
      return suite.port('imaps');
    },
  };
}

export async function imapflow(port: number, user = 'alice@example.test', opts: { qresync?: boolean; pass?: string } = {}): Promise<ImapFlow> {
  const client = new ImapFlow({
    host: '127.0.0.1',
    port,
    secure: false,
    auth: { user, pass: opts.pass ?? 'password123' },
    logger: false,
    tls: { rejectUnauthorized: false },
    qresync: opts.qresync ?? false,
    disableAutoIdle: true,
  });
  await client.connect();
  return client;
}

/** A raw IMAP connection: write lines, read until a tagged answer. */
export class RawImap {
  private buffer = '';
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(public socket: Socket) {
    this.attach(socket);
  }

  static async open(port: number, tls = false): Promise<RawImap> {
    const socket = tls ? tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }) : tcpConnect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once(tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    const raw = new RawImap(socket);
    await raw.until(/^\* OK.*\r\n/m);
    return raw;
  }

  private attach(socket: Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buffer += d;
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('error', () => undefined);
  }

  write(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** Waits until the received text matches `re`; returns everything received so far and clears it. */
  async until(re: RegExp, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!re.test(this.buffer)) {
      if (this.closed) throw new Error(`connection closed; received: ${this.buffer}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}; received: ${this.buffer}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 100);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    const out = this.buffer;
    this.buffer = '';
    return out;
  }

  /** Sends `tag command` and returns the whole answer up to the tagged line. */
  async command(tag: string, command: string): Promise<string> {
    this.write(`${tag} ${command}\r\n`);
    return this.until(new RegExp(`^${tag} (OK|NO|BAD)[^\\r\\n]*\\r\\n`, 'm'));
  }

  /** Upgrades this connection after a STARTTLS OK. */
  async startTls(): Promise<void> {
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('close');
    const secure = tlsConnect({ socket: this.socket, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.attach(secure);
  }

  close(): void {
    this.socket.destroy();
  }
}
