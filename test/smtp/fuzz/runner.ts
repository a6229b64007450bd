/**
 * Runs many SMTP/LMTP fuzz cases against one running server through the shared loop
 * (test/fuzz/runner.ts): each case generated from the seed and its number, run on its own
 * connection, and counted by protocol, kind and way of sending.
 */
import { runLoop, type FuzzSummary, type RunLoopOptions } from '../../fuzz/runner.js';
import { generateCase, type CaseSite } from './cases.js';
import { formatFailure, runCase, type CaseTarget } from './run-case.js';

export { formatSummary, type FuzzSummary } from '../../fuzz/runner.js';

export interface FuzzRunOptions extends CaseTarget, Omit<RunLoopOptions, 'runCase' | 'housekeeping'> {
  seed: string;
  site: CaseSite;
}

export async function runFuzz(opts: FuzzRunOptions): Promise<FuzzSummary> {
  return runLoop({
    ...opts,
    async runCase(index) {
      const c = generateCase(opts.seed, index, opts.site);
      const outcome = await runCase(c, opts);
      const counts: Record<string, number> = {
        [`${c.mode} ${c.kind}`]: 1,
        [`sent ${c.sending}`]: 1,
        replies: outcome.replies,
        'messages acknowledged': outcome.delivered,
      };
      if (outcome.tls) counts['TLS upgrades'] = 1;
      if (outcome.serverClosed) counts['sessions ended by the server (221/421)'] = 1;
      return {
        problems: outcome.problems,
        label: `${c.mode} ${c.kind}`,
        counts,
        greetingMs: outcome.greetingMs,
        format: (problems) => formatFailure(c, { ...outcome, problems }),
      };
    },
  });
}
