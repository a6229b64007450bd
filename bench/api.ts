// The HTTP API phase: durable sends per second through POST /api/v1/messages (one
// message a request) and POST /api/v1/messages/batch (100 a request), driven by
// autocannon over keep-alive connections, with p50/p99 latency and Tern's peak RSS. Each
// runs twice: the sender's domain with its DKIM key (every message RSA-signed, as Tern
// sends) and without one. No queue role runs, so every accepted message stays queued:
// after the run the store must hold exactly one queue entry per 202'd message, which is
// what "every 202 durable" means here.
import { join } from 'node:path';
import autocannon from 'autocannon';
import { ADDRESS, DOMAIN, errorText, type BenchContext } from './context.js';
import { RssSampler } from './rss.js';
import { createTern } from './tern.js';
import { mustRun } from './util.js';
import { openStore } from '../src/store/open.js';

export interface ApiRun {
  kind: 'single' | 'batch';
  signed: boolean;
  requests: number;
  messages: number;
  seconds: number;
  messagesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  queued: number;
  peakRssMiB: number;
  error?: string;
}

export interface ApiPhaseResult {
  ok: boolean;
  error?: string;
  runs: ApiRun[];
}

const BATCH = 100;

function message(i: number, size: number) {
  return {
    from: ADDRESS,
    to: `user${i % 100}@remote.example`,
    subject: `bench ${i}`,
    text: 'x'
      .repeat(76)
      .concat('\n')
      .repeat(Math.ceil(size / 77)),
  };
}

async function run(ctx: BenchContext, kind: ApiRun['kind'], signed: boolean): Promise<ApiRun> {
  const q = ctx.config.api;
  const name = `api_${kind}_${signed ? 'signed' : 'unsigned'}`;
  const dataDir = join(ctx.root, name);
  const tern = createTern({
    cli: ctx.cli,
    dataDir,
    domain: DOMAIN,
    address: ADDRESS,
    smtpPort: ctx.config.ports.ternSmtp,
    lmtpPort: 0,
    domainFlags: signed ? [] : ['--dkim', 'none'],
    logFile: join(ctx.root, `${name}.log`),
    extraFlags: ['--roles', 'smtp,http', '--http-port', String(q.port), '--log-level', 'warn'],
  });
  const forget = ctx.onCleanup(tern.stop);
  const requests = kind === 'single' ? q.singles : q.batches;
  const result: ApiRun = { kind, signed, requests, messages: 0, seconds: 0, messagesPerSecond: 0, p50Ms: 0, p99Ms: 0, non2xx: 0, queued: 0, peakRssMiB: 0 };
  try {
    await tern.start();
    const made = await mustRun(process.execPath, [ctx.cli, 'apikey', 'create', '--scope', 'send', '--json', '--data', dataDir]);
    const key = (JSON.parse(made.stdout) as { key: string }).key;
    const body = kind === 'single' ? message(0, q.size) : { messages: Array.from({ length: BATCH }, (_, i) => message(i, q.size)) };
    ctx.log(
      `Tern HTTP API, ${kind === 'single' ? 'single sends' : `batches of ${BATCH}`}${signed ? ', DKIM-signed' : ', unsigned'}: ${requests} requests over ${q.connections} connections`,
    );
    const rss = new RssSampler(tern.pid());
    rss.start();
    const out = await autocannon({
      url: `http://127.0.0.1:${q.port}${kind === 'single' ? '/api/v1/messages' : '/api/v1/messages/batch'}`,
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      connections: kind === 'single' ? q.connections : Math.min(q.connections, 10),
      amount: requests,
      timeout: 120,
    });
    rss.stop();
    const ok = out['2xx'];
    result.non2xx = out.non2xx + out.errors + out.timeouts;
    result.seconds = out.duration;
    result.messages = ok * (kind === 'single' ? 1 : BATCH);
    result.messagesPerSecond = result.messages / out.duration;
    result.p50Ms = out.latency.p50;
    result.p99Ms = out.latency.p99;
    result.peakRssMiB = rss.peakRssKiB / 1024;
  } catch (error) {
    result.error = errorText(error);
  } finally {
    await tern.stop();
    forget();
  }
  if (!result.error) {
    const store = await openStore({ dataDir });
    try {
      result.queued = await store.queue.count({});
    } finally {
      await store.close();
    }
    if (result.queued !== result.messages) result.error = `${result.messages} messages answered 202 but ${result.queued} are queued`;
  }
  return result;
}

export async function apiPhase(ctx: BenchContext): Promise<ApiPhaseResult> {
  const result: ApiPhaseResult = { ok: false, runs: [] };
  try {
    for (const kind of ['single', 'batch'] as const) for (const signed of [true, false]) result.runs.push(await run(ctx, kind, signed));
    result.ok = result.runs.every((r) => !r.error);
    if (!result.ok) result.error = result.runs.find((r) => r.error)?.error;
  } catch (error) {
    result.error = errorText(error);
  }
  return result;
}

export function formatApi(result: ApiPhaseResult): string[] {
  const lines = ['HTTP API (durable accepts: every 202 is a committed queue entry; autocannon, keep-alive):'];
  lines.push('  run                                   msg/s   req/s   p50 ms   p99 ms   peak RSS   non-2xx');
  for (const r of result.runs) {
    const name = `${r.kind === 'single' ? 'single sends' : `batches of ${BATCH}`}, ${r.signed ? 'DKIM-signed' : 'unsigned'}`;
    const reqs = r.seconds ? (r.kind === 'single' ? r.messages : r.messages / BATCH) / r.seconds : 0;
    lines.push(
      `  ${name.padEnd(34)} ${r.messagesPerSecond.toFixed(0).padStart(7)} ${reqs.toFixed(0).padStart(7)} ${r.p50Ms.toFixed(1).padStart(8)} ${r.p99Ms.toFixed(1).padStart(8)} ${`${r.peakRssMiB.toFixed(0)} MiB`.padStart(10)} ${String(r.non2xx).padStart(9)}`,
    );
    if (r.error) lines.push(`    error: ${r.error}`);
  }
  if (result.error && result.runs.length === 0) lines.push(`  error: ${result.error}`);
  return lines;
}
