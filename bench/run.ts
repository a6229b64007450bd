// `npm run bench`: inbound SMTP and LMTP throughput of Tern against throwaway Postfix
// and Dovecot instances on loopback, driven by Postfix's smtp-source, plus Tern's RSS.
// Prints a table and writes bench/out/results.json. Figures only; nothing is asserted.
//
// Env: BENCH_MESSAGES (5000), BENCH_SESSIONS (20), BENCH_SIZE (4096), BENCH_TIMEOUT
// (seconds per smtp-source run, 600), BENCH_KEEP=1 keeps the temp dir, and loopback ports
// BENCH_TERN_SMTP_PORT (22525), BENCH_TERN_LMTP_PORT (22424), BENCH_POSTFIX_PORT (2526),
// BENCH_DOVECOT_PORT (2425). Flag: --only smtp|lmtp.
import { mkdtemp, chmod, rm } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDovecot } from './dovecot.js';
import { createPostfix } from './postfix.js';
import { formatReport, ratioOf, writeReport, type BenchReport, type Comparison, type MemoryResult, type TargetResult } from './report.js';
import { readMemory, RssSampler } from './rss.js';
import { runLoad, type LoadSpec } from './smtp-source.js';
import { createTern, type TernServer } from './tern.js';
import { ensureMailPackages, ensureSystemUser, portIsFree, runCommand, sleep, waitForFiles, type ReferenceServer, type SystemUser } from './util.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DOMAIN = 'bench.test';
const LOCAL_PART = 'bench';

function envInt(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 ? value : fallback;
}

const PORTS = {
  ternSmtp: envInt('BENCH_TERN_SMTP_PORT', 22525),
  ternLmtp: envInt('BENCH_TERN_LMTP_PORT', 22424),
  postfix: envInt('BENCH_POSTFIX_PORT', 2526),
  dovecot: envInt('BENCH_DOVECOT_PORT', 2425),
};

function parseOnly(argv: string[]): Array<'smtp' | 'lmtp'> {
  const at = argv.indexOf('--only');
  if (at < 0) return ['smtp', 'lmtp'];
  const value = argv[at + 1];
  if (value !== 'smtp' && value !== 'lmtp') {
    console.error('usage: node dist/bench/run.js [--only smtp|lmtp]');
    process.exit(2);
  }
  return [value];
}

const log = (line: string): void => console.log(`[bench] ${line}`);
const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));
const mib = (kib: number | undefined): number | null => (kib ? kib / 1024 : null);

/** Everything started so far, stopped in reverse order on exit or interrupt. */
const cleanups: Array<() => Promise<void>> = [];
async function cleanUp(): Promise<void> {
  while (cleanups.length > 0) {
    await cleanups.pop()?.().catch((error: unknown) => log(`cleanup: ${message(error)}`));
  }
}

async function benchTern(tern: TernServer | null, startError: string, spec: LoadSpec, port: number, lmtp: boolean): Promise<TargetResult> {
  if (!tern) return { server: 'Tern', ok: false, error: startError };
  const before = await tern.storedMessages().catch(() => null);
  log(`Tern ${lmtp ? 'LMTP' : 'SMTP'} on 127.0.0.1:${port}`);
  const load = await runLoad(spec, port, lmtp);
  const after = await tern.storedMessages().catch(() => null);
  const stored = before === null || after === null || Number.isNaN(after - before) ? null : after - before;
  return { server: 'Tern', ...load, stored, expected: spec.messages };
}

/** Starts one reference server, loads it, waits up to 60 s for its Maildir to fill, stops it. */
async function benchReference(create: () => Promise<ReferenceServer>, name: string, spec: LoadSpec, port: number, lmtp: boolean): Promise<TargetResult> {
  if (!(await portIsFree(port))) return { server: name, ok: false, error: `127.0.0.1:${port} is already in use` };
  let server: ReferenceServer;
  try {
    server = await create();
  } catch (error) {
    return { server: name, ok: false, error: `could not configure: ${message(error)}` };
  }
  cleanups.push(server.stop);
  try {
    await server.start();
    log(`${name} ${lmtp ? 'LMTP' : 'SMTP'} on 127.0.0.1:${port}`);
    const load = await runLoad(spec, port, lmtp);
    const drained = await waitForFiles(server.maildirNew, spec.messages, 60_000);
    const drain = lmtp ? {} : { drainSeconds: drained.seconds };
    return { server: name, ...load, stored: drained.count, expected: spec.messages, ...drain };
  } catch (error) {
    return { server: name, ok: false, error: `could not start: ${message(error)}` };
  } finally {
    const at = cleanups.indexOf(server.stop);
    if (at >= 0) cleanups.splice(at, 1);
    await server.stop();
  }
}

