// The sending phase: Tern's submission accept rate and queue drain rate against Postfix
// relaying the same load, in the same run, to the same sink (Postfix's smtp-sink).
// - Accept: 20 sessions each authenticate once (AUTH PLAIN) and send their share of N
//   messages of 4 KB for a remote domain; Tern on its submission port with no queue role
//   running, Postfix as a submission relay (Cyrus SASL, permit_sasl_authenticated) with
//   delivery deferred (defer_transports).
// - Drain: Tern starts its queue role with a smarthost (the sink), Postfix releases its
//   deferred transport and flushes; the rate is messages delivered per second until the
//   queue is empty (Tern: counted in its store; Postfix: "status=sent" lines).
// Both sign at acceptance or neither does, so there are four comparisons: accept and
// drain, signed (Tern with the domain's DKIM key against Postfix with an OpenDKIM milter)
// and unsigned (Tern with a domain without a key against Postfix alone).
// Runs for each queue size in config.queue.sizes (5,000 and 20,000 by default); then
// queue control with a million entries queued (bench/queue-scale.ts).
import { join } from 'node:path';
import { ADDRESS, DOMAIN, errorText, type BenchContext } from './context.js';
import { createOpenDkim } from './opendkim.js';
import { createPostfix, type PostfixServer } from './postfix.js';
import { startSink } from './smtp-sink.js';
import { submitLoad, type SubmitResult } from './submit.js';
import { createTern } from './tern.js';
import { countOccurrences, portIsFree, sleep } from './util.js';
import { openStore } from '../src/store/open.js';
import { formatQueueScale, queueScaleStep, type QueueScaleResult } from './queue-scale.js';

/** tern: the domain has a DKIM key (signed); ternUnsigned: it has none; postfix: no milter (unsigned); postfixDkim: OpenDKIM milter (signed). */
type Target = 'tern' | 'ternUnsigned' | 'postfix' | 'postfixDkim';

export interface QueueRun {
  messages: number;
  accept: Partial<Record<Target, SubmitResult>>;
  drain: Partial<Record<Target, { delivered: number; seconds: number; perSecond: number; error?: string }>>;
  /** Postfix + OpenDKIM, after accept: messages in its queue and how many carry a DKIM-Signature (all must). */
  postfixDkimSigned?: { queued: number; signed: number };
}

export interface QueuePhaseResult {
  ok: boolean;
  error?: string;
  settings: Record<string, unknown>;
  runs: QueueRun[];
  scale?: QueueScaleResult;
}

const REMOTE = (i: number) => `user${i % 100}@remote.example`;

async function waitUntil(what: string, timeoutMs: number, done: () => Promise<boolean> | boolean): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > until) throw new Error(`timed out: ${what}`);
    await sleep(100);
  }
}

/** One Tern run: fill the queue over submission, then drain it. `target` ternUnsigned: the domain has no DKIM key, so nothing is signed (as Postfix without OpenDKIM). */
async function ternRun(ctx: BenchContext, messages: number, run: QueueRun, target: 'tern' | 'ternUnsigned'): Promise<void> {
  const q = ctx.config.queue;
  const name = `${target}_queue_${messages}`;
  const dataDir = join(ctx.root, name);
  const base = {
    cli: ctx.cli,
    dataDir,
    domain: DOMAIN,
    address: ADDRESS,
    smtpPort: ctx.config.ports.ternSmtp,
    lmtpPort: 0,
    domainFlags: target === 'ternUnsigned' ? ['--dkim', 'none'] : [],
  };
  // Accept with no worker, so the queue fills; then the worker alone drains it.
  const accepting = createTern({
    ...base,
    logFile: join(ctx.root, `${name}_accept.log`),
    extraFlags: ['--roles', 'smtp,submission', '--submission-port', String(q.ternSubmissionPort)],
  });
  const forget = ctx.onCleanup(accepting.stop);
  try {
    await accepting.start();
    ctx.log(`Tern${target === 'tern' ? '' : ' (no DKIM key)'}: ${messages} messages over ${q.sessions} authenticated submission sessions`);
    run.accept[target] = await submitLoad({
      port: q.ternSubmissionPort,
      sessions: q.sessions,
      messages,
      from: ADDRESS,
      to: REMOTE,
      size: q.size,
      auth: { user: ADDRESS, pass: accepting.password },
      timeoutMs: ctx.config.timeoutMs,
    });
  } finally {
    await accepting.stop();
    forget();
  }
  const draining = createTern({
    ...base,
    provisioned: true,
    logFile: join(ctx.root, `${name}_drain.log`),
    extraFlags: ['--roles', 'smtp,queue', '--smarthost', `127.0.0.1:${ctx.config.ports.sink}`],
  });
  const forgetDrain = ctx.onCleanup(draining.stop);
  const store = await openStore({ dataDir });
  try {
    const left = async () => (await store.queue.list({}, { limit: 100_000 })).length;
    const queued = await left();
    await draining.start();
    const remaining = await left();
    const started = performance.now();
    await waitUntil('Tern drains its queue', ctx.config.timeoutMs, async () => (await store.queue.list({}, { limit: 1 })).length === 0);
    const seconds = (performance.now() - started) / 1000;
    run.drain[target] = { delivered: remaining, seconds, perSecond: remaining / seconds, error: queued === messages ? undefined : `${queued} queued` };
  } catch (error) {
    run.drain[target] = { delivered: 0, seconds: 0, perSecond: 0, error: errorText(error) };
  } finally {
    await store.close();
    await draining.stop();
    forgetDrain();
  }
}

