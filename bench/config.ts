// The bench's settings: flags override BENCH_* environment variables, which override
// the defaults (a full run of every phase in about 30 minutes on 2 cores).
import type { Load } from './report.js';

export const PHASES = ['throughput', 'full-store', 'large', 'profile', 'imap', 'queue', 'api', 'transfer', 'portal'] as const;
export type Phase = (typeof PHASES)[number];
export const BACKENDS = ['sqlite', 'postgres'] as const;
export type Backend = (typeof BACKENDS)[number];
export type Protocol = 'smtp' | 'lmtp';
export const IMAP_TARGETS = ['tern', 'dovecot'] as const;
export type ImapTargetName = (typeof IMAP_TARGETS)[number];

/** The IMAP phase's sizes (bench/imap.ts); 0 for big or idle skips that step. */
export interface ImapBenchConfig {
  targets: ImapTargetName[];
  /** Messages appended to INBOX, one at a time, and their size in bytes. */
  messages: number;
  size: number;
  selects: number;
  /** Random messages whose body is fetched. */
  bodies: number;
  /** Times each search runs. */
  searches: number;
  /** Messages in the second mailbox whose SELECT is timed, the connections that fill it, and the most seconds the fill may take. */
  big: number;
  /** The first messages of the fill, APPENDed and timed on every server (the rest may be written behind the server's back). */
  fillTimed: number;
  fillConnections: number;
  fillSeconds: number;
  /** Clients in the mixed workload and how long it runs. */
  clients: number;
  mixedSeconds: number;
  /** Tern only: connections left in IDLE while its RSS is read, and the most seconds opening them may take. */
  idle: number;
  idleSeconds: number;
}

export interface BenchConfig {
  phases: Phase[];
  protocols: Protocol[];
  backends: Backend[];
  loads: Load[];
  timeoutMs: number;
  /** Untimed messages sent to a server before each timed load (at most a fifth of the load); 0: none. */
  warmup: number;
  keep: boolean;
  ports: { ternSmtp: number; ternLmtp: number; postfix: number; dovecot: number; sink: number; ternImap: number; dovecotImap: number };
  fullStore: { preload: number; load: Load };
  large: { connections: number; size: number; latencyConnections: number; probes: number; probeDelayMs: number; probeIntervalMs: number };
  profile: { load: Load };
  imap: ImapBenchConfig;
  /** The sending phase (bench/queue.ts): queue sizes run in turn, submission sessions, message size, Tern's submission port. */
  queue: { sizes: number[]; sessions: number; size: number; ternSubmissionPort: number; scale: number };
  /** The HTTP API phase (bench/api.ts): Tern's HTTP port, autocannon connections, single-send and batch requests, message size. */
  api: { port: number; connections: number; singles: number; batches: number; size: number };
  /** The transfer phase (bench/transfer.ts): messages in the site exported and imported, their body size, SMTP clients during the live backup. */
  transfer: { messages: number; size: number; clients: number };
  /** The admin portal phase (bench/portal.ts): Tern's HTTP port, how long and how fast mail flows in while the dashboard is open, message size. */
  portal: { port: number; seconds: number; rate: number; size: number };
}

export const USAGE = `usage: node dist/bench/run.js [options]
  --phases LIST     ${PHASES.join(',')} (default: all)           BENCH_PHASES
  --loads LIST      SIZE:MESSAGES,... e.g. 4k:5000,100k:2000,1m:500   BENCH_LOADS
  --backends LIST   sqlite,postgres (default: both)              BENCH_BACKENDS
  --only smtp|lmtp  one protocol only
  --sessions N      parallel smtp-source sessions (20)           BENCH_SESSIONS
  --preload N       messages bulk-loaded for the full-store run (1000000)   BENCH_PRELOAD
See bench/README.md for the rest (BENCH_* variables).`;

class UsageError extends Error {}

function positiveInt(name: string, raw: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new UsageError(`${name} must be a positive integer, not ${JSON.stringify(raw)}`);
  return value;
}

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  return raw === undefined || raw === '' ? fallback : positiveInt(name, raw);
}

