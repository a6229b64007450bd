// The timed IMAP steps, run in turn against one server through bench/imap-client.ts:
// APPEND to INBOX one at a time, SELECT, FETCH envelopes, FETCH bodies, SEARCH, STORE,
// then a second mailbox filled to BENCH_IMAP_BIG messages and its SELECT. Each step
// records a rate or the command that failed and the server's answer; later steps still run.
import { ImapClient } from './imap-client.js';
import { benchMessage, SEARCH_TERMS } from './imap-messages.js';
import type { ImapBenchConfig } from './config.js';
import { errorText } from './context.js';

/** What a step measured on one server. */
export interface ImapMeasure {
  ok: boolean;
  /** Operations (or messages, per the step's unit) per second. */
  perSecond?: number;
  /** Operations or messages timed. */
  count?: number;
  seconds?: number;
  /** Facts to compare between servers: hits of a search, EXISTS after a fill. */
  note?: string;
  error?: string;
}

/** A running IMAP server with one account. */
export interface ImapEndpoint {
  port: number;
  user: string;
  password: string;
  timeoutMs: number;
}

export type StepRecorder = (id: string, measure: ImapMeasure) => void;

export const BIG_MAILBOX = 'Big';
const FETCH_REPEATS = 3;
const STORE_REPEATS = 3;
const BIG_SELECTS = 20;

export async function openSession(e: ImapEndpoint, localAddress?: string): Promise<ImapClient> {
  const client = await ImapClient.connect({ port: e.port, timeoutMs: e.timeoutMs, localAddress });
  try {
    await client.login(e.user, e.password);
  } catch (error) {
    client.destroy();
    throw error;
  }
  return client;
}

const seconds = (startedAt: number): number => (performance.now() - startedAt) / 1000;

/** Times fn, which returns how many operations it did; failures become the measure's error. */
async function timed(record: StepRecorder, id: string, fn: () => Promise<{ count: number; note?: string }>): Promise<boolean> {
  const startedAt = performance.now();
  try {
    const { count, note } = await fn();
    const s = seconds(startedAt);
    record(id, { ok: true, count, seconds: s, perSecond: count / s, note });
    return true;
  } catch (error) {
    record(id, { ok: false, error: errorText(error), seconds: seconds(startedAt) });
    return false;
  }
}

/** The message appended as number `index`: the pool's bytes behind a header that makes it unique (no store can share copies). */
export function uniqueMessage(pool: Buffer[], index: number): Buffer {
  return Buffer.concat([Buffer.from(`X-Bench-Seq: ${index}\r\n`), pool[index % pool.length]!]);
}

/** UIDs of a mailbox (SELECTs it). */
export async function allUids(client: ImapClient, mailbox: string): Promise<number[]> {
  await client.select(mailbox);
  const reply = await client.ok('UID SEARCH ALL', { keep: true });
  const line = reply.lines.find((l) => /^\* SEARCH\b/i.test(l)) ?? '';
  return line.slice(8).trim().split(/\s+/).filter(Boolean).map(Number);
}

function searchHits(lines: string[]): number {
  const line = lines.find((l) => /^\* SEARCH\b/i.test(l)) ?? '* SEARCH';
  return line.slice(8).trim().split(/\s+/).filter(Boolean).length;
}

/** Random picks from items (the same sequence for every server: a fixed seed). */
export function seededPicks<T>(items: T[], count: number, seed: number): T[] {
  let state = seed >>> 0 || 1;
  const picks: T[] = [];
  for (let i = 0; i < count && items.length > 0; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    picks.push(items[(state >>> 0) % items.length]!);
  }
  return picks;
}

