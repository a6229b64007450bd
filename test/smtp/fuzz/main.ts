/**
 * `npm run fuzz`: session-level fuzzing of a real `tern serve` on SMTP and LMTP.
 *
 *   npm run fuzz                                   100,000 cases, a fresh seed (printed)
 *   npm run fuzz -- --cases 5000 --seed abc        a chosen count and seed
 *   FUZZ_SEED=abc FUZZ_CASE=1234 npm run fuzz      one case again, with its transcript
 *
 * Options (or FUZZ_* variables): --cases, --seed, --case, --first, --concurrency,
 * --timeout (ms of silence while a reply is due), --max-rss-mb, --max-seconds (stop
 * starting cases after this long). Exits 1 on any failure.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { startFuzzServer, serverErrors, stopAndCheck } from './fuzz-server.js';
import { formatSummary, runFuzz } from './runner.js';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: process.env.FUZZ_CASES ?? '100000' },
    seed: { type: 'string', default: process.env.FUZZ_SEED ?? randomBytes(6).toString('hex') },
    case: { type: 'string', default: process.env.FUZZ_CASE },
    first: { type: 'string', default: process.env.FUZZ_FIRST ?? '0' },
    concurrency: { type: 'string', default: process.env.FUZZ_CONCURRENCY ?? '8' },
    timeout: { type: 'string', default: process.env.FUZZ_TIMEOUT ?? '10000' },
    'max-rss-mb': { type: 'string', default: process.env.FUZZ_MAX_RSS_MB ?? '400' },
    'max-seconds': { type: 'string', default: process.env.FUZZ_MAX_SECONDS ?? '0' },
  },
});

const single = values.case !== undefined;
const seed = values.seed;
const server = await startFuzzServer();
console.log(
  `fuzzing tern serve (pid ${server.tern.proc.pid}) on SMTP :${server.tern.smtpPort} and LMTP :${server.tern.lmtpPort}, seed ${JSON.stringify(seed)}`,
);

let ok = false;
try {
  const summary = await runFuzz({
    seed,
    first: Number(single ? values.case : values.first),
    cases: single ? 1 : Number(values.cases),
    maxSeconds: Number(values['max-seconds']),
    concurrency: single ? 1 : Number(values.concurrency),
    site: server.site,
    smtpPort: server.tern.smtpPort,
    lmtpPort: server.tern.lmtpPort,
    maxLineLength: server.site.limits.maxLineLength,
    timeoutMs: Number(values.timeout),
    pid: server.tern.proc.pid!,
    maxRssBytes: Number(values['max-rss-mb']) * 2 ** 20,
    serverAlive: () => server.tern.proc.exitCode === null && server.tern.proc.signalCode === null,
    progress: (line) => console.log(line),
    ...(single ? { verbose: (text: string) => console.log(text) } : {}),
  });
  if (!single) for (const f of summary.failures) console.log(`\n${f}`);
  if (summary.failureLines.length) console.log(`\nfailing cases (first problem of each):\n${summary.failureLines.join('\n')}`);
  if (summary.failed > summary.failureLines.length) console.log(`… and ${summary.failed - summary.failureLines.length} more`);
  const errors = serverErrors(server.tern.output());
  if (errors.length) console.log(`\nserver logged ${errors.length} error(s):\n${errors.slice(0, 10).join('\n')}`);
  const crashed = summary.runProblems.length > 0;
  const check = await stopAndCheck(server);
  console.log(`\n${formatSummary(summary, seed)}`);
  console.log(
    `server exit code ${check.exitCode}; store holds ${check.messages} messages; integrity: ${check.integrity.length ? check.integrity.join('; ') : 'ok'}`,
  );
  ok = summary.failed === 0 && !crashed && errors.length === 0 && check.integrity.length === 0 && check.exitCode === 0;
} finally {
  await server.tern.stop('SIGKILL');
}
process.exit(ok ? 0 : 1);
