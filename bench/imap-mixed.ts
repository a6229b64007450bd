// Step 8 of the IMAP bench: several clients at once on INBOX for a fixed time, each
// looping over a weighted mix of what a mail client does (SELECT, FETCH flags and
// envelopes of a range, FETCH a body, STORE a flag, SEARCH, NOOP, now and then APPEND).
import type { ImapClient } from './imap-client.js';
import { openSession, uniqueMessage, type ImapEndpoint, type ImapMeasure } from './imap-steps.js';
import { errorText } from './context.js';

const MIX = [
  ['SELECT', 5],
  ['FETCH range', 25],
  ['FETCH body', 20],
  ['STORE', 15],
  ['SEARCH', 10],
  ['NOOP', 20],
  ['APPEND', 5],
] as const;
type Operation = (typeof MIX)[number][0];
const TOTAL_WEIGHT = MIX.reduce((sum, [, weight]) => sum + weight, 0);
const SEARCH_WORDS = ['invoice', 'report', 'meeting', 'release', 'lunch', 'review'];
const RANGE = 50;

export interface MixedResult extends ImapMeasure {
  /** Operations done, by kind, and their mean time in ms. */
  byOperation?: Record<string, number>;
  meanMs?: Record<string, number>;
  failures?: number;
}

function pickOperation(r: number): Operation {
  let at = r * TOTAL_WEIGHT;
  for (const [op, weight] of MIX) {
    if (at < weight) return op;
    at -= weight;
  }
  return 'NOOP';
}

async function runOperation(
  client: ImapClient,
  op: Operation,
  state: { exists: number; uids: number[]; next: () => number; appendIndex: () => number },
  pool: Buffer[],
): Promise<void> {
  const { next } = state;
  const uid = state.uids[Math.floor(next() * state.uids.length)] ?? 1;
  switch (op) {
    case 'SELECT':
      state.exists = await client.select('INBOX');
      return;
    case 'FETCH range': {
      const from = 1 + Math.floor(next() * Math.max(1, state.exists - RANGE));
      await client.ok(`FETCH ${from}:${Math.min(state.exists, from + RANGE - 1)} (UID FLAGS ENVELOPE)`);
      return;
    }
    case 'FETCH body':
      await client.ok(`UID FETCH ${uid} (BODY.PEEK[])`);
      return;
    case 'STORE':
      await client.ok(`UID STORE ${uid} ${next() < 0.5 ? '+' : '-'}FLAGS (\\Seen)`);
      return;
    case 'SEARCH':
      await client.ok(`UID SEARCH SUBJECT "${SEARCH_WORDS[Math.floor(next() * SEARCH_WORDS.length)]!}"`);
      return;
    case 'NOOP':
      await client.ok('NOOP');
      return;
    case 'APPEND':
      await client.ok('APPEND INBOX', { literal: uniqueMessage(pool, state.appendIndex()) });
      return;
  }
}

/** Runs `clients` sessions on INBOX for `seconds`; uids are INBOX's at the start. */
export async function mixedWorkload(e: ImapEndpoint, clients: number, seconds: number, uids: number[], pool: Buffer[]): Promise<MixedResult> {
  const byOperation: Record<string, number> = {};
  const totalMs: Record<string, number> = {};
  let failures = 0;
  let firstError: string | undefined;
  let appended = 0;
  const sessions = await Promise.all(Array.from({ length: clients }, () => openSession(e)));
  const startedAt = performance.now();
  const deadline = startedAt + seconds * 1000;
  const run = async (client: ImapClient, n: number): Promise<void> => {
    let seed = (n + 1) * 7919;
    const next = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const state = { exists: await client.select('INBOX'), uids, next, appendIndex: () => 2_000_000 + appended++ };
    client.onUntagged = (line) => {
      const m = /^\* (\d+) EXISTS/i.exec(line);
      if (m) state.exists = Number(m[1]);
    };
    while (performance.now() < deadline && !client.closed) {
      const op = pickOperation(next());
      const opStartedAt = performance.now();
      try {
        await runOperation(client, op, state, pool);
        byOperation[op] = (byOperation[op] ?? 0) + 1;
        totalMs[op] = (totalMs[op] ?? 0) + performance.now() - opStartedAt;
      } catch (error) {
        failures += 1;
        firstError ??= `${op}: ${errorText(error)}`;
      }
    }
  };
  try {
    await Promise.all(sessions.map(run));
  } finally {
    await Promise.all(sessions.map((s) => s.logout()));
  }
  const elapsed = (performance.now() - startedAt) / 1000;
  const count = Object.values(byOperation).reduce((sum, n) => sum + n, 0);
  const meanMs = Object.fromEntries(Object.entries(byOperation).map(([op, n]) => [op, (totalMs[op] ?? 0) / n]));
  const mix = MIX.map(([op]) => `${op} ${byOperation[op] ?? 0}${meanMs[op] === undefined ? '' : ` (${meanMs[op].toFixed(meanMs[op] < 10 ? 1 : 0)} ms)`}`).join(
    ', ',
  );
  return {
    ok: failures === 0,
    count,
    seconds: elapsed,
    perSecond: count / elapsed,
    byOperation,
    meanMs,
    failures,
    note: mix,
    error: firstError ? `${failures} failed; first: ${firstError}` : undefined,
  };
}
