/**
 * The server a fuzz run attacks: a fresh SQLite site (createSite) served by a real
 * `tern serve` child with small limits, so oversize messages and long lines are cheap to
 * send; and the store's integrity check once the server has stopped.
 *
 * With IMAP, the accounts get a scrypt hash of minimal cost (the stored hash carries its
 * parameters): every IMAP case logs in, and the real cost (about 50 ms of CPU each) would
 * make password hashing, not the session code, what a run spends its time on.
 */
import assert from 'node:assert/strict';
import { randomBytes, scryptSync } from 'node:crypto';
import { openStore } from '../../src/store/open.js';
import { createSite, freePort, startTern, type TernServer } from '../helpers/tern.js';
import { formatSummary, type FuzzSummary } from './runner.js';

export const FUZZ_LIMITS = { maxLineLength: 4096, maxMessageSize: 100_000, maxRecipients: 20 };

/** Accounts of the fuzzed site and their password. */
export const FUZZ_ACCOUNTS = ['alice@example.test', 'bob@example.test'];
export const FUZZ_PASSWORD = 'password123';

export interface FuzzSite {
  limits: typeof FUZZ_LIMITS;
  /** The server's own host name (postmaster@ it is an alias). */
  hostname: string;
  /** Local domain with the accounts alice@ and bob@. */
  domain: string;
}

export interface FuzzServer {
  tern: TernServer;
  site: FuzzSite;
  /** The IMAP port, or 0 when IMAP was not asked for. */
  imapPort: number;
}

function cheapHash(password: string): string {
  const salt = randomBytes(16);
  const key = scryptSync(password, salt, 32, { N: 16, r: 1, p: 1 });
  return `$scrypt$N=16,r=1,p=1$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function startFuzzServer(opts: { imap?: boolean } = {}): Promise<FuzzServer> {
  const site = await createSite();
  const imapPort = opts.imap ? await freePort() : 0;
  if (opts.imap) {
    const store = await openStore({ dataDir: site.dataDir });
    try {
      for (const address of FUZZ_ACCOUNTS) await store.directory.setPasswordHash(address, cheapHash(FUZZ_PASSWORD));
    } finally {
      await store.close();
    }
  }
  const tern = await startTern(site, [
    '--max-message-size',
    String(FUZZ_LIMITS.maxMessageSize),
    '--max-recipients',
    String(FUZZ_LIMITS.maxRecipients),
    '--max-line-length',
    String(FUZZ_LIMITS.maxLineLength),
    ...(opts.imap ? ['--imap-port', String(imapPort)] : []),
    // Smuggling attempts and failed logins are logged as warnings; keep the output to real errors.
    '--log-level',
    'error',
  ]);
  return { tern, site: { limits: FUZZ_LIMITS, hostname: 'mx.example.test', domain: 'example.test' }, imapPort };
}

/** Stops the server (SIGTERM) and returns its exit code and the store's integrity problems. */
export async function stopAndCheck(server: FuzzServer): Promise<{ exitCode: number | null; integrity: string[]; messages: number }> {
  const exitCode = await server.tern.stop();
  const store = await openStore({ dataDir: server.tern.site.dataDir });
  try {
    return { exitCode, integrity: await store.checkIntegrity(), messages: (await store.stats()).messages };
  } finally {
    await store.close();
  }
}

/** Error-level lines the server logged (pino JSON, level ≥ 50). */
export function serverErrors(output: string): string[] {
  return output.split('\n').filter((l) => /"level":(5\d|60)/.test(l));
}

/** Whether the server process still runs. */
export function serverAlive(server: FuzzServer): boolean {
  return server.tern.proc.exitCode === null && server.tern.proc.signalCode === null;
}

/**
 * Ends a fuzz test's run: reports the summary, then asserts every case passed, the run had
 * no problem of its own, the server logged no error, stopped cleanly and left the store intact.
 */
export async function assertFuzzRun(
  server: FuzzServer,
  summary: FuzzSummary,
  o: { seed: string; cases: number; diagnostic: (line: string) => void },
): Promise<void> {
  const errors = serverErrors(server.tern.output());
  const check = await stopAndCheck(server);
  for (const line of formatSummary(summary, o.seed).split('\n')) o.diagnostic(line);
  assert.deepEqual(summary.runProblems, [], `${summary.runProblems.join('\n')}\n${server.tern.output().slice(-3000)}`);
  assert.equal(
    summary.failed,
    0,
    `${summary.failed} of ${summary.cases} cases failed:\n${summary.failureLines.join('\n')}\n\n${summary.failures.slice(0, 3).join('\n\n')}`,
  );
  assert.equal(summary.cases, o.cases);
  assert.deepEqual(errors, [], 'the server logged errors');
  assert.equal(check.exitCode, 0, 'the server stops cleanly');
  assert.deepEqual(check.integrity, [], 'integrity check');
}
