// `npm run bench`: Tern against Postfix (SMTP) and Dovecot (LMTP) on loopback at several
// message sizes, with smtp-sink as the protocol ceiling, Tern on SQLite and on a throwaway
// PostgreSQL cluster; then the rate with a full store, memory and latency with large
// messages, a CPU profile at 1 MB, IMAP against Dovecot (bench/imap.ts), and sending
// (submission and queue drain) against Postfix as a relay (bench/queue.ts), and the admin
// portal's first load and live dashboard in Chromium (bench/portal.ts). Prints
// tables and writes bench/out/results.json.
// Figures only; nothing is asserted. Settings: bench/config.ts and bench/README.md.
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchConfig } from './config.js';
import { errorText, type BenchContext } from './context.js';
import { describeFilesystem } from './filesystem.js';
import { fullStorePhase, largeMemoryPhase, latencyPhase, profilePhase } from './phases.js';
import { startBenchPostgres, type BenchPostgres } from './postgres.js';
import { imapPhase } from './imap.js';
import { queuePhase } from './queue.js';
import { apiPhase } from './api.js';
import { transferPhase } from './transfer.js';
import { portalPhase } from './portal.js';
import { formatReport, writeReport, type BenchReport } from './report.js';
import { referenceDirs, throughputPhase } from './throughput.js';
import { ensureImapPackages, ensureMailPackages, ensurePortalPackages, ensureQueuePackages, ensureSystemUser, runCommand } from './util.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const log = (line: string): void => console.log(`[bench] ${new Date().toISOString().slice(11, 19)} ${line}`);

/** Everything started so far, stopped in reverse order on exit or interrupt. */
const cleanups: Array<() => Promise<void>> = [];
async function cleanUp(): Promise<void> {
  while (cleanups.length > 0) {
    await cleanups
      .pop()?.()
      .catch((error: unknown) => log(`cleanup: ${errorText(error)}`));
  }
}
function onCleanup(stop: () => Promise<void>): () => void {
  cleanups.push(stop);
  return () => {
    const at = cleanups.lastIndexOf(stop);
    if (at >= 0) cleanups.splice(at, 1);
  };
}

async function describeEnvironment(): Promise<Record<string, string>> {
  const postfix = await runCommand('/usr/sbin/postconf', ['-d', '-h', 'mail_version']);
  const dovecot = await runCommand('/usr/sbin/dovecot', ['--version']);
  // "opendkim: OpenDKIM Filter v2.11.0" and then its build options.
  const opendkim = await runCommand('/usr/sbin/opendkim', ['-V']);
  return {
    node: process.version,
    cpus: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: os.release(),
    loadAverageAtStart: os
      .loadavg()
      .map((load) => load.toFixed(2))
      .join(' '),
    postfix: postfix.stdout.trim(),
    dovecot: dovecot.stdout.trim(),
    opendkim: /^opendkim: (.*)/.exec(opendkim.stdout)?.[1]?.trim() ?? '',
  };
}

async function main(): Promise<void> {
  const config = benchConfig(process.argv.slice(2));
  const startedAt = new Date().toISOString();
  // Every phase but imap drives smtp-source (Postfix's); imap needs Dovecot's IMAP server.
  if (config.phases.some((phase) => phase !== 'imap')) await ensureMailPackages(log);
  // Without Dovecot the IMAP phase still measures Tern (its Dovecot column says why it is empty).
  if (config.phases.includes('imap')) await ensureImapPackages(log).catch((error: unknown) => log(`Dovecot IMAP: ${errorText(error)}`));
  // Without them the queue phase's Postfix rows say why they failed; Tern's still run.
  if (config.phases.includes('queue')) await ensureQueuePackages(log).catch((error: unknown) => log(`OpenDKIM, Cyrus SASL: ${errorText(error)}`));
  // Without Chromium the portal phase says why it is empty.
  if (config.phases.includes('portal')) await ensurePortalPackages(log).catch((error: unknown) => log(`Chromium: ${errorText(error)}`));
  const environment = await describeEnvironment();
  const user = await ensureSystemUser('ternbench');
  const root = await mkdtemp(join(os.tmpdir(), 'tern-bench-'));
  await chmod(root, 0o755);
  if (!config.keep) cleanups.unshift(() => rm(root, { recursive: true, force: true }));
  log(`temp dir ${root}; phases ${config.phases.join(', ')}; loads ${config.loads.map((l) => `${l.label} x ${l.messages}`).join(', ')}`);

  let postgres: BenchPostgres | null = null;
  let postgresError = 'not needed';
  if (config.phases.some((p) => p === 'throughput' || p === 'transfer') && config.backends.includes('postgres')) {
    try {
      postgres = await startBenchPostgres();
      onCleanup(() => postgres!.destroy());
      environment.postgres = `${postgres.version.split(' on ')[0]} (throwaway cluster, default durability)`;
      log(`PostgreSQL cluster on 127.0.0.1:${postgres.cluster.port}`);
    } catch (error) {
      postgresError = errorText(error);
      log(`PostgreSQL: ${postgresError}`);
    }
  }

  const ctx: BenchContext = { config, repo: REPO, cli: join(REPO, 'dist', 'src', 'cli', 'main.js'), root, user, postgres, postgresError, log, onCleanup };
  const report: BenchReport = {
    startedAt,
    parameters: {
      phases: config.phases,
      loads: config.loads,
      protocols: config.protocols,
      backends: config.backends,
      fullStore: config.fullStore,
      large: config.large,
      profile: config.profile,
      imap: config.imap,
      portal: config.portal,
    },
    ports: config.ports,
    environment,
    filesystems: {},
    rows: [],
  };
  if (config.phases.includes('throughput')) report.rows = await throughputPhase(ctx);
  if (config.phases.includes('full-store')) report.fullStore = await fullStorePhase(ctx);
  if (config.phases.includes('large')) {
    report.largeMemory = await largeMemoryPhase(ctx);
    report.latency = await latencyPhase(ctx);
  }
  if (config.phases.includes('profile')) report.profile = await profilePhase(ctx);
  if (config.phases.includes('imap')) report.imap = await imapPhase(ctx);
  if (config.phases.includes('queue')) report.queue = await queuePhase(ctx);
  if (config.phases.includes('api')) report.api = await apiPhase(ctx);
  if (config.phases.includes('transfer')) report.transfer = await transferPhase(ctx);
  if (config.phases.includes('portal')) report.portal = await portalPhase(ctx);

  environment.ternServeFlags =
    '--log-level info (log to a file), unused listeners off; large-message runs add --max-message-size 30M --max-connections-per-ip 1000; ' +
    'the IMAP run adds --imap-port and raises --max-connections and --max-connections-per-ip for its IDLE connections';
  environment.loadAverageAtEnd = os
    .loadavg()
    .map((load) => load.toFixed(2))
    .join(' ');
  const references = Object.entries(referenceDirs(root)).filter(([, dir]) => existsSync(dir));
  report.filesystems = { 'Tern data dirs (SQLite)': describeFilesystem(root), ...Object.fromEntries(references.map(([k, v]) => [k, describeFilesystem(v)])) };
  if (postgres) report.filesystems['PostgreSQL cluster'] = describeFilesystem(postgres.cluster.dataDir);
  report.finishedAt = new Date().toISOString();
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
  console.error(`[bench] failed: ${errorText(error)}`);
  await cleanUp();
  process.exit(1);
});
