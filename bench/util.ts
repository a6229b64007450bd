// Shared helpers for the benchmark: running commands with time limits, waiting for
// ports, counting delivered files, and making sure the reference servers are installed.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import net from 'node:net';
import { RssSampler } from './rss.js';

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
  timedOut: boolean;
  /** The child's peak resident memory (VmHWM) in KiB, with RunOptions.sampleMemory. */
  peakRssKiB?: number;
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** Sample the child's memory every 100 ms (bench/rss.ts) and report its peak. */
  sampleMemory?: boolean;
}

/** Runs a command to completion (killed after timeoutMs); never throws for a non-zero exit. */
export function runCommand(cmd: string, args: string[], options: RunOptions = {}): Promise<CommandResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const memory = options.sampleMemory && child.pid ? new RssSampler(child.pid) : undefined;
    memory?.start();
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdin.on('error', () => {
      /* the child may not read stdin */
    });
    child.stdin.end(options.input ?? '');
    let finished = false;
    let exitedAt: bigint | undefined;
    const finish = (code: number | null, error?: Error): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      memory?.stop();
      const seconds = Number((exitedAt ?? process.hrtime.bigint()) - started) / 1e9;
      const peakRssKiB = memory ? Math.max(memory.hwmKiB, memory.peakRssKiB) : undefined;
      resolve({ code, stdout, stderr: error ? `${stderr}${error.message}` : stderr, seconds, timedOut, peakRssKiB });
    };
    child.on('error', (error) => finish(null, error));
    child.on('close', (code) => finish(code));
    // A daemon (dovecot) may keep our pipes open after the command itself exits:
    // take the exit, give the pipes a moment to drain, then let go of them.
    child.on('exit', (code) => {
      exitedAt = process.hrtime.bigint();
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish(code);
      }, 300);
    });
  });
}

/** Runs a command and throws with its output when it fails. */
export async function mustRun(cmd: string, args: string[], options: RunOptions = {}): Promise<CommandResult> {
  const result = await runCommand(cmd, args, options);
  if (result.code !== 0) {
    const why = result.timedOut ? 'timed out' : `exited ${result.code}`;
    throw new Error(`${cmd} ${args.join(' ')} ${why}: ${(result.stderr || result.stdout).trim()}`);
  }
  return result;
}

/** True while pid is alive (not a zombie) and runs the named program (guards against stale pid files). */
export function isProgram(pid: number, program: string): boolean {
  if (!(pid > 0)) return false;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  // "<pid> (<comm>) <state> ..."
  const close = stat.lastIndexOf(')');
  const comm = stat.slice(stat.indexOf('(') + 1, close);
  const state = stat.slice(close + 2, close + 3);
  return comm === program && state !== 'Z' && state !== 'X';
}

/** Sends SIGTERM to pid only if it is still the named program. */
export function terminateIfProgram(pid: number, program: string): void {
  if (!isProgram(pid, program)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    /* already gone */
  }
}

/** Waits up to timeoutMs for pid to stop being the named program. */
export async function waitForExit(pid: number, program: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (isProgram(pid, program) && Date.now() < deadline) await sleep(100);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function tryConnect(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Polls until something accepts TCP connections on host:port, or throws after timeoutMs. */
export async function waitForPort(port: number, timeoutMs: number, host = '127.0.0.1'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await tryConnect(port, host)) return;
    await sleep(100);
  }
  throw new Error(`nothing is listening on ${host}:${port} after ${timeoutMs} ms`);
}

/** True when nothing listens on host:port (so a throwaway server may bind it). */
export async function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return !(await tryConnect(port, host));
}

/** Number of entries in a directory; 0 when it does not exist yet. */
export async function countFiles(dir: string): Promise<number> {
  try {
    return (await readdir(dir)).length;
  } catch {
    return 0;
  }
}

/** Waits until countFiles(dir) reaches expected or timeoutMs passes; returns the last count and when. */
export async function waitForFiles(dir: string, expected: number, timeoutMs: number, pollMs = 50): Promise<{ count: number; seconds: number }> {
  const started = Date.now();
  let count = await countFiles(dir);
  while (count < expected && Date.now() - started < timeoutMs) {
    await sleep(pollMs);
    count = await countFiles(dir);
  }
  return { count, seconds: (Date.now() - started) / 1000 };
}

/** Occurrences of needle in a file, i.e. log lines that carry it (0 when the file is missing). */
export function countOccurrences(file: string, needle: string): number {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return 0;
  }
  let count = 0;
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + needle.length)) count += 1;
  return count;
}

