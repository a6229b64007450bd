/**
 * Runs many fuzz cases of one protocol against one running server: a bounded number of
 * connections at once, each case on its own connection, while the server process is
 * watched (alive, resident memory under a bound). Protocol-neutral: a protocol supplies
 * `runCase` (generate case `index`, run it, report); this returns figures and every
 * failing case in full.
 */
import { readFileSync } from 'node:fs';

/** What one case reports back to the loop. */
export interface CaseReport {
  /** Empty when the case passed. */
  problems: string[];
  /** Short description for failure lines, e.g. "smtp mutated". */
  label: string;
  /** Figures added to the summary's counts. */
  counts: Record<string, number>;
  /** Connect to greeting, in ms (null without a greeting). */
  greetingMs: number | null;
  /** The case, its problems and transcript, as people read them. */
  format(problems: string[]): string;
}

export interface RunLoopOptions {
  /** Case numbers [first, first + cases). */
  first: number;
  cases: number;
  /** Stop starting cases after this many seconds (0: no limit). */
  maxSeconds?: number;
  concurrency: number;
  /** The server's process id, for VmRSS. */
  pid: number;
  maxRssBytes: number;
  serverAlive: () => boolean;
  /** Called every few seconds with a line of progress. */
  progress?: (line: string) => void;
  /** Prints every case's transcript, failing or not. */
  verbose?: (text: string) => void;
  runCase(index: number): Promise<CaseReport>;
  /** Housekeeping run every `every` cases (between cases, by one worker), told the lowest case number still running. */
  housekeeping?: { every: number; run(lowestRunning: number): Promise<string[]> };
}

export interface FuzzSummary {
  cases: number;
  failed: number;
  /** Full reports of the first failing cases. */
  failures: string[];
  /** One line per failing case (its first problem), for the first 100. */
  failureLines: string[];
  /** How many failing cases had each kind of problem (see problemKind). */
  problemKinds: Record<string, number>;
  /** Problems of the run itself: crash, memory, housekeeping. */
  runProblems: string[];
  seconds: number;
  casesPerSecond: number;
  peakRssBytes: number;
  /** CPU time the server used during the run. */
  serverCpuSeconds: number;
  maxGreetingMs: number;
  p99GreetingMs: number;
  counts: Record<string, number>;
}

const REPORTED_FAILURES = 10;