/** Like envInt, but 0 is allowed (it turns a step off). */
function envCount(name: string, fallback: number): number {
  return process.env[name] === '0' ? 0 : envInt(name, fallback);
}

/** A flag's value if given, else the environment variable's, else the default. */
function intSetting(f: Map<string, string>, flag: string, name: string, fallback: number): number {
  const raw = f.get(flag);
  return raw === undefined ? envInt(name, fallback) : positiveInt(`--${flag}`, raw);
}

/** "4k" → 4096, "100k" → 102400, "1m" → 1048576, "20000000" → 20000000. */
export function parseSize(text: string): number {
  const match = /^(\d+)([km]?)b?$/i.exec(text.trim());
  if (!match) throw new UsageError(`bad size ${JSON.stringify(text)} (e.g. 4096, 4k, 1m)`);
  const unit = match[2]?.toLowerCase();
  return Number(match[1]) * (unit === 'k' ? 1024 : unit === 'm' ? 1024 * 1024 : 1);
}

export function sizeLabel(bytes: number): string {
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0) return `${bytes / 1024 / 1024} MB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KB`;
  return `${bytes} B`;
}

function parseLoads(text: string, sessions: number): Load[] {
  return text
    .split(',')
    .filter(Boolean)
    .map((item) => {
      const [size, messages] = item.split(':');
      const count = Number(messages);
      if (!size || !Number.isInteger(count) || count <= 0) throw new UsageError(`bad load ${JSON.stringify(item)} (expected SIZE:MESSAGES, e.g. 4k:5000)`);
      const bytes = parseSize(size);
      return { label: sizeLabel(bytes), size: bytes, messages: count, sessions };
    });
}

function parseList<T extends string>(name: string, text: string, allowed: readonly T[]): T[] {
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const item of items)
    if (!(allowed as readonly string[]).includes(item)) throw new UsageError(`unknown ${name} ${JSON.stringify(item)} (one of ${allowed.join(', ')})`);
  return items as T[];
}

function flags(argv: string[]): Map<string, string> {
  const found = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') throw new UsageError('');
    const known = ['--phases', '--loads', '--backends', '--only', '--sessions', '--preload'];
    if (!known.includes(arg)) throw new UsageError(`unknown argument ${arg}`);
    const value = argv[++i];
    if (value === undefined) throw new UsageError(`${arg} needs a value`);
    found.set(arg.slice(2), value);
  }
  return found;
}

