// The bench phases after throughput: the accept rate with a full store, memory with many
// concurrent large messages, a small message's latency behind large ones, and a CPU
// profile of Tern receiving 1 MB messages. Each uses its own fresh Tern on SQLite.
import { copyFile, mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADDRESS, errorText, measureTern, measureTernTimed, mib, newTern, SENDER, withTern, type BenchContext } from './context.js';
import { summariseProfile } from './cpu-profile.js';
import { probeUnderLoad, sendConcurrently } from './large.js';
import type { FullStoreResult, LargeMemoryResult, LatencyResult, ProfileResult } from './report.js';
import { readMemory, resetPeak, RssSampler } from './rss.js';
import type { SendSpec } from './smtp-client.js';
import { runCommand, sleep } from './util.js';

const BULK_LOAD = join(dirname(fileURLToPath(import.meta.url)), 'bulk-load.js');

async function directoryMiB(dir: string): Promise<number | undefined> {
  const du = await runCommand('du', ['-sk', dir], { timeoutMs: 120_000 });
  const kib = Number(du.stdout.split(/\s/)[0]);
  return du.code === 0 && kib > 0 ? kib / 1024 : undefined;
}

/** Bulk-loads a store, then measures the 4 KB SMTP rate on an empty store and on the full one, back to back. */
export async function fullStorePhase(ctx: BenchContext): Promise<FullStoreResult> {
  const { preload, load } = ctx.config.fullStore;
  const result: FullStoreResult = { ok: false };
  try {
    const full = await newTern(ctx, { backend: 'sqlite', name: 'tern_full', lmtp: false });
    await full.provision();
    ctx.log(`bulk-loading ${preload} messages into ${full.dataDir}`);
    const args = [BULK_LOAD, '--data', full.dataDir, '--messages', String(preload), '--address', ADDRESS];
    const loaded = await runCommand(process.execPath, args, { timeoutMs: 3 * 3600_000 });
    if (loaded.code !== 0) throw new Error(`bulk load failed: ${(loaded.stderr || loaded.stdout).trim().split('\n').slice(-3).join(' | ')}`);
    const summary = JSON.parse(loaded.stdout.trim().split('\n').pop() ?? '{}') as { messages?: number; seconds?: number };
    result.preloaded = summary.messages;
    result.bulkLoadSeconds = summary.seconds;
    result.bulkLoadPerSecond = summary.messages && summary.seconds ? summary.messages / summary.seconds : undefined;
    result.dataDirMiB = await directoryMiB(full.dataDir);

    const empty = await newTern(ctx, { backend: 'sqlite', name: 'tern_empty', lmtp: false });
    result.empty = await withTern(ctx, empty, () => measureTern(ctx, empty, 'Tern SQLite, empty', load, 'smtp'));
    result.full = await withTern(ctx, full, () => measureTern(ctx, full, `Tern SQLite, ${preload} stored`, load, 'smtp'));
    const [a, b] = [result.empty.perSecond, result.full.perSecond];
    result.ratio = a && b ? b / a : null;
    result.ok = result.empty.ok && result.full.ok;
    if (!result.ok) result.error = result.empty.error ?? result.full.error;
  } catch (error) {
    result.error = errorText(error);
  }
  return result;
}

// Large messages need a bigger limit than the default 25M, and more connections from one IP than the default 100.
const LARGE_FLAGS = ['--max-message-size', '30M', '--max-connections-per-ip', '1000'];

function largeSpec(ctx: BenchContext, size: number): SendSpec {
  return { port: ctx.config.ports.ternSmtp, from: SENDER, to: ADDRESS, size, timeoutMs: ctx.config.timeoutMs };
}

/** Peak RSS of Tern while `connections` messages of `size` bytes arrive at once. */
export async function largeMemoryPhase(ctx: BenchContext): Promise<LargeMemoryResult> {
  const { connections, size } = ctx.config.large;
  try {
    const tern = await newTern(ctx, { backend: 'sqlite', name: 'tern_large', lmtp: false, extraFlags: LARGE_FLAGS });
    return await withTern(ctx, tern, async () => {
      await sleep(1000);
      const pid = tern.pid();
      const idleRssMiB = mib(readMemory(pid)?.rssKiB);
      resetPeak(pid);
      const sampler = new RssSampler(pid);
      sampler.start();
      ctx.log(`${connections} concurrent messages of ${size} bytes`);
      const load = await sendConcurrently(largeSpec(ctx, size), connections);
      sampler.stop();
      return {
        ok: load.accepted === connections,
        error: load.accepted === connections ? undefined : `${load.accepted} of ${connections} accepted`,
        idleRssMiB,
        peakRssMiB: mib(Math.max(sampler.hwmKiB, sampler.peakRssKiB)),
        load,
      };
    });
  } catch (error) {
    return { ok: false, error: errorText(error) };
  }
}

/** One-line messages sent one at a time while `latencyConnections` large messages arrive. */
export async function latencyPhase(ctx: BenchContext): Promise<LatencyResult> {
  const { latencyConnections, size, probes, probeDelayMs, probeIntervalMs } = ctx.config.large;
  try {
    const tern = await newTern(ctx, { backend: 'sqlite', name: 'tern_latency', lmtp: false, extraFlags: LARGE_FLAGS });
    return await withTern(ctx, tern, async () => {
      const pid = tern.pid();
      resetPeak(pid);
      const sampler = new RssSampler(pid);
      sampler.start();
      ctx.log(`${probes} one-line probes while ${latencyConnections} messages of ${size} bytes arrive`);
      const result = await probeUnderLoad(largeSpec(ctx, size), latencyConnections, { probes, delayMs: probeDelayMs, intervalMs: probeIntervalMs });
      sampler.stop();
      const ok = result.duringLoad > 0 && (result.codes['250'] ?? 0) === result.duringLoad;
      return {
        ok,
        error: ok ? undefined : `probes during the load: ${JSON.stringify(result.codes)}`,
        peakRssMiB: mib(Math.max(sampler.hwmKiB, sampler.peakRssKiB)),
        probes: result,
      };
    });
  } catch (error) {
    return { ok: false, error: errorText(error) };
  }
}

/** Runs the profile load against `tern serve` under node --cpu-prof and summarises every thread's profile. */
export async function profilePhase(ctx: BenchContext): Promise<ProfileResult> {
  const dir = join(ctx.root, 'profiles');
  const kept = join(ctx.repo, 'bench', 'out', 'profiles');
  try {
    await mkdir(dir, { recursive: true });
    const nodeOptions = ['--cpu-prof', '--cpu-prof-dir', dir];
    const tern = await newTern(ctx, { backend: 'sqlite', name: 'tern_profile', lmtp: false, nodeOptions });
    const { row, window } = await withTern(ctx, tern, () => measureTernTimed(ctx, tern, 'Tern SQLite, profiled', ctx.config.profile.load, 'smtp'));
    // The profiles are written as each thread exits, i.e. after withTern has stopped the server.
    const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).sort();
    if (files.length === 0) return { ok: false, error: 'tern serve wrote no .cpuprofile', row };
    await rm(kept, { recursive: true, force: true });
    await mkdir(kept, { recursive: true });
    for (const f of files) await copyFile(join(dir, f), join(kept, f));
    // Only the samples taken while smtp-source ran: start-up and shutdown are left out.
    const summaries = files.map((f) => summariseProfile(join(kept, f), 20, window));
    return { ok: row.ok, error: row.error, row, dir: kept, summaries };
  } catch (error) {
    return { ok: false, error: errorText(error) };
  }
}
