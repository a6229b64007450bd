// Large messages: many concurrent multi-megabyte messages (peak RSS of the server while
// they arrive), and how long a one-line message waits for its 250 while they do.
import { sendMessage, type SendResult, type SendSpec } from './smtp-client.js';
import { sleep } from './util.js';

export interface Spread {
  min: number;
  median: number;
  max: number;
}

export interface ConcurrentResult {
  connections: number;
  size: number;
  seconds: number;
  /** Replies to the end of DATA by code ("250": 198, "452": 2); "error" for broken connections. */
  replies: Record<string, number>;
  accepted: number;
  /** Accepted body megabytes (10^6 bytes) per second. */
  mbPerSecond: number;
  /** Replies to the end of DATA, in ms after the last byte was sent (accepted messages only). */
  replyMs: Spread | null;
  firstError?: string;
}

export interface ProbeResult {
  /** Probes started while the large messages were still arriving. */
  duringLoad: number;
  codes: Record<string, number>;
  /** Last byte of the one-line message to its 250. */
  replyMs: Spread | null;
  /** Connect to greeting. */
  greetingMs: Spread | null;
  /** Connect to the 250 at the end of DATA: what the sender waited in all. */
  totalMs: Spread | null;
  background: ConcurrentResult;
}

export function spread(values: number[]): Spread | null {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { min: sorted[0]!, median, max: sorted[sorted.length - 1]! };
}

function tally(results: SendResult[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of results) {
    const key = r.code ? String(r.code) : 'error';
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** Opens `connections` connections at once, each sending one message of spec.size bytes. */
export async function sendConcurrently(spec: SendSpec, connections: number): Promise<ConcurrentResult> {
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: connections }, () => sendMessage(spec)));
  const seconds = (performance.now() - started) / 1000;
  const accepted = results.filter((r) => r.code === 250);
  const firstError = results.find((r) => r.code !== 250);
  return {
    connections,
    size: spec.size,
    seconds,
    replies: tally(results),
    accepted: accepted.length,
    mbPerSecond: accepted.reduce((sum, r) => sum + r.bodyBytes, 0) / 1e6 / seconds,
    replyMs: spread(accepted.map((r) => r.replyMs)),
    firstError: firstError ? (firstError.error ?? firstError.reply) : undefined,
  };
}

export interface ProbeOptions {
  /** Probes to send at most (fewer if the large messages are all in first). */
  probes: number;
  /** Wait before the first probe, so the large messages are under way. */
  delayMs: number;
  /** Pause between probes. */
  intervalMs: number;
}

/**
 * Sends `connections` large messages and, while they arrive, a one-line probe message every
 * intervalMs (each on its own connection, not waiting for the previous one).
 */
export async function probeUnderLoad(spec: SendSpec, connections: number, o: ProbeOptions): Promise<ProbeResult> {
  let loading = true;
  const background = sendConcurrently(spec, connections).finally(() => {
    loading = false;
  });
  await sleep(o.delayMs);
  const sent: Array<Promise<SendResult>> = [];
  while (loading && sent.length < o.probes) {
    sent.push(sendMessage({ ...spec, size: 1 }));
    await sleep(o.intervalMs);
  }
  const probes = await Promise.all(sent);
  const accepted = probes.filter((p) => p.code === 250);
  return {
    duringLoad: probes.length,
    codes: tally(probes),
    replyMs: spread(accepted.map((p) => p.replyMs)),
    greetingMs: spread(probes.map((p) => p.greetingMs)),
    totalMs: spread(accepted.map((p) => p.totalMs)),
    background: await background,
  };
}
