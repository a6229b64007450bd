// Starts Tern from the compiled CLI (dist/src/cli/main.js) on a data dir (SQLite) or a
// PostgreSQL URL, with one domain and one mailbox, logging at info level to a file as the
// reference servers do; reads back how many messages it stored (`tern status --json`).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { countOccurrences, mustRun, portIsFree, sleep, waitForPort } from './util.js';

export interface TernOptions {
  cli: string;
  dataDir: string;
  /** postgres://… to run on PostgreSQL; SQLite in dataDir otherwise. */
  dbUrl?: string;
  domain: string;
  address: string;
  smtpPort: number;
  /** 0 disables the LMTP listener. */
  lmtpPort: number;
  /** The IMAP listener's port; off when absent. */
  imapPort?: number;
  /** The account's password (random when absent). */
  password?: string;
  /** The data dir already has the domain and account (another instance made them). */
  provisioned?: boolean;
  /** More `tern domain add` flags, e.g. ['--dkim', 'none']. */
  domainFlags?: string[];
  /** Runs the server under `ulimit -n openFiles` (for thousands of connections). */
  openFiles?: number;
  /** Where `tern serve` writes its log (pino JSON lines at info: one "message accepted" per delivery). */
  logFile: string;
  /** More `tern serve` flags, e.g. ['--max-message-size', '30M']. */
  extraFlags?: string[];
  /** Options for node itself, e.g. ['--cpu-prof', '--cpu-prof-dir', dir]. */
  nodeOptions?: string[];
}

export interface TernServer {
  readonly dataDir: string;
  /** The account's password (for IMAP logins). */
  readonly password: string;
  /** Creates the domain and mailbox (once). */
  provision(): Promise<void>;
  /** provision(), then runs `tern serve` until it accepts SMTP connections. */
  start(): Promise<void>;
  /** SIGTERM (SIGKILL after 30 s); safe to call at any time. */
  stop: () => Promise<void>;
  /** The serve process id (0 before start). */
  pid(): number;
  /** The flags `tern serve` runs with. */
  flags(): string[];
  storedMessages(): Promise<number>;
  /** "message accepted" lines in the log so far. */
  acceptedLogLines(): number;
}

// Every listener the bench does not use is disabled with port 0.
const DISABLED_PORTS = ['submission', 'submissions', 'imap', 'imaps', 'pop3', 'pop3s', 'http'];

function serveFlags(o: TernOptions): string[] {
  return [
    '--smtp-port',
    String(o.smtpPort),
    '--lmtp-port',
    String(o.lmtpPort),
    ...(o.imapPort ? ['--imap-port', String(o.imapPort)] : []),
    ...DISABLED_PORTS.filter((name) => name !== 'imap' || !o.imapPort).flatMap((name) => [`--${name}-port`, '0']),
    '--log-level',
    'info',
    ...(o.extraFlags ?? []),
  ];
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().slice(-500);
  } catch {
    return '';
  }
}

class Serving {
  readonly child: ChildProcess;
  exited = false;
  spawnError = '';

  constructor(
    private readonly o: TernOptions,
    flags: string[],
    store: string[],
  ) {
    const args = [...(o.nodeOptions ?? []), o.cli, 'serve', ...store, ...flags];
    const fd = openSync(o.logFile, 'a');
    try {
      // With a file limit the shell raises it (to the hard limit when it may not go further), then
      // exec keeps the pid: pid() is still node's.
      const raise = `ulimit -n ${o.openFiles} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`;
      this.child = o.openFiles
        ? spawn('/bin/sh', ['-c', raise, process.execPath, ...args], { stdio: ['ignore', fd, fd] })
        : spawn(process.execPath, args, { stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    this.child.on('exit', () => {
      this.exited = true;
    });
    this.child.on('error', (error) => {
      this.exited = true;
      this.spawnError = error.message;
    });
  }

  private why(): string {
    return `${this.spawnError} ${logTail(this.o.logFile)}`.trim();
  }

  /** Waits until the SMTP port accepts connections, or throws. */
  async ready(port: number): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (this.exited) throw new Error(`tern serve exited early: ${this.why()}`);
      try {
        await waitForPort(port, 300);
        await sleep(200);
        if (!this.exited) return;
      } catch {
        /* not yet */
      }
    }
    throw new Error(`tern serve did not listen on ${port} within 60 s: ${this.why()}`);
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const exit = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timedOut = await Promise.race([exit.then(() => false), sleep(30_000).then(() => true)]);
    if (timedOut) {
      this.child.kill('SIGKILL');
      await exit;
    }
  }
}

export function createTern(o: TernOptions): TernServer {
  let serving: Serving | null = null;
  let provisioned = o.provisioned ?? false;
  const flags = serveFlags(o);
  const password = o.password ?? randomBytes(12).toString('hex');
  const store = ['--data', o.dataDir, ...(o.dbUrl ? ['--db', o.dbUrl] : [])];
  const cli = (args: string[], input?: string): ReturnType<typeof mustRun> =>
    mustRun(process.execPath, [o.cli, ...args, ...store], { input, timeoutMs: 300_000 });

  const provision = async (): Promise<void> => {
    if (provisioned) return;
    if (!existsSync(o.cli)) throw new Error(`${o.cli} does not exist (is the Tern CLI built yet?)`);
    await cli(['domain', 'add', o.domain, ...(o.domainFlags ?? [])]);
    await cli(['user', 'add', o.address, '--password-stdin'], `${password}\n`);
    provisioned = true;
  };

  const start = async (): Promise<void> => {
    await provision();
    for (const port of [o.smtpPort, o.lmtpPort, o.imapPort ?? 0]) {
      if (port && !(await portIsFree(port))) throw new Error(`127.0.0.1:${port} is already in use`);
    }
    serving = new Serving(o, flags, store);
    await serving.ready(o.smtpPort).catch(async (error: unknown) => {
      await serving?.stop();
      throw error;
    });
  };

  return {
    dataDir: o.dataDir,
    password,
    provision,
    start,
    stop: async () => {
      await serving?.stop();
    },
    pid: () => serving?.child.pid ?? 0,
    flags: () => flags,
    storedMessages: async () => {
      const status = await cli(['status', '--json']);
      return Number((JSON.parse(status.stdout) as { messages?: unknown }).messages ?? NaN);
    },
    acceptedLogLines: () => countOccurrences(o.logFile, '"msg":"message accepted"'),
  };
}