async function describeEnvironment(): Promise<Record<string, string>> {
  const postfix = await runCommand('/usr/sbin/postconf', ['-d', '-h', 'mail_version']);
  const dovecot = await runCommand('/usr/sbin/dovecot', ['--version']);
  return {
    node: process.version,
    cpus: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}`,
    kernel: os.release(),
    loadAverageAtStart: os.loadavg().map((load) => load.toFixed(2)).join(' '),
    postfix: postfix.stdout.trim(),
    dovecot: dovecot.stdout.trim(),
  };
}

async function main(): Promise<void> {
  const protocols = parseOnly(process.argv.slice(2));
  const parameters = { messages: envInt('BENCH_MESSAGES', 5000), sessions: envInt('BENCH_SESSIONS', 20), size: envInt('BENCH_SIZE', 4096) };
  const spec: LoadSpec = { ...parameters, from: 'sender@example.org', to: `${LOCAL_PART}@${DOMAIN}`, timeoutMs: envInt('BENCH_TIMEOUT', 600) * 1000 };
  const startedAt = new Date().toISOString();

  await ensureMailPackages(log);
  const environment = await describeEnvironment();
  const user: SystemUser = await ensureSystemUser('ternbench');
  const root = await mkdtemp(join(os.tmpdir(), 'tern-bench-'));
  await chmod(root, 0o755);
  if (process.env.BENCH_KEEP !== '1') cleanups.unshift(() => rm(root, { recursive: true, force: true }));
  log(`temp dir ${root}`);

  let tern: TernServer | null = createTern({
    cli: join(REPO, 'dist', 'src', 'cli', 'main.js'), dataDir: join(root, 'tern'), domain: DOMAIN,
    address: spec.to, smtpPort: PORTS.ternSmtp, lmtpPort: PORTS.ternLmtp,
  });
  cleanups.push(tern.stop);
  let ternError = '';
  const memory: MemoryResult = { idleRssMiB: null, peakRssMiB: null, hwmMiB: null, samples: 0 };
  try {
    await tern.start();
    await sleep(1000);
    memory.idleRssMiB = mib(readMemory(tern.pid())?.rssKiB);
  } catch (error) {
    ternError = `Tern did not start: ${message(error)}`;
    log(ternError);
    tern = null;
  }
  const sampler = tern ? new RssSampler(tern.pid()) : null;
  sampler?.start();

  const comparisons: Comparison[] = [];
  for (const protocol of protocols) {
    const lmtp = protocol === 'lmtp';
    const ternResult = await benchTern(tern, ternError, spec, lmtp ? PORTS.ternLmtp : PORTS.ternSmtp, lmtp);
    const options = { root, domain: DOMAIN, localPart: LOCAL_PART, user };
    const reference = lmtp
      ? await benchReference(() => createDovecot({ ...options, port: PORTS.dovecot }), 'Dovecot', spec, PORTS.dovecot, true)
      : await benchReference(() => createPostfix({ ...options, port: PORTS.postfix }), 'Postfix', spec, PORTS.postfix, false);
    for (const r of [ternResult, reference]) if (!r.ok) log(`${r.server} ${protocol.toUpperCase()} failed: ${r.error}`);
    comparisons.push({ protocol, tern: ternResult, reference, ratio: ratioOf(ternResult, reference) });
  }

  if (sampler) {
    sampler.stop();
    memory.peakRssMiB = mib(sampler.peakRssKiB);
    memory.hwmMiB = mib(sampler.hwmKiB);
    memory.samples = sampler.samples;
  }
  environment.ternServeFlags = tern?.flags().join(' ') ?? '';
  const report: BenchReport = { startedAt, parameters, ports: PORTS, environment, comparisons, ternMemory: memory };
  await cleanUp();
  const out = join(REPO, 'bench', 'out', 'results.json');
  await writeReport(out, report);
  console.log(`\n${formatReport(report)}\n\nJSON: ${out}`);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping servers`);
    void cleanUp().finally(() => process.exit(130));
  });
}

main().catch(async (error: unknown) => {
  console.error(`[bench] failed: ${message(error)}`);
  await cleanUp();
  process.exit(1);
});
