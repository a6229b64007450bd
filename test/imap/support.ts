/**
 * IMAP test support: a served site with IMAP ports, a raw-socket IMAP client for parser and
 * protocol edge cases, and imapflow clients logged in as the site's users.
 */
import { ImapFlow } from 'imapflow';
import { LineClient, openSocket } from '../helpers/line-client.js';
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
export class RawImap extends LineClient {
  /** Connects and reads the greeting. */
  static async open(port: number, tls = false): Promise<RawImap> {
    const raw = new RawImap(await openSocket(port, { tls }));
    await raw.until(/^\* OK.*\r\n/m);
    return raw;
  }

  write(text: string | Buffer): void {
    this.send(text);
  }

  /** Everything up to and with the tagged answer of `tag`. */
  tagged(tag: string, timeoutMs = 10_000): Promise<string> {
    return this.until(new RegExp(`^${tag} (OK|NO|BAD)[^\\r\\n]*\\r\\n`, 'm'), timeoutMs);
  }

  /** Sends `tag command` and returns the whole answer up to the tagged line. */
  async command(tag: string, command: string): Promise<string> {
    this.send(`${tag} ${command}\r\n`);
    return this.tagged(tag);
  }
}