export function rssBytes(pid: number): number | null {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return kb ? Number(kb[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat (100 ticks a second on Linux). */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/**
 * A problem without its particulars, to count failures by kind: the text before the first
 * quote, numbers as N, plus the start of the reply it quotes (code, enhanced status, word).
 */
export function problemKind(problem: string): string {
  if (problem.startsWith('expected ')) return problem.replace(/ \(unit \d+\)/, '').replace(/(, got \d{3}).*$/s, '$1');
  const head = problem
    .split('"')[0]!
    .replace(/U\+[0-9a-f]{4} /, '')
    .replace(/\d+/g, 'N')
    .trim();
  const reply = /"(\d{3}[ -][^"\\]*)/.exec(problem)?.[1]?.split(' ') ?? [];
  const words = reply.slice(0, /^\d\.\d{1,3}\.\d{1,3}$/.test(reply[1] ?? '') ? 3 : 2);
  return words.length ? `${head} ${words.join(' ')}` : head;
}

export async function runLoop(opts: RunLoopOptions): Promise<FuzzSummary> {
  const started = Date.now();
  const cpuAtStart = cpuSeconds(opts.pid) ?? 0;
  const summary: FuzzSummary = {
    cases: 0,
    failed: 0,
    failures: [],
    failureLines: [],
    problemKinds: {},
    runProblems: [],
    seconds: 0,
    casesPerSecond: 0,
    peakRssBytes: 0,
    serverCpuSeconds: 0,
    maxGreetingMs: 0,
    p99GreetingMs: 0,
    counts: {},
  };
  const count = (key: string, n = 1) => (summary.counts[key] = (summary.counts[key] ?? 0) + n);
  const greetings: number[] = [];
  let stop = false;

  const watch = () => {
    const rss = rssBytes(opts.pid);
    if (rss !== null) summary.peakRssBytes = Math.max(summary.peakRssBytes, rss);
    if (rss !== null && rss > opts.maxRssBytes && !summary.runProblems.some((p) => p.startsWith('RSS'))) {
      summary.runProblems.push(
        `RSS ${(rss / 2 ** 20).toFixed(0)} MB over the bound of ${(opts.maxRssBytes / 2 ** 20).toFixed(0)} MB after ${summary.cases} cases`,
      );
    }
    if (!opts.serverAlive()) {
      if (!summary.runProblems.some((p) => p.startsWith('server'))) summary.runProblems.push(`server process died after ${summary.cases} cases`);
      stop = true;
    }
  };
  const watcher = setInterval(watch, 200);
  let lastProgress = Date.now();

  let next = opts.first;
  const end = opts.first + opts.cases;
  const running = new Set<number>();
  let sinceHousekeeping = 0;
  const worker = async () => {
    while (!stop && next < end) {
      if (opts.maxSeconds && Date.now() - started > opts.maxSeconds * 1000) break;
      if (opts.housekeeping && sinceHousekeeping >= opts.housekeeping.every) {
        sinceHousekeeping = 0;
        const lowest = Math.min(next, ...running);
        summary.runProblems.push(...(await opts.housekeeping.run(lowest)).map((p) => `housekeeping: ${p}`));
        continue; // other workers went on meanwhile
      }
      const index = next++;
      running.add(index);
      const report = await opts.runCase(index);
      running.delete(index);
      sinceHousekeeping++;
      summary.cases++;
      for (const [key, n] of Object.entries(report.counts)) count(key, n);
      if (report.greetingMs !== null) greetings.push(report.greetingMs);
      if (!opts.serverAlive()) {
        watch();
        report.problems.push('the server process died during this case');
      }
      if (report.problems.length > 0) {
        summary.failed++;
        if (summary.failures.length < REPORTED_FAILURES) summary.failures.push(report.format(report.problems));
        for (const kind of new Set(report.problems.map(problemKind))) summary.problemKinds[kind] = (summary.problemKinds[kind] ?? 0) + 1;
        if (summary.failureLines.length < 100) summary.failureLines.push(`case ${index} (${report.label}): ${report.problems[0]!.slice(0, 300)}`);
      }
      if (opts.verbose) opts.verbose(report.format(report.problems).replace(/^FAILED /, report.problems.length ? 'FAILED ' : 'passed '));
      if (opts.progress && Date.now() - lastProgress > 5000) {
        lastProgress = Date.now();
        const s = (Date.now() - started) / 1000;
        opts.progress(
          `${summary.cases} cases in ${s.toFixed(0)} s (${(summary.cases / s).toFixed(0)}/s), ${summary.failed} failed, peak RSS ${(summary.peakRssBytes / 2 ** 20).toFixed(0)} MB`,
        );
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
  } finally {
    clearInterval(watcher);
  }
  watch();
  summary.serverCpuSeconds = (cpuSeconds(opts.pid) ?? cpuAtStart) - cpuAtStart;
  summary.seconds = (Date.now() - started) / 1000;
  summary.casesPerSecond = summary.cases / summary.seconds;
  greetings.sort((a, b) => a - b);
  summary.maxGreetingMs = greetings[greetings.length - 1] ?? 0;
  summary.p99GreetingMs = greetings[Math.floor(greetings.length * 0.99)] ?? 0;
  return summary;
}

export function formatSummary(s: FuzzSummary, seed: string): string {
  const counts = Object.entries(s.counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `  ${k}: ${v}`);
  return [
    `seed ${JSON.stringify(seed)}: ${s.cases} cases in ${s.seconds.toFixed(1)} s (${s.casesPerSecond.toFixed(0)} cases/s), ${s.failed} failed`,
    `server: peak RSS ${(s.peakRssBytes / 2 ** 20).toFixed(0)} MB, CPU ${s.serverCpuSeconds.toFixed(1)} s; greeting latency p99 ${s.p99GreetingMs} ms, max ${s.maxGreetingMs} ms`,
    ...counts,
    ...(s.failed ? ['failing cases by kind of problem:'] : []),
    ...Object.entries(s.problemKinds)
      .sort(([, a], [, b]) => b - a)
      .map(([k, v]) => `  ${String(v).padStart(6)} × ${k}`),
    ...s.runProblems.map((p) => `RUN PROBLEM: ${p}`),
  ].join('\n');
}