const REQUIRED_BINARIES = ['/usr/sbin/smtp-source', '/usr/sbin/smtp-sink', '/usr/sbin/postfix', '/usr/sbin/dovecot', '/usr/lib/dovecot/lmtp'];
const IMAP_BINARIES = ['/usr/sbin/dovecot', '/usr/bin/doveadm', '/usr/lib/dovecot/imap', '/usr/lib/dovecot/imap-login'];

/** Installs Debian packages when any of the binaries they provide is missing (apt-get update only if the first try fails). */
async function ensurePackages(log: (line: string) => void, binaries: string[], packages: string[]): Promise<void> {
  const missing = binaries.filter((path) => !existsSync(path));
  if (missing.length === 0) return;
  log(`missing ${missing.join(', ')}: installing ${packages.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (packages.includes('postfix')) {
    await runCommand('debconf-set-selections', [], { input: 'postfix postfix/main_mailer_type select No configuration\n', env });
  }
  const install = ['install', '-y', ...packages];
  const first = await runCommand('apt-get', install, { env, timeoutMs: 600_000 });
  if (first.code === 0) return;
  await mustRun('apt-get', ['update'], { env, timeoutMs: 600_000 });
  await mustRun('apt-get', install, { env, timeoutMs: 600_000 });
}

/** Installs postfix and dovecot (Debian packages) when their binaries are missing. */
export async function ensureMailPackages(log: (line: string) => void): Promise<void> {
  await ensurePackages(log, REQUIRED_BINARIES, ['postfix', 'dovecot-core', 'dovecot-lmtpd']);
}

/** Installs Dovecot's IMAP server (Debian's dovecot-imapd) when it is missing. */
export async function ensureImapPackages(log: (line: string) => void): Promise<void> {
  await ensurePackages(log, IMAP_BINARIES, ['dovecot-core', 'dovecot-imapd']);
}

/** Installs Chromium (Debian's chromium), which the portal phase drives, when it is missing. */
export async function ensurePortalPackages(log: (line: string) => void): Promise<void> {
  await ensurePackages(log, ['/usr/bin/chromium'], ['chromium']);
}

/** Cyrus SASL's PLAIN module (libsasl2-modules), wherever this architecture's library directory is. */
function saslPlainModule(): string {
  const found = readdirSync('/usr/lib')
    .map((dir) => `/usr/lib/${dir}/sasl2/libplain.so.2`)
    .find((path) => existsSync(path));
  return found ?? '/usr/lib/<multiarch>/sasl2/libplain.so.2';
}

/** Installs what the queue phase's Postfix needs besides Postfix: OpenDKIM's daemon and Cyrus SASL's sasldb tools and modules. */
export async function ensureQueuePackages(log: (line: string) => void): Promise<void> {
  await ensurePackages(log, ['/usr/sbin/opendkim', '/usr/sbin/saslpasswd2', saslPlainModule()], ['opendkim', 'sasl2-bin', 'libsasl2-modules']);
}

/** A throwaway reference server (Postfix, Dovecot) delivering into one Maildir. */
export interface ReferenceServer {
  name: string;
  /** The Maildir new/ directory that delivered messages land in. */
  maildirNew: string;
  /** The server's log file, and the text of the one line it logs per delivered message. */
  logFile: string;
  deliveryLogText: string;
  start(): Promise<void>;
  /** Safe to call whether or not start() ran or succeeded. */
  stop: () => Promise<void>;
}

export interface SystemUser {
  name: string;
  uid: number;
  gid: number;
}

/** Returns the unprivileged user that reference servers deliver as, creating it if needed. */
export async function ensureSystemUser(name: string): Promise<SystemUser> {
  let uid = await runCommand('id', ['-u', name]);
  if (uid.code !== 0) {
    await mustRun('useradd', ['--system', '--no-create-home', '--user-group', '--shell', '/usr/sbin/nologin', name]);
    uid = await mustRun('id', ['-u', name]);
  }
  const gid = await mustRun('id', ['-g', name]);
  return { name, uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** A helper daemon the bench started (smtp-sink, opendkim): the tail of its stderr, whether it exited, and stop() (SIGTERM, then SIGKILL after 5 s). */
export function superviseChild(child: ChildProcess): { stderr(): string; exited(): boolean; stop(): Promise<void> } {
  let stderr = '';
  let exited = false;
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2000);
  });
  child.on('exit', () => {
    exited = true;
  });
  child.on('error', (error) => {
    exited = true;
    stderr += error.message;
  });
  return {
    stderr: () => stderr,
    exited: () => exited,
    async stop() {
      if (exited) return;
      const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      if (await Promise.race([exit.then(() => false), sleep(5000).then(() => true)])) child.kill('SIGKILL');
    },
  };
}
