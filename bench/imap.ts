// The IMAP phase: the same load script (bench/imap-steps.ts, imap-mixed.ts) against Tern
// (`tern serve` on a fresh SQLite data dir) and against a throwaway Dovecot IMAP server
// (bench/dovecot-imap.ts), one after the other in the same run, each warmed up first;
// then Tern's memory with thousands of connections in IDLE (bench/imap-idle.ts).
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { ImapTargetName } from './config.js';
import { ADDRESS, DOMAIN, errorText, type BenchContext } from './context.js';
import { createDovecotImap } from './dovecot-imap.js';
import { idleConnections, type ImapIdleResult } from './imap-idle.js';
import { mixedWorkload } from './imap-mixed.js';
import {
  allUids,
  bigMailboxSteps,
  inboxSteps,
  messagePool,
  openSession,
  warmUpImap,
  type BulkWriter,
  type ImapEndpoint,
  type ImapMeasure,
} from './imap-steps.js';
import { createTern } from './tern.js';
import { portIsFree } from './util.js';

export interface ImapStep {
  id: string;
  title: string;
  unit: string;
  results: Partial<Record<ImapTargetName, ImapMeasure>>;
  /** Tern's rate over Dovecot's. */
  ratio?: number | null;
}

export interface ImapPhaseResult {
  ok: boolean;
  error?: string;
  settings: Record<string, unknown>;
  /** Per server: version and how it ran. */
  targets: Partial<Record<ImapTargetName, string>>;
  /** Per server: why it could not run at all. */
  failures: Partial<Record<ImapTargetName, string>>;
  steps: ImapStep[];
  idle?: ImapIdleResult;
}

/** The steps in report order (titles are filled in from the settings). */
function stepList(ctx: BenchContext): Array<Omit<ImapStep, 'results'>> {
  const c = ctx.config.imap;
  const size = `${(c.size / 1024).toFixed(c.size % 1024 ? 1 : 0)} KB`;
  return [
    { id: 'append', title: `1. APPEND ${c.messages} x ${size} to INBOX (1 connection, 1 command in flight)`, unit: 'msg/s' },
    { id: 'select', title: `2. SELECT INBOX, ${c.selects} times`, unit: 'ops/s' },
    { id: 'fetch-envelope', title: '3. FETCH 1:* (UID FLAGS ENVELOPE), 3 times', unit: 'msg/s' },
    { id: 'fetch-body', title: `4. UID FETCH n (BODY.PEEK[]), ${c.bodies} random messages, one command each`, unit: 'msg/s' },
    { id: 'search-subject', title: `5a. UID SEARCH SUBJECT, ${c.searches} times`, unit: 'searches/s' },
    { id: 'search-from', title: `5b. UID SEARCH FROM, ${c.searches} times`, unit: 'searches/s' },
    { id: 'search-body', title: `5c. UID SEARCH BODY, ${c.searches} times`, unit: 'searches/s' },
    { id: 'store', title: '6. STORE 1:* +FLAGS (\\Flagged), 3 times', unit: 'msg/s' },
    { id: 'big-fill', title: `7a. APPEND ${Math.min(c.big, c.fillTimed)} x ${size} to a 2nd mailbox (${c.fillConnections} connections)`, unit: 'msg/s' },
    { id: 'big-select-first', title: `7b. SELECT of it once filled to ${c.big}: first, new connection`, unit: 'ops/s' },
    { id: 'big-select', title: `7c. SELECT of it once filled to ${c.big}: repeated, 20 times`, unit: 'ops/s' },
    { id: 'mixed', title: `8. ${c.clients} clients, mixed workload, ${c.mixedSeconds} s`, unit: 'ops/s' },
  ];
}

interface ImapServer {
  endpoint: ImapEndpoint;
  /** Fills the big mailbox past its timed APPENDs behind the server's back (Dovecot: Maildir files); APPEND when absent. */
  bulk?: BulkWriter;
  describe: string;
  start(): Promise<void>;
  stop: () => Promise<void>;
  pid(): Promise<number>;
}

async function ternServer(ctx: BenchContext, password: string): Promise<ImapServer> {
  const { config } = ctx;
  // Room for the IDLE connections: per listener and per client IP (all of them come from 127.0.0.1).
  const limit = String(Math.max(1000, config.imap.idle + 1000));
  const tern = createTern({
    cli: ctx.cli,
    dataDir: join(ctx.root, 'tern_imap'),
    domain: DOMAIN,
    address: ADDRESS,
    password,
    smtpPort: config.ports.ternSmtp,
    lmtpPort: 0,
    imapPort: config.ports.ternImap,
    logFile: join(ctx.root, 'tern_imap.log'),
    extraFlags: ['--max-connections', limit, '--max-connections-per-ip', limit],
    openFiles: 65536,
  });
  return {
    endpoint: { port: config.ports.ternImap, user: ADDRESS, password, timeoutMs: config.timeoutMs },
    describe: `tern serve, SQLite, ${tern.flags().join(' ')}, ulimit -n 65536 (or the hard limit if lower)`,
    start: tern.start,
    stop: tern.stop,
    pid: async () => tern.pid(),
  };
}

