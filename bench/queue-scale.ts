// Queue control at scale (part of the sending phase): a fresh SQLite store is filled with
// BENCH_QUEUE_SCALE (1,000,000) queued messages through the store's own delivery path
// (thousands in flight, so group commit packs them), spread over 10 destination domains
// and 100 senders, one recipient each. Then, in process, as `tern queue` and the HTTP API
// call them: the first page (100) of lists filtered by domain, sender, recipient, state
// and age, each the median of 5; and a bulk retry of one domain's 100,000 entries.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { openStore } from '../src/store/open.js';
import type { NewDelivery, QueueFilter, Store } from '../src/store/store.js';
import { errorText, type BenchContext } from './context.js';

export interface QueueScaleResult {
  ok: boolean;
  error?: string;
  entries: number;
  fillSeconds?: number;
  /** Filter → milliseconds for the first page (median of 5). */
  firstPageMs: Record<string, number>;
  retry?: { entries: number; seconds: number };
}

const DOMAINS = 10;
const SENDERS = 100;
const IN_FLIGHT = 4096;

const body = Buffer.from(`From: <s0@bench.test>\r\nSubject: queued at scale\r\n\r\n${'z'.repeat(70)}\r\n`.repeat(1));
const blob = { hash: createHash('sha256').update(body).digest('hex'), size: body.length, data: body };
const prefix = Buffer.from('Received: by bench (Tern) id SCALE\r\n');

function queued(n: number): NewDelivery {
  return {
    ternId: `SCALE${n.toString(36).toUpperCase()}`,
    blob,
    envelopeFrom: `s${n % SENDERS}@bench.test`,
    recipients: [],
    internalDate: new Date(),
    atomic: true,
    outbound: { prefix, domains: [{ domain: `d${n % DOMAINS}.example`, recipients: [{ address: `r${n}@d${n % DOMAINS}.example` }] }] },
  };
}

async function fill(store: Store, entries: number, log: (line: string) => void): Promise<void> {
  let next = 0;
  let lastReport = performance.now();
  const worker = async (): Promise<void> => {
    while (next < entries) {
      await store.mailboxes.deliver(queued(next++));
      if (performance.now() - lastReport > 15_000) {
        lastReport = performance.now();
        log(`queue at scale: ${next} of ${entries} queued`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, entries) }, worker));
}

async function median(times: number, fn: () => Promise<unknown>): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < times; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return ms.sort((a, b) => a - b)[Math.floor(ms.length / 2)]!;
}

export async function queueScaleStep(ctx: BenchContext, entries: number): Promise<QueueScaleResult> {
  const result: QueueScaleResult = { ok: false, entries, firstPageMs: {} };
  let store: Store | null = null;
  try {
    store = await openStore({ dataDir: join(ctx.root, 'tern_queue_scale') });
    const started = performance.now();
    await fill(store, entries, ctx.log);
    result.fillSeconds = (performance.now() - started) / 1000;
    const last = entries - 1;
    const filters: Record<string, QueueFilter> = {
      domain: { domain: 'd3.example' },
      sender: { sender: 's7@bench.test' },
      recipient: { recipient: `r${last}@d${last % DOMAINS}.example` },
      'state + domain': { state: 'queued', domain: 'd5.example' },
      'older than 1 s': { olderThan: new Date(Date.now() - 1000) },
    };
    for (const [name, filter] of Object.entries(filters)) {
      const page = await store.queue.list(filter, { limit: 100 });
      if (page.length === 0) throw new Error(`the ${name} filter found nothing`);
      result.firstPageMs[name] = await median(5, () => store!.queue.list(filter, { limit: 100 }));
    }
    const t = performance.now();
    const retried = await store.queue.retry({ domain: 'd2.example' });
    result.retry = { entries: retried, seconds: (performance.now() - t) / 1000 };
    result.ok = true;
  } catch (error) {
    result.error = errorText(error);
  } finally {
    await store?.close();
  }
  return result;
}

export function formatQueueScale(r: QueueScaleResult): string[] {
  const lines = [`Queue control with ${r.entries} entries queued (SQLite; filled in ${r.fillSeconds?.toFixed(0) ?? '-'} s):`];
  for (const [name, ms] of Object.entries(r.firstPageMs)) lines.push(`  first page (100) filtered by ${name.padEnd(16)} ${ms.toFixed(1).padStart(8)} ms`);
  if (r.retry) lines.push(`  bulk retry of one domain's ${r.retry.entries} entries   ${r.retry.seconds.toFixed(2).padStart(8)} s`);
  if (r.error) lines.push(`  error: ${r.error}`);
  return lines;
}