/** Untimed: a fifth of the load (at most `warmup` messages) in its own mailbox, and each kind of command once. */
export async function warmUpImap(e: ImapEndpoint, pool: Buffer[], warmup: number): Promise<void> {
  const messages = Math.min(warmup, Math.floor(pool.length / 5));
  if (messages === 0) return;
  const client = await openSession(e);
  try {
    await client.ok('CREATE Warmup');
    for (let i = 0; i < messages; i++) await client.ok('APPEND Warmup', { literal: uniqueMessage(pool, 5_000_000 + i) });
    for (let i = 0; i < 5; i++) await client.select('Warmup');
    await client.ok('FETCH 1:* (UID FLAGS ENVELOPE)');
    for (const uid of seededPicks(await allUids(client, 'Warmup'), 100, 7)) await client.ok(`UID FETCH ${uid} (BODY.PEEK[])`);
    await client.ok(`UID SEARCH SUBJECT "${SEARCH_TERMS.subject}"`);
    await client.ok(`UID SEARCH BODY "${SEARCH_TERMS.body}"`);
    await client.ok('STORE 1:* +FLAGS (\\Flagged)');
    await client.ok('STORE 1:* -FLAGS (\\Flagged)');
  } finally {
    await client.logout();
  }
}

/** Steps 1 to 6 on INBOX, from one connection. */
export async function inboxSteps(e: ImapEndpoint, cfg: ImapBenchConfig, pool: Buffer[], record: StepRecorder): Promise<void> {
  const client = await openSession(e);
  try {
    await timed(record, 'append', async () => {
      for (let i = 0; i < cfg.messages; i++) await client.ok('APPEND INBOX', { literal: pool[i]! });
      return { count: cfg.messages };
    });
    let exists = 0;
    await timed(record, 'select', async () => {
      for (let i = 0; i < cfg.selects; i++) exists = await client.select('INBOX');
      return { count: cfg.selects, note: `EXISTS ${exists}` };
    });
    await timed(record, 'fetch-envelope', async () => {
      let responses = 0;
      for (let i = 0; i < FETCH_REPEATS; i++) responses += (await client.ok('FETCH 1:* (UID FLAGS ENVELOPE)')).untagged;
      return { count: responses, note: `${responses / FETCH_REPEATS} FETCH responses per command` };
    });
    const uids = await allUids(client, 'INBOX');
    const picks = seededPicks(uids, cfg.bodies, 42);
    await timed(record, 'fetch-body', async () => {
      let bytes = 0;
      for (const uid of picks) bytes += (await client.ok(`UID FETCH ${uid} (BODY.PEEK[])`)).literalBytes;
      return { count: picks.length, note: `${(bytes / 1e6).toFixed(1)} MB of literals` };
    });
    const searches: Array<[string, string]> = [
      ['search-subject', `UID SEARCH SUBJECT "${SEARCH_TERMS.subject}"`],
      ['search-from', `UID SEARCH FROM "${SEARCH_TERMS.from}"`],
      ['search-body', `UID SEARCH BODY "${SEARCH_TERMS.body}"`],
    ];
    for (const [id, command] of searches) {
      await timed(record, id, async () => {
        let hits = 0;
        for (let i = 0; i < cfg.searches; i++) hits = searchHits((await client.ok(command, { keep: true })).lines);
        return { count: cfg.searches, note: `${hits} hits` };
      });
    }
    // Only +FLAGS is timed; the -FLAGS that undoes it between runs is not.
    let stored = 0;
    let storeSeconds = 0;
    try {
      for (let i = 0; i < STORE_REPEATS; i++) {
        const startedAt = performance.now();
        stored += (await client.ok('STORE 1:* +FLAGS (\\Flagged)')).untagged;
        storeSeconds += seconds(startedAt);
        await client.ok('STORE 1:* -FLAGS (\\Flagged)');
      }
      await client.ok('STORE 1:* +FLAGS (\\Flagged)');
      const count = exists * STORE_REPEATS;
      record('store', {
        ok: true,
        count,
        seconds: storeSeconds,
        perSecond: count / storeSeconds,
        note: `${stored / STORE_REPEATS} FETCH responses per command`,
      });
    } catch (error) {
      record('store', { ok: false, error: errorText(error) });
    }
  } finally {
    await client.logout();
  }
}

/**
 * How a server's big mailbox gets the messages past the timed APPENDs: by more APPENDs
 * (Tern), or written straight into its Maildir (Dovecot: APPEND into a Maildir folder
 * rescans it each time, so 100,000 of them take hours).
 */
export type BulkWriter = (folder: string, count: number, message: (i: number) => Buffer) => Promise<void>;