/** Starts the OpenDKIM signer for a Postfix + OpenDKIM run; stop() (also registered with ctx.onCleanup) ends it. */
async function startSigner(ctx: BenchContext, name: string): Promise<{ milter: string; stop(): Promise<void> }> {
  const opendkim = await createOpenDkim({ root: ctx.root, name, domain: DOMAIN, selector: 'bench', user: ctx.user });
  const forget = ctx.onCleanup(opendkim.stop);
  const stop = async (): Promise<void> => {
    await opendkim.stop();
    forget();
  };
  await opendkim.start().catch(async (error: unknown) => {
    await stop();
    throw error;
  });
  return { milter: opendkim.milter, stop };
}

/** Every message Postfix + OpenDKIM queued must carry a signature, or its figures are an unsigned Postfix's. */
async function checkSigned(postfix: PostfixServer, messages: number, run: QueueRun): Promise<void> {
  const { queued, withHeader } = await postfix.queuedWithHeader('DKIM-Signature');
  run.postfixDkimSigned = { queued, signed: withHeader };
  if (queued !== messages || withHeader !== queued) throw new Error(`${withHeader} of ${queued} queued messages (of ${messages}) carry a DKIM-Signature`);
}

/** One Postfix run: fill the held queue over authenticated sessions, then release and drain it. `target` postfixDkim: OpenDKIM signs at acceptance. */
async function postfixRun(ctx: BenchContext, messages: number, run: QueueRun, target: 'postfix' | 'postfixDkim'): Promise<void> {
  const port = ctx.config.ports.postfix;
  if (!(await portIsFree(port))) throw new Error(`127.0.0.1:${port} is already in use`);
  const signer = target === 'postfixDkim' ? await startSigner(ctx, `opendkim_${messages}`) : null;
  try {
    await postfixRelay(ctx, messages, run, target, signer?.milter);
  } finally {
    await signer?.stop();
  }
}

/** postfixRun's instance: the accept step, the signature check, then the drain step. */
async function postfixRelay(ctx: BenchContext, messages: number, run: QueueRun, target: 'postfix' | 'postfixDkim', milter: string | undefined): Promise<void> {
  const q = ctx.config.queue;
  const port = ctx.config.ports.postfix;
  const name = `${target}_relay_${messages}`;
  const postfix = await createPostfix({
    root: ctx.root,
    name,
    port,
    domain: DOMAIN,
    localPart: 'bench',
    user: ctx.user,
    relayPort: ctx.config.ports.sink,
    milter,
  });
  const forget = ctx.onCleanup(postfix.stop);
  try {
    await postfix.start();
    ctx.log(`Postfix${milter ? ' + OpenDKIM' : ''}: ${messages} messages over ${q.sessions} authenticated submission sessions`);
    const accept = await submitLoad({
      port,
      sessions: q.sessions,
      messages,
      from: ADDRESS,
      to: REMOTE,
      size: q.size,
      auth: postfix.login,
      timeoutMs: ctx.config.timeoutMs,
    });
    run.accept[target] = accept;
    if (accept.error) throw new Error(`not drained: ${accept.error}`);
    if (milter) await checkSigned(postfix, messages, run);
    const sentBefore = countOccurrences(postfix.logFile, 'status=sent');
    const started = performance.now();
    await postfix.release();
    await waitUntil('Postfix drains its queue', ctx.config.timeoutMs, () => countOccurrences(postfix.logFile, 'status=sent') - sentBefore >= messages);
    const seconds = (performance.now() - started) / 1000;
    run.drain[target] = { delivered: messages, seconds, perSecond: messages / seconds };
  } catch (error) {
    run.drain[target] ??= { delivered: 0, seconds: 0, perSecond: 0, error: errorText(error) };
  } finally {
    await postfix.stop();
    forget();
  }
}

