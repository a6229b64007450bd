/**
 * The server a fuzz run attacks: a fresh SQLite site (createSite) served by a real
 * `tern serve` child with small limits, so oversize messages and long lines are cheap
 * to send; and the store's integrity check once the server has stopped.
 */
import { openStore } from '../../../src/store/open.js';
import { createSite, startTern, type TernServer } from '../../helpers/tern.js';
import type { CaseSite } from './cases.js';

export const FUZZ_LIMITS = { maxLineLength: 4096, maxMessageSize: 100_000, maxRecipients: 20 };

export interface FuzzServer {
  tern: TernServer;
  site: CaseSite;
}

export async function startFuzzServer(): Promise<FuzzServer> {
  const site = await createSite();
  const tern = await startTern(site, [
    '--max-message-size',
    String(FUZZ_LIMITS.maxMessageSize),
    '--max-recipients',
    String(FUZZ_LIMITS.maxRecipients),
    '--max-line-length',
    String(FUZZ_LIMITS.maxLineLength),
    // Smuggling attempts are logged as warnings; keep the output to real errors.
    '--log-level',
    'error',
  ]);
  return { tern, site: { limits: FUZZ_LIMITS, hostname: 'mx.example.test', domain: 'example.test' } };
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