/** APPENDs messages [from, to) to mailbox over `connections` connections until done or the deadline; returns how many went in. */
async function appendRange(
  e: ImapEndpoint,
  mailbox: string,
  from: number,
  to: number,
  connections: number,
  deadline: number,
  message: (i: number) => Buffer,
  progress: { done: number },
): Promise<number> {
  let next = from;
  let done = 0;
  const worker = async (): Promise<void> => {
    const client = await openSession(e);
    try {
      while (Date.now() < deadline) {
        const index = next++;
        if (index >= to) break;
        await client.ok(`APPEND ${mailbox}`, { literal: message(index) });
        done += 1;
        progress.done += 1;
      }
    } finally {
      await client.logout();
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  return done;
}

/**
 * Step 7: the big mailbox. Its first BENCH_IMAP_FILL_TIMED messages are APPENDed over
 * several connections and timed (the same on every server); the rest go in by `bulk` when
 * given (then an untimed SELECT lets the server index them), else by more APPENDs. Then
 * SELECT of it is timed on a new connection, first and repeated.
 */
export async function bigMailboxSteps(
  e: ImapEndpoint,
  cfg: ImapBenchConfig,
  pool: Buffer[],
  record: StepRecorder,
  log: (line: string) => void,
  bulk?: BulkWriter,
): Promise<void> {
  const admin = await openSession(e);
  await admin.ok(`CREATE ${BIG_MAILBOX}`).finally(() => admin.logout());
  const message = (i: number): Buffer => uniqueMessage(pool, 1_000_000 + i);
  const deadline = Date.now() + cfg.fillSeconds * 1000;
  const progress = { done: 0 };
  const timer = setInterval(() => log(`  fill: ${progress.done} of ${cfg.big}`), 30_000);
  const timedCount = Math.min(cfg.big, cfg.fillTimed);
  try {
    const startedAt = performance.now();
    const appended = await appendRange(e, BIG_MAILBOX, 0, timedCount, cfg.fillConnections, deadline, message, progress);
    const fill: ImapMeasure = { ok: true, count: appended, seconds: seconds(startedAt), perSecond: appended / seconds(startedAt) };
    const restAt = performance.now();
    if (appended < timedCount) {
      fill.note = `stopped after ${cfg.fillSeconds} s: ${appended} of ${timedCount}`;
    } else if (bulk) {
      await bulk(BIG_MAILBOX, cfg.big - timedCount, (i) => message(timedCount + i));
      const written = seconds(restAt);
      const indexer = await openSession(e);
      const indexedAt = performance.now();
      await indexer.select(BIG_MAILBOX).finally(() => indexer.logout());
      fill.note = `then ${cfg.big - timedCount} written into the Maildir in ${written.toFixed(0)} s, indexed by an untimed SELECT in ${seconds(indexedAt).toFixed(2)} s`;
    } else if (cfg.big > timedCount) {
      const more = await appendRange(e, BIG_MAILBOX, timedCount, cfg.big, cfg.fillConnections, deadline, message, progress);
      fill.note = `then ${more} more APPENDed in ${seconds(restAt).toFixed(0)} s${more < cfg.big - timedCount ? ` (stopped after ${cfg.fillSeconds} s)` : ''}`;
    }
    record('big-fill', fill);
  } catch (error) {
    record('big-fill', { ok: false, error: errorText(error) });
    return;
  } finally {
    clearInterval(timer);
  }

  const client = await openSession(e);
  try {
    let exists = 0;
    await timed(record, 'big-select-first', async () => {
      exists = await client.select(BIG_MAILBOX);
      return { count: 1, note: `EXISTS ${exists}${exists < cfg.big ? ` of ${cfg.big}` : ''}` };
    });
    await timed(record, 'big-select', async () => {
      for (let i = 0; i < BIG_SELECTS; i++) await client.select(BIG_MAILBOX);
      return { count: BIG_SELECTS, note: `EXISTS ${exists}` };
    });
  } finally {
    await client.logout();
  }
}

/** Messages 0..count-1 of the given size, generated before any timing. */
export function messagePool(count: number, size: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => benchMessage(i, size));
}
