/**
 * Runs the real `tern` CLI for tests: one-shot commands (runCli) and `tern serve` as a
 * child process on free loopback ports (startTern), so tests talk to the server over
 * real sockets exactly as clients and operators do.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';

/** dist/test/helpers → dist/src/cli/main.js */
export const TERN_BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

export function tempDir(prefix = 'tern-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => res(port));
    });
  });
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [TERN_BIN, ...args], { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', rej);
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs a CLI command that must succeed; returns stdout. */
export async function cli(args: string[], input?: string): Promise<string> {
  const r = await runCli(args, { input });
  if (r.code !== 0) throw new Error(`tern ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

export interface Site {
  dataDir: string;
  /** --data/--db arguments for CLI calls. */
  args: string[];
}

/** A site with domain example.test and accounts alice@ and bob@ (password "password123"). */
export async function createSite(opts: { db?: string; dataDir?: string } = {}): Promise<Site> {
  const dataDir = opts.dataDir ?? tempDir();
  const args = ['--data', dataDir, ...(opts.db ? ['--db', opts.db] : [])];
  await cli(['init', '--hostname', 'mx.example.test', ...args]);
  await cli(['domain', 'add', 'example.test', ...args]);
  for (const user of ['alice', 'bob']) await cli(['user', 'add', `${user}@example.test`, '--password-stdin', ...args], 'password123\n');
  return { dataDir, args };
}

export interface TernServer {
  site: Site;
  proc: ChildProcess;
  smtpPort: number;
  lmtpPort: number;
  output: () => string;
  /** Sends a signal and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

const OTHER_PORTS = ['submission', 'submissions', 'imap', 'imaps', 'pop3', 'pop3s', 'http'].flatMap((p) => [`--${p}-port`, '0']);

/**
 * A port freePort() found may be taken before the server binds it (another test's
 * outgoing connection can get it as its ephemeral port): the SMTP and LMTP ports this
 * picks are picked again, up to three times, when that happens.
 */
export async function startTern(site: Site, extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<TernServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startTernOnce(site, extraArgs, env);
    } catch (err) {
      const ours = /cannot listen on 127\.0\.0\.1:\d+ \((smtp|lmtp)\): address already in use/.test((err as Error).message);
      if (!ours || attempt >= 3) throw err;
    }
  }
}

async function startTernOnce(site: Site, extraArgs: string[], env: NodeJS.ProcessEnv): Promise<TernServer> {
  const smtpPort = await freePort();
  const lmtpPort = await freePort();
  const proc = spawn(
    process.execPath,
    [TERN_BIN, 'serve', ...site.args, '--smtp-port', String(smtpPort), '--lmtp-port', String(lmtpPort), ...OTHER_PORTS, '--log-level', 'warn', ...extraArgs],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((res) => proc.on('exit', (code) => res(code)));
  await new Promise<void>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`tern serve did not start:\n${out}`)), 20_000);
    const check = () => {
      if (/Store: /.test(out)) {
        clearTimeout(timer);
        res();
      }
    };
    proc.stdout.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      rej(new Error(`tern serve exited ${code}:\n${out}`));
    });
  });
  return {
    site,
    proc,
    smtpPort,
    lmtpPort,
    output: () => out,
    exited,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

export interface StatusJson {
  store: string;
  messages: number;
  blobs: number;
  accounts: Array<{ address: string; messages: number }>;
}

export async function status(site: Site): Promise<StatusJson> {
  return JSON.parse(await cli(['status', '--json', ...site.args])) as StatusJson;
}

export interface SuiteOptions {
  args?: string[];
  setup?: (site: Site) => Promise<void>;
  stopSignal?: NodeJS.Signals;
  /** Listeners to open on free ports besides SMTP and LMTP (e.g. ['imap', 'imaps']); see `port(name)`. */
  ports?: string[];
  /** A database URL for the site (PostgreSQL), made when the suite starts. */
  db?: () => Promise<string>;
}

/**
 * A fresh site (prepared by `setup`, if given) served by `tern serve` for one describe
 * block: started before its tests, stopped after them.
 */
export function serveForSuite(opts: SuiteOptions = {}): {
  readonly site: Site;
  readonly tern: TernServer;
  /** The port of a listener named in `opts.ports`. */
  port(name: string): number;
} {
  let site: Site | undefined;
  let tern: TernServer | undefined;
  const ports = new Map<string, number>();
  before(async () => {
    site = await createSite(opts.db ? { db: await opts.db() } : {});
    await opts.setup?.(site);
    for (const name of opts.ports ?? []) ports.set(name, await freePort());
    const portArgs = [...ports].flatMap(([name, port]) => [`--${name}-port`, String(port)]);
    tern = await startTern(site, [...portArgs, ...(opts.args ?? [])]);
  });
  after(async () => {
    await tern?.stop(opts.stopSignal);
  });
  return {
    get site() {
      return site!;
    },
    get tern() {
      return tern!;
    },
    port(name) {
      const port = ports.get(name);
      if (port === undefined) throw new Error(`no ${name} listener in this suite`);
      return port;
    },
  };
}
