// Starts Tern from the compiled CLI (dist/src/cli/main.js) with a fresh data dir, one
// domain and one mailbox, and reads back how many messages it stored (`tern status --json`).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mustRun, portIsFree, sleep, waitForPort } from './util.js';

export interface TernOptions {
  cli: string;
  dataDir: string;
  domain: string;
  address: string;
  smtpPort: number;
  lmtpPort: number;
}

export interface TernServer {
  /** Creates the domain and mailbox, then runs `tern serve` until it accepts SMTP connections. */
  start(): Promise<void>;
  /** SIGTERM (SIGKILL after 15 s); safe to call at any time. */
  stop: () => Promise<void>;
  /** The serve process id (0 before start). */
  pid(): number;
  /** The flags `tern serve` runs with. */
  flags(): string[];
  storedMessages(): Promise<number>;
}

// Every listener the bench does not use is disabled with port 0.
const DISABLED_PORTS = ['submission', 'submissions', 'imap', 'imaps', 'pop3', 'pop3s', 'http'];

function serveFlags(o: TernOptions): string[] {
  return [
    '--smtp-port', String(o.smtpPort), '--lmtp-port', String(o.lmtpPort),
    ...DISABLED_PORTS.flatMap((name) => [`--${name}-port`, '0']),
    '--log-level', 'warn',
  ];
}

class Serving {
  readonly child: ChildProcess;
  output = '';
  exited = false;

  constructor(o: TernOptions, flags: string[]) {
    const args = [o.cli, 'serve', '--data', o.dataDir, ...flags];
    this.child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer): void => { this.output = (this.output + chunk.toString()).slice(-4000); };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.child.on('exit', () => { this.exited = true; });
    this.child.on('error', (error) => { this.exited = true; this.output += error.message; });
  }

  /** Waits until the SMTP port accepts connections, or throws. */
  async ready(port: number): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (this.exited) throw new Error(`tern serve exited early: ${this.output.trim().slice(-500)}`);
      try {
        await waitForPort(port, 300);
        await sleep(200);
        if (!this.exited) return;
      } catch { /* not yet */ }
    }
    throw new Error(`tern serve did not listen on ${port} within 30 s: ${this.output.trim().slice(-500)}`);
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const exit = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timedOut = await Promise.race([exit.then(() => false), sleep(15_000).then(() => true)]);
    if (timedOut) {
      this.child.kill('SIGKILL');
      await exit;
    }
  }
}

export function createTern(o: TernOptions): TernServer {
  let serving: Serving | null = null;
  const flags = serveFlags(o);
  const cli = (args: string[], input?: string): ReturnType<typeof mustRun> =>
    mustRun(process.execPath, [o.cli, ...args, '--data', o.dataDir], { input, timeoutMs: 60_000 });

  const start = async (): Promise<void> => {
    if (!existsSync(o.cli)) throw new Error(`${o.cli} does not exist (is the Tern CLI built yet?)`);
    for (const port of [o.smtpPort, o.lmtpPort]) {
      if (!(await portIsFree(port))) throw new Error(`127.0.0.1:${port} is already in use`);
    }
    await cli(['domain', 'add', o.domain]);
    await cli(['user', 'add', o.address, '--password-stdin'], `${randomBytes(12).toString('hex')}\n`);
    serving = new Serving(o, flags);
    await serving.ready(o.smtpPort).catch(async (error: unknown) => {
      await serving?.stop();
      throw error;
    });
  };

  return {
    start,
    stop: async () => { await serving?.stop(); },
    pid: () => serving?.child.pid ?? 0,
    flags: () => flags,
    storedMessages: async () => {
      const status = await cli(['status', '--json']);
      return Number((JSON.parse(status.stdout) as { messages?: unknown }).messages ?? NaN);
    },
  };
}