async function dovecotServer(ctx: BenchContext, password: string): Promise<ImapServer> {
  const port = ctx.config.ports.dovecotImap;
  if (!(await portIsFree(port))) throw new Error(`127.0.0.1:${port} is already in use`);
  const dovecot = await createDovecotImap({ root: ctx.root, port, user: ADDRESS, password, owner: ctx.user });
  return {
    endpoint: { port, user: ADDRESS, password, timeoutMs: ctx.config.timeoutMs },
    describe: `Dovecot ${dovecot.version}, Maildir, passwd-file, default fsync (optimized), log ${dovecot.logFile}`,
    start: dovecot.start,
    stop: dovecot.stop,
    pid: dovecot.pid,
    bulk: dovecot.writeMaildir,
  };
}

/** Every step against one server; the IDLE test too when it is Tern. */
async function measureServer(ctx: BenchContext, name: ImapTargetName, result: ImapPhaseResult, pool: Buffer[]): Promise<void> {
  const cfg = ctx.config.imap;
  const password = randomBytes(12).toString('hex');
  const label = name === 'tern' ? 'Tern' : 'Dovecot';
  const record = (id: string, measure: ImapMeasure): void => {
    const step = result.steps.find((s) => s.id === id);
    if (step) step.results[name] = measure;
    const figure = measure.ok ? `${measure.perSecond?.toFixed(1)}/s` : `FAILED: ${measure.error}`;
    ctx.log(`${label} ${id}: ${figure}${measure.note ? ` (${measure.note})` : ''}`);
  };
  let server: ImapServer;
  try {
    server = name === 'tern' ? await ternServer(ctx, password) : await dovecotServer(ctx, password);
  } catch (error) {
    result.failures[name] = errorText(error);
    return;
  }
  const forget = ctx.onCleanup(server.stop);
  try {
    await server.start();
    result.targets[name] = server.describe;
    const e = server.endpoint;
    ctx.log(`${label} IMAP on 127.0.0.1:${e.port}: warm-up`);
    await warmUpImap(e, pool, ctx.config.warmup);
    ctx.log(`${label}: steps 1-6 on INBOX`);
    await inboxSteps(e, cfg, pool, record);
    if (cfg.big > 0) {
      ctx.log(`${label}: filling a mailbox to ${cfg.big} messages`);
      await bigMailboxSteps(e, cfg, pool, record, ctx.log, server.bulk);
    }
    ctx.log(`${label}: mixed workload`);
    try {
      const client = await openSession(e);
      const uids = await allUids(client, 'INBOX').finally(() => client.logout());
      record('mixed', await mixedWorkload(e, cfg.clients, cfg.mixedSeconds, uids, pool));
    } catch (error) {
      record('mixed', { ok: false, error: errorText(error) });
    }
    if (name === 'tern' && cfg.idle > 0) {
      ctx.log(`Tern: ${cfg.idle} connections in IDLE`);
      result.idle = await idleConnections({
        endpoint: e,
        connections: cfg.idle,
        openSeconds: cfg.idleSeconds,
        serverPid: await server.pid(),
        smtpPort: ctx.config.ports.ternSmtp,
        log: ctx.log,
      });
    }
  } catch (error) {
    result.failures[name] = errorText(error);
  } finally {
    forget();
    await server.stop();
  }
}

export async function imapPhase(ctx: BenchContext): Promise<ImapPhaseResult> {
  const cfg = ctx.config.imap;
  const result: ImapPhaseResult = {
    ok: false,
    settings: { ...cfg, warmup: ctx.config.warmup, fetch: 'BODY.PEEK[] (BODY[] would also store \\Seen)' },
    targets: {},
    failures: {},
    steps: stepList(ctx).map((s) => ({ ...s, results: {} })),
  };
  if (cfg.big === 0) result.steps = result.steps.filter((s) => !s.id.startsWith('big-'));
  ctx.log(`IMAP: generating ${cfg.messages} messages of about ${cfg.size} bytes`);
  const pool = messagePool(cfg.messages, cfg.size);
  for (const name of cfg.targets) await measureServer(ctx, name, result, pool);
  for (const step of result.steps) {
    const [tern, dovecot] = [step.results.tern?.perSecond, step.results.dovecot?.perSecond];
    step.ratio = tern && dovecot ? tern / dovecot : null;
  }
  const failed = Object.entries(result.failures).map(([name, why]) => `${name}: ${why}`);
  const stepFailures = result.steps.flatMap((s) =>
    Object.entries(s.results)
      .filter(([, m]) => !m.ok)
      .map(([name]) => `${name} ${s.id}`),
  );
  result.ok = failed.length === 0 && stepFailures.length === 0 && (result.idle?.ok ?? true);
  if (!result.ok) result.error = [...failed, ...(stepFailures.length ? [`failed steps: ${stepFailures.join(', ')}`] : [])].join('; ') || result.idle?.error;
  return result;
}