function readConfig(argv: string[]): BenchConfig {
  const f = flags(argv);
  const env = (name: string): string | undefined => process.env[name] || undefined;
  const sessions = intSetting(f, 'sessions', 'BENCH_SESSIONS', 20);
  const only = f.get('only');
  if (only !== undefined && only !== 'smtp' && only !== 'lmtp') throw new UsageError('--only takes smtp or lmtp');
  const preload = intSetting(f, 'preload', 'BENCH_PRELOAD', 1_000_000);
  return {
    phases: parseList('phase', f.get('phases') ?? env('BENCH_PHASES') ?? PHASES.join(','), PHASES),
    protocols: only ? [only] : ['smtp', 'lmtp'],
    backends: parseList('backend', f.get('backends') ?? env('BENCH_BACKENDS') ?? BACKENDS.join(','), BACKENDS),
    loads: parseLoads(f.get('loads') ?? env('BENCH_LOADS') ?? '4k:5000,100k:2000,1m:500', sessions),
    timeoutMs: envInt('BENCH_TIMEOUT', 600) * 1000,
    warmup: process.env.BENCH_WARMUP === '0' ? 0 : envInt('BENCH_WARMUP', 1000),
    keep: process.env.BENCH_KEEP === '1',
    ports: {
      ternSmtp: envInt('BENCH_TERN_SMTP_PORT', 22525),
      ternLmtp: envInt('BENCH_TERN_LMTP_PORT', 22424),
      postfix: envInt('BENCH_POSTFIX_PORT', 2526),
      dovecot: envInt('BENCH_DOVECOT_PORT', 2425),
      sink: envInt('BENCH_SINK_PORT', 2527),
      ternImap: envInt('BENCH_TERN_IMAP_PORT', 22143),
      dovecotImap: envInt('BENCH_DOVECOT_IMAP_PORT', 2144),
    },
    fullStore: { preload, load: { label: '4 KB', size: 4096, messages: envInt('BENCH_FULL_MESSAGES', 5000), sessions } },
    large: {
      connections: envInt('BENCH_LARGE_CONNECTIONS', 200),
      size: envInt('BENCH_LARGE_SIZE', 20_000_000),
      latencyConnections: envInt('BENCH_LATENCY_CONNECTIONS', 100),
      probes: envInt('BENCH_PROBES', 5),
      probeDelayMs: envInt('BENCH_PROBE_DELAY_MS', 1000),
      probeIntervalMs: envInt('BENCH_PROBE_INTERVAL_MS', 500),
    },
    profile: { load: { label: '1 MB', size: 1024 * 1024, messages: envInt('BENCH_PROFILE_MESSAGES', 300), sessions } },
    queue: {
      sizes: (env('BENCH_QUEUE_SIZES') ?? '5000,20000').split(',').map((v) => {
        const n = Number(v.trim());
        if (!Number.isInteger(n) || n < 1) throw new UsageError(`BENCH_QUEUE_SIZES: whole numbers, got ${JSON.stringify(v)}`);
        return n;
      }),
      sessions,
      size: 4096,
      ternSubmissionPort: envInt('BENCH_TERN_SUBMISSION_PORT', 22587),
      scale: envCount('BENCH_QUEUE_SCALE', 1_000_000),
    },
    api: {
      port: envInt('BENCH_TERN_HTTP_PORT', 28080),
      connections: envInt('BENCH_API_CONNECTIONS', 50),
      singles: envInt('BENCH_API_SINGLES', 10_000),
      batches: envInt('BENCH_API_BATCHES', 200),
      size: 4096,
    },
    transfer: {
      messages: envInt('BENCH_TRANSFER_MESSAGES', 100_000),
      size: parseSize(env('BENCH_TRANSFER_SIZE') ?? '4k'),
      clients: envInt('BENCH_TRANSFER_CLIENTS', 10),
    },
    portal: {
      port: envInt('BENCH_TERN_HTTP_PORT', 28080),
      seconds: envInt('BENCH_PORTAL_SECONDS', 20),
      rate: envInt('BENCH_PORTAL_RATE', 1000),
      size: parseSize(env('BENCH_PORTAL_SIZE') ?? '4k'),
    },
    imap: {
      targets: parseList('IMAP target', env('BENCH_IMAP_TARGETS') ?? IMAP_TARGETS.join(','), IMAP_TARGETS),
      messages: envInt('BENCH_IMAP_MESSAGES', 10_000),
      size: parseSize(env('BENCH_IMAP_SIZE') ?? '4k'),
      selects: envInt('BENCH_IMAP_SELECTS', 100),
      bodies: envInt('BENCH_IMAP_BODIES', 1000),
      searches: envInt('BENCH_IMAP_SEARCHES', 5),
      big: envCount('BENCH_IMAP_BIG', 100_000),
      fillTimed: envInt('BENCH_IMAP_FILL_TIMED', 10_000),
      fillConnections: envInt('BENCH_IMAP_FILL_CONNECTIONS', 8),
      fillSeconds: envInt('BENCH_IMAP_FILL_SECONDS', 600),
      clients: envInt('BENCH_IMAP_CLIENTS', 10),
      mixedSeconds: envInt('BENCH_IMAP_MIXED_SECONDS', 30),
      idle: envCount('BENCH_IMAP_IDLE', 10_000),
      idleSeconds: envInt('BENCH_IMAP_IDLE_SECONDS', 600),
    },
  };
}

/** The settings, or the usage text and exit 2 on a bad flag or variable. */
export function benchConfig(argv: string[]): BenchConfig {
  try {
    return readConfig(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    if (error.message) console.error(`bench: ${error.message}`);
    console.error(USAGE);
    process.exit(error.message ? 2 : 0);
  }
}
