/**
 * `npm run fuzz`: session-level fuzzing of a real `tern serve`, SMTP/LMTP and IMAP, each
 * protocol against a fresh server of its own, then the MIME parser on its own (mutated
 * messages through test/mail/mime-fuzz.test.ts, in a child process).
 *
 *   npm run fuzz                                        100,000 cases per protocol, a fresh seed (printed)
 *   npm run fuzz -- --protocol imap --cases 5000 --seed abc
 *   FUZZ_SEED=abc FUZZ_CASE=1234 npm run fuzz -- --protocol imap   one case again, with its transcript
 *
 * Options (or FUZZ_* variables): --protocol smtp|imap|mime|all (default all), --cases (per
 * protocol), --seed, --case, --first, --concurrency, --timeout (ms of silence while an
 * answer is due), --max-rss-mb (default 400 for SMTP, 512 for IMAP), --max-seconds (per
 * protocol: stop starting cases after this long). Exits 1 on any failure.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MAX_LINE } from '../imap/fuzz/cases.js';
import { fillInboxes, runImapFuzz } from '../imap/fuzz/runner.js';
import { runFuzz } from '../smtp/fuzz/runner.js';
import { FUZZ_ACCOUNTS, FUZZ_PASSWORD, serverAlive, serverErrors, startFuzzServer, stopAndCheck } from './fuzz-server.js';
import { formatSummary, type FuzzSummary } from './runner.js';

const { values } = parseArgs({
  options: {
    protocol: { type: 'string', default: process.env.FUZZ_PROTOCOL ?? 'all' },
    cases: { type: 'string', default: process.env.FUZZ_CASES ?? '100000' },
    seed: { type: 'string', default: process.env.FUZZ_SEED ?? randomBytes(6).toString('hex') },
    case: { type: 'string', default: process.env.FUZZ_CASE },
    first: { type: 'string', default: process.env.FUZZ_FIRST ?? '0' },
    concurrency: { type: 'string', default: process.env.FUZZ_CONCURRENCY ?? '8' },
    timeout: { type: 'string', default: process.env.FUZZ_TIMEOUT ?? '10000' },
    'max-rss-mb': { type: 'string', default: process.env.FUZZ_MAX_RSS_MB },
    'max-seconds': { type: 'string', default: process.env.FUZZ_MAX_SECONDS ?? '0' },
  },
});

const PROTOCOLS: Record<string, Array<'smtp' | 'imap' | 'mime'>> = { all: ['smtp', 'imap', 'mime'], smtp: ['smtp'], imap: ['imap'], mime: ['mime'] };
const protocols = PROTOCOLS[values.protocol];
if (!protocols) {
  console.error(`--protocol must be smtp, imap, mime or all (not ${JSON.stringify(values.protocol)})`);
  process.exit(2);
}
const single = values.case !== undefined;
const seed = values.seed;
const common = {
  first: Number(single ? values.case : values.first),
  cases: single ? 1 : Number(values.cases),
  maxSeconds: Number(values['max-seconds']),
  concurrency: single ? 1 : Number(values.concurrency),
  timeoutMs: Number(values.timeout),
  progress: (line: string) => console.log(line),
  ...(single ? { verbose: (text: string) => console.log(text) } : {}),
};

/** Fuzzes one protocol against a fresh server; true when everything passed. */
async function fuzz(protocol: 'smtp' | 'imap'): Promise<boolean> {
  const server = await startFuzzServer({ imap: protocol === 'imap' });
  const ports = protocol === 'imap' ? `IMAP :${server.imapPort}` : `SMTP :${server.tern.smtpPort} and LMTP :${server.tern.lmtpPort}`;
  console.log(`fuzzing tern serve (pid ${server.tern.proc.pid}) on ${ports}, seed ${JSON.stringify(seed)}`);
  try {
    // IMAP keeps rendered ENVELOPE/BODYSTRUCTURE strings of up to 50,000 bodies (render/cache.ts): a long run fills that cache.
    const maxRssMb = Number(values['max-rss-mb'] ?? (protocol === 'imap' ? 512 : 400));
    const watch = { pid: server.tern.proc.pid!, serverAlive: () => serverAlive(server), maxRssBytes: maxRssMb * 2 ** 20 };
    let summary: FuzzSummary;
    if (protocol === 'smtp') {
      summary = await runFuzz({
        ...common,
        ...watch,
        seed,
        site: server.site,
        smtpPort: server.tern.smtpPort,
        lmtpPort: server.tern.lmtpPort,
        maxLineLength: server.site.limits.maxLineLength,
      });
    } else {
      const site = { accounts: FUZZ_ACCOUNTS, password: FUZZ_PASSWORD, maxMessageSize: server.site.limits.maxMessageSize };
      await fillInboxes(server.imapPort, site, seed);
      summary = await runImapFuzz({ ...common, ...watch, seed, site, imapPort: server.imapPort, maxLine: MAX_LINE });
    }
    if (!single) for (const f of summary.failures) console.log(`\n${f}`);
    if (summary.failureLines.length) console.log(`\nfailing cases (first problem of each):\n${summary.failureLines.join('\n')}`);
    if (summary.failed > summary.failureLines.length) console.log(`… and ${summary.failed - summary.failureLines.length} more`);
    const errors = serverErrors(server.tern.output());
    if (errors.length) console.log(`\nserver logged ${errors.length} error(s):\n${errors.slice(0, 10).join('\n')}`);
    const check = await stopAndCheck(server);
    console.log(`\n${protocol.toUpperCase()}: ${formatSummary(summary, seed)}`);
    console.log(
      `server exit code ${check.exitCode}; store holds ${check.messages} messages; integrity: ${check.integrity.length ? check.integrity.join('; ') : 'ok'}`,
    );
    return summary.failed === 0 && summary.runProblems.length === 0 && errors.length === 0 && check.integrity.length === 0 && check.exitCode === 0;
  } finally {
    await server.tern.stop('SIGKILL');
  }
}

/** The MIME parser's seeded fuzz test with this run's seed and case count; true when it passed. */
function fuzzMime(): boolean {
  const test = fileURLToPath(new URL('../mail/mime-fuzz.test.js', import.meta.url));
  console.log(`fuzzing the MIME parser: ${common.cases} mutated messages, seed ${JSON.stringify(seed)}`);
  const r = spawnSync(process.execPath, ['--test', test], {
    stdio: 'inherit',
    env: { ...process.env, TERN_MIME_FUZZ_SEED: seed, TERN_MIME_FUZZ_CASES: String(common.cases) },
  });
  console.log(`\nMIME: ${r.status === 0 ? 'passed' : `failed (exit ${r.status ?? r.signal})`}`);
  return r.status === 0;
}

let ok = true;
for (const protocol of protocols) ok = (protocol === 'mime' ? fuzzMime() : await fuzz(protocol)) && ok;
process.exit(ok ? 0 : 1);
