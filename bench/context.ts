// What every bench phase shares: settings, the temp dir, the PostgreSQL cluster, the list
// of things to stop on exit, and running one Tern instance and measuring a load against it.
import { join } from 'node:path';
import type { Backend, BenchConfig, Protocol } from './config.js';
import type { TimeWindow } from './cpu-profile.js';
import type { BenchPostgres } from './postgres.js';
import type { Load, Row } from './report.js';
import { readMemory, resetPeak } from './rss.js';
import { runLoad, type LoadResult, type LoadSpec } from './smtp-source.js';
import { createTern, type TernOptions, type TernServer } from './tern.js';
import type { SystemUser } from './util.js';

export const DOMAIN = 'bench.test';
export const LOCAL_PART = 'bench';
export const ADDRESS = `${LOCAL_PART}@${DOMAIN}`;
export const SENDER = 'sender@example.org';

export interface BenchContext {
  config: BenchConfig;
  repo: string;
  /** The compiled Tern CLI. */
  cli: string;
  /** The run's temp dir: every data dir and log lives under it. */
  root: string;
  user: SystemUser;
  postgres: BenchPostgres | null;
  postgresError: string;
  log(line: string): void;
  /** Registers something to stop on exit or interrupt; returns a function that unregisters it. */
  onCleanup(stop: () => Promise<void>): () => void;
}

export const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));
export const mib = (kib: number | undefined | null): number | null => (kib ? kib / 1024 : null);

export const BACKEND_NAMES: Record<Backend, string> = { sqlite: 'Tern SQLite', postgres: 'Tern PostgreSQL' };

export function loadSpec(ctx: BenchContext, load: Load): LoadSpec {
  return { sessions: load.sessions, messages: load.messages, size: load.size, from: SENDER, to: ADDRESS, timeoutMs: ctx.config.timeoutMs };
}

/**
 * Sends an untimed warm-up load (the same size, at most a fifth as many messages) to a
 * server before its timed run, so every server is measured warm: Tern's JIT-compiled
 * code, Postfix's and Dovecot's started processes. Returns how many were sent.
 */
export async function warmUp(ctx: BenchContext, load: Load, port: number, lmtp: boolean): Promise<number> {
  const messages = Math.min(ctx.config.warmup, Math.floor(load.messages / 5));
  if (messages === 0) return 0;
  const result = await runLoad({ ...loadSpec(ctx, load), messages }, port, lmtp);
  if (!result.ok) ctx.log(`warm-up on 127.0.0.1:${port} failed: ${result.error}`);
  return result.ok ? messages : 0;
}

/** A row from one smtp-source run (ratios are filled in later, by compareRows). */
export function loadRow(load: Load, protocol: Protocol, server: string, kind: Row['kind'], result: LoadResult): Row {
  return {
    load: load.label,
    protocol,
    server,
    kind,
    ok: result.ok,
    error: result.error,
    command: result.command,
    seconds: result.seconds,
    perSecond: result.ok ? result.perSecond : undefined,
    mbPerSecond: result.ok ? (result.perSecond * load.size) / 1e6 : undefined,
  };
}

export interface TernInstanceOptions {
  backend: Backend;
  /** Names the data dir, the log file and the PostgreSQL database: letters, digits, underscores. */
  name: string;
  lmtp: boolean;
  extraFlags?: string[];
  nodeOptions?: string[];
}

/** Creates a Tern instance on a fresh data dir (and, for PostgreSQL, a fresh database); not started. */
export async function newTern(ctx: BenchContext, o: TernInstanceOptions): Promise<TernServer> {
  const dataDir = join(ctx.root, o.name);
  let dbUrl: string | undefined;
  if (o.backend === 'postgres') {
    if (!ctx.postgres) throw new Error(`no PostgreSQL cluster: ${ctx.postgresError}`);
    dbUrl = await ctx.postgres.createDatabase(o.name);
  }
  const options: TernOptions = {
    cli: ctx.cli,
    dataDir,
    dbUrl,
    domain: DOMAIN,
    address: ADDRESS,
    smtpPort: ctx.config.ports.ternSmtp,
    lmtpPort: o.lmtp ? ctx.config.ports.ternLmtp : 0,
    logFile: join(ctx.root, `${o.name}.log`),
    extraFlags: o.extraFlags,
    nodeOptions: o.nodeOptions,
  };
  return createTern(options);
}

/** Starts tern, runs fn, and always stops it again. */
export async function withTern<T>(ctx: BenchContext, tern: TernServer, fn: (tern: TernServer) => Promise<T>): Promise<T> {
  const forget = ctx.onCleanup(tern.stop);
  try {
    await tern.start();
    return await fn(tern);
  } finally {
    forget();
    await tern.stop();
  }
}

/** One smtp-source run against a running Tern: rate, stored count, log lines and the RSS peak during the run. */
export async function measureTern(ctx: BenchContext, tern: TernServer, server: string, load: Load, protocol: Protocol): Promise<Row> {
  return (await measureTernTimed(ctx, tern, server, load, protocol)).row;
}

/** measureTern, plus when the load ran (monotonic microseconds, as in a .cpuprofile). */
export async function measureTernTimed(
  ctx: BenchContext,
  tern: TernServer,
  server: string,
  load: Load,
  protocol: Protocol,
): Promise<{ row: Row; window: TimeWindow }> {
  const port = protocol === 'lmtp' ? ctx.config.ports.ternLmtp : ctx.config.ports.ternSmtp;
  await warmUp(ctx, load, port, protocol === 'lmtp');
  const before = await tern.storedMessages().catch(() => null);
  const logBefore = tern.acceptedLogLines();
  const pid = tern.pid();
  const peakReset = resetPeak(pid);
  ctx.log(`${server} ${protocol.toUpperCase()} ${load.label} x ${load.messages} on 127.0.0.1:${port}`);
  const fromUs = Number(process.hrtime.bigint() / 1000n);
  const result = await runLoad(loadSpec(ctx, load), port, protocol === 'lmtp');
  const window = { fromUs, toUs: Number(process.hrtime.bigint() / 1000n) };
  const memory = readMemory(pid);
  const after = await tern.storedMessages().catch(() => null);
  const stored = before === null || after === null || Number.isNaN(after - before) ? null : after - before;
  const row = loadRow(load, protocol, server, 'tern', result);
  // Without clear_refs the high-water mark covers the whole process life; say so with null rather than mislead.
  const rssMiB = peakReset ? mib(memory?.hwmKiB) : null;
  return { row: { ...row, stored, expected: load.messages, logLines: tern.acceptedLogLines() - logBefore, rssMiB }, window };
}