export async function queuePhase(ctx: BenchContext): Promise<QueuePhaseResult> {
  const q = ctx.config.queue;
  const result: QueuePhaseResult = { ok: false, settings: { ...q }, runs: [] };
  const sink = await startSink(ctx.config.ports.sink, false, ctx.user).catch((error: unknown) => {
    result.error = errorText(error);
    return null;
  });
  if (!sink) return result;
  const forget = ctx.onCleanup(sink.stop);
  try {
    for (const messages of q.sizes) {
      const run: QueueRun = { messages, accept: {}, drain: {} };
      result.runs.push(run);
      for (const target of ['tern', 'ternUnsigned'] as const) {
        await ternRun(ctx, messages, run, target).catch((error: unknown) => {
          run.accept[target] ??= { accepted: 0, seconds: 0, perSecond: 0, error: errorText(error) };
        });
      }
      for (const target of ['postfix', 'postfixDkim'] as const) {
        await postfixRun(ctx, messages, run, target).catch((error: unknown) => {
          run.accept[target] ??= { accepted: 0, seconds: 0, perSecond: 0, error: errorText(error) };
        });
      }
    }
    if (q.scale > 0) {
      ctx.log(`queue control at scale: filling a store with ${q.scale} queued messages`);
      result.scale = await queueScaleStep(ctx, q.scale);
    }
    const failures = result.runs.flatMap((r) => [...Object.values(r.accept), ...Object.values(r.drain)].filter((m) => m.error).map((m) => m.error!));
    if (result.scale?.error) failures.push(`at scale: ${result.scale.error}`);
    result.ok = failures.length === 0;
    if (!result.ok) result.error = failures.join('; ');
  } finally {
    await sink.stop();
    forget();
  }
  return result;
}

/** The phase's table: per size, accept and drain rates, signed and unsigned, of both and Tern's ratio. */
export function formatQueue(result: QueuePhaseResult): string[] {
  const lines = [
    'Sending (submission accept and queue drain to smtp-sink; ratio = Tern / Postfix):',
    "  signed: Tern with the domain's DKIM key vs Postfix + OpenDKIM (both RSA 2048, relaxed/relaxed, at acceptance);",
    '  unsigned: Tern with a domain without a key vs Postfix alone. Every client authenticates once per session.',
  ];
  const fmt = (n: number | undefined) => (n ? n.toFixed(0) : '-');
  lines.push(`  ${'step'.padEnd(48)}${'Tern'.padStart(10)}${'Postfix'.padStart(10)}${'ratio'.padStart(8)}`);
  for (const r of result.runs) {
    const rows: Array<[string, number | undefined, number | undefined]> = [
      [`accept ${r.messages} x 4 KB, signed (msg/s)`, r.accept.tern?.perSecond, r.accept.postfixDkim?.perSecond],
      [`accept ${r.messages} x 4 KB, unsigned (msg/s)`, r.accept.ternUnsigned?.perSecond, r.accept.postfix?.perSecond],
      [`drain ${r.messages}, signed (msg/s)`, r.drain.tern?.perSecond, r.drain.postfixDkim?.perSecond],
      [`drain ${r.messages}, unsigned (msg/s)`, r.drain.ternUnsigned?.perSecond, r.drain.postfix?.perSecond],
    ];
    for (const [step, tern, postfix] of rows) {
      const ratio = tern && postfix ? (tern / postfix).toFixed(2) : '-';
      lines.push(`  ${step.padEnd(48)}${fmt(tern).padStart(10)}${fmt(postfix).padStart(10)}${ratio.padStart(8)}`);
    }
    const signed = r.postfixDkimSigned;
    if (signed) lines.push(`    Postfix + OpenDKIM: ${signed.signed} of ${signed.queued} queued messages carried a DKIM-Signature`);
    for (const [name, m] of [...Object.entries(r.accept), ...Object.entries(r.drain)]) if (m.error) lines.push(`    ${name}: ${m.error}`);
  }
  if (result.error) lines.push(`  error: ${result.error}`);
  if (result.scale) lines.push('', ...formatQueueScale(result.scale));
  return lines;
}
