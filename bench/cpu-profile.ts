// Summarises V8 .cpuprofile files (from `node --cpu-prof`): where the time went, by
// function (self time, with the nearest Tern functions up the stack) and by source file, optionally only within a time window (the
// profile's timestamps are CLOCK_MONOTONIC microseconds, like process.hrtime, so the
// bench can leave out the server's start-up). Used by the bench's profile run, and alone:
//   node dist/bench/cpu-profile.js FILE.cpuprofile... [--top 20]
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileEntry {
  name: string;
  ms: number;
  /** Share of the busy (non-idle) time. */
  percent: number;
  /** Functions only: the nearest Tern functions (src/…) up the stack, by share of this entry's time. */
  callers?: Array<{ name: string; percent: number }>;
}

/** Monotonic microseconds (process.hrtime.bigint() / 1000n), both ends included. */
export interface TimeWindow {
  fromUs: number;
  toUs: number;
}

export interface ProfileSummary {
  file: string;
  /** "main thread", or the worker's script name (e.g. "store/sqlite/writer-worker.js"). */
  thread: string;
  /** Set when only samples inside this window were counted. */
  window?: TimeWindow;
  totalMs: number;
  idleMs: number;
  busyMs: number;
  /** Self time per function, biggest first. */
  functions: ProfileEntry[];
  /** Self time per source file (node internals grouped as "node:…", native frames by name). */
  files: ProfileEntry[];
}

// Where a frame's code lives, short: the repo path for our files, the package for dependencies.
function shortUrl(url: string): string {
  if (!url) return '';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(path);
  if (pkg) return `${pkg[1]}/${pkg[2]}`;
  const ours = /\/dist\/(.*)$/.exec(path);
  return ours ? ours[1]! : path;
}

function frameName(frame: CallFrame): string {
  const fn = frame.functionName || '(anonymous)';
  const where = shortUrl(frame.url);
  return where ? `${fn} ${where}:${frame.lineNumber + 1}` : fn;
}

function fileName(frame: CallFrame): string {
  const where = shortUrl(frame.url);
  if (!where) return frame.functionName.startsWith('(') ? frame.functionName : '(native)';
  return where;
}

function top(map: Map<string, number>, busyMs: number, count: number, callers?: Map<string, Map<string, number>>): ProfileEntry[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, ms]) => {
      const entry: ProfileEntry = { name, ms, percent: busyMs > 0 ? (100 * ms) / busyMs : 0 };
      const from = callers?.get(name);
      if (from) {
        entry.callers = [...from.entries()]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 3)
          .map(([caller, callerMs]) => ({ name: caller, percent: ms > 0 ? (100 * callerMs) / ms : 0 }));
      }
      return entry;
    });
}

/** For each node id, the nearest ancestor frame in Tern's own code (src/…), or "(none)". */
function ternCallers(profile: CpuProfile): (id: number) => string {
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const memo = new Map<number, string>();
  const find = (id: number): string => {
    const cached = memo.get(id);
    if (cached !== undefined) return cached;
    const up = parent.get(id);
    const frame = up === undefined ? undefined : byId.get(up)?.callFrame;
    const found = up === undefined || !frame ? '(none)' : shortUrl(frame.url).startsWith('src/') ? frameName(frame) : find(up);
    memo.set(id, found);
    return found;
  };
  return find;
}

// A worker's profile holds frames of its own script (…-worker.js); the main thread's does not.
function threadOf(profile: CpuProfile): string {
  const worker = profile.nodes.map((n) => shortUrl(n.callFrame.url)).find((url) => /^src\/.*-worker\.js$/.test(url));
  return worker ? worker.replace(/^src\//, '') : 'main thread';
}

/** Self time per function and per file; "(idle)" is left out of the percentages. */
export function summariseProfile(file: string, topCount = 20, window?: TimeWindow): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // timeDeltas[i] is the time before sample i; the sample stands for the interval after it.
  let at = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    at += deltas[i] ?? 0;
    if (window && (at < window.fromUs || at > window.toUs)) continue;
    const next = deltas[i + 1] ?? 0;
    selfMs.set(samples[i]!, (selfMs.get(samples[i]!) ?? 0) + next / 1000);
  }
  const functions = new Map<string, number>();
  const callers = new Map<string, Map<string, number>>();
  const callerOf = ternCallers(profile);
  const files = new Map<string, number>();
  let idleMs = 0;
  let totalMs = 0;
  for (const [id, ms] of selfMs) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    totalMs += ms;
    if (frame.functionName === '(idle)') {
      idleMs += ms;
      continue;
    }
    const fn = frameName(frame);
    functions.set(fn, (functions.get(fn) ?? 0) + ms);
    const from = callers.get(fn) ?? new Map<string, number>();
    const caller = callerOf(id);
    from.set(caller, (from.get(caller) ?? 0) + ms);
    callers.set(fn, from);
    const source = fileName(frame);
    files.set(source, (files.get(source) ?? 0) + ms);
  }
  const busyMs = totalMs - idleMs;
  return {
    file,
    thread: threadOf(profile),
    window,
    totalMs,
    idleMs,
    busyMs,
    functions: top(functions, busyMs, topCount, callers),
    files: top(files, busyMs, topCount),
  };
}

/** A plain-text rendering of one summary. */
export function formatProfile(s: ProfileSummary, topCount = 20): string {
  const lines = [
    `${basename(s.file)} (${s.thread}): ${(s.totalMs / 1000).toFixed(1)} s sampled, ${(s.busyMs / 1000).toFixed(1)} s busy (${s.totalMs > 0 ? ((100 * s.busyMs) / s.totalMs).toFixed(0) : 0}%)`,
    '  self time by function (% of busy):',
    ...s.functions
      .slice(0, topCount)
      .flatMap((e) => [
        `    ${e.percent.toFixed(1).padStart(5)}%  ${e.ms.toFixed(0).padStart(7)} ms  ${e.name}`,
        ...(e.callers ?? []).filter((c) => c.percent >= 10).map((c) => `                      ${c.percent.toFixed(0).padStart(3)}% under ${c.name}`),
      ]),
    '  self time by file:',
    ...s.files.slice(0, Math.min(topCount, 12)).map((e) => `    ${e.percent.toFixed(1).padStart(5)}%  ${e.ms.toFixed(0).padStart(7)} ms  ${e.name}`),
  ];
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--top');
  const topCount = at >= 0 ? Number(args.splice(at, 2)[1]) || 20 : 20;
  if (args.length === 0) {
    console.error('usage: node dist/bench/cpu-profile.js FILE.cpuprofile... [--top N]');
    process.exit(2);
  }
  for (const file of args) console.log(formatProfile(summariseProfile(file, topCount), topCount));
}
