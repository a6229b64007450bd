// Starts Tern from the compiled CLI (dist/src/cli/main.js) with a fresh data dir, one
// domain and one mailbox, and reads back how many messages it stored (`tern status --json`).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mustRun, sleep, waitForPort } from './util.js';

export interface TernInstance {
  pid: number;
  /** The serve flags Tern accepted (unknown ones are dropped). */
  flags: string[];
  storedMessages(): Promise<number>;
  stop(): Promise<void>;
}

export interface TernOptions {
  cli: string;
  dataDir: string;
  domain: string;
  address: string;
  smtpPort: number;
  lmtpPort: number;
}

// Every listener the bench does not use is disabled with port 0.
const DISABLED_PORTS = ['submission', 'submissions', 'imap', 'imaps', 'pop3', 'pop3s', 'http'];

function cliRun(o: TernOptions, args: string[], input?: string): ReturnType<typeof mustRun> {
  return mustRun(process.execPath, [o.cli, ...args, '--data', o.dataDir], { input, timeoutMs: 60_000 });
}

interface Serving {
  child: ChildProcess;
  output: () => string;
  exited: () => boolean;
}

// The same ports through the environment, in case serve lacks one of the flags.
function portEnv(o: TernOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TERN_SMTP_PORT: String(o.smtpPort), TERN_LMTP_PORT: String(o.lmtpPort) };
  for (const name of DISABLED_PORTS) env[`TERN_${name.toUpperCase()}_PORT`] = '0';
  return env;
}

function spawnServe(o: TernOptions, flags: string[]): Serving {
  const args = [o.cli, 'serve', '--data', o.dataDir, ...flags];
  const child = spawn(process.execPath, args, { env: portEnv(o), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let exited = false;
  const keep = (chunk: Buffer): void => { output = (output + chunk.toString()).slice(-4000); };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('exit', () => { exited = true; });
  child.on('error', (error) => { exited = true; output += error.message; });
  return { child, output: () => output, exited: () => exited };
}

/** Waits for the SMTP port; returns the name of a flag serve rejected, or throws. */
async function waitUntilServing(serving: Serving, port: number): Promise<string | null> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (serving.exited()) {
      const unknown = /unknown option '(--[\w-]+)'/.exec(serving.output());
      if (unknown) return unknown[1];
      throw new Error(`tern serve exited early: ${serving.output().trim().slice(-500)}`);
    }
    try {
      await waitForPort(port, 300);
      return null;
    } catch { /* not yet */ }
  }
  serving.child.kill('SIGKILL');
  throw new Error(`tern serve did not listen on ${port} within 30 s: ${serving.output().trim().slice(-500)}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timedOut = await Promise.race([exited.then(() => false), sleep(15_000).then(() => true)]);
  if (timedOut) {
    child.kill('SIGKILL');
    await exited;
  }
}

/** Creates the domain and mailbox, then runs `tern serve` until it accepts SMTP connections. */
export async function startTern(o: TernOptions): Promise<TernInstance> {
  if (!existsSync(o.cli)) throw new Error(`${o.cli} does not exist (is the Tern CLI built yet?)`);
  await cliRun(o, ['domain', 'add', o.domain]);
  await cliRun(o, ['user', 'add', o.address, '--password-stdin'], `${randomBytes(12).toString('hex')}\n`);

  let flags = [
    '--smtp-port', String(o.smtpPort), '--lmtp-port', String(o.lmtpPort),
    ...DISABLED_PORTS.flatMap((name) => [`--${name}-port`, '0']),
    '--log-level', 'warn',
  ];
  for (let attempt = 0; attempt <= flags.length / 2; attempt += 1) {
    const serving = spawnServe(o, flags);
    const rejected = await waitUntilServing(serving, o.smtpPort);
    if (rejected === null) {
      const child = serving.child;
      return {
        pid: child.pid ?? 0,
        flags,
        storedMessages: async () => {
          const status = await cliRun(o, ['status', '--json']);
          return Number((JSON.parse(status.stdout) as { messages?: unknown }).messages ?? NaN);
        },
        stop: () => stopChild(child),
      };
    }
    const at = flags.indexOf(rejected);
    if (at < 0) break;
    flags = [...flags.slice(0, at), ...flags.slice(at + 2)];
  }
  throw new Error('tern serve rejected its flags');
}
