/**
 * The outbound queue as an admin action, the same for `tern queue` and the HTTP API: a
 * filter from what a person typed, listing, one entry with its trace, and the bulk actions
 * (retry, hold, release, delete). The queue is the site's: keys limited to a domain cannot
 * touch it.
 */
import { NotFoundError, UserError } from '../errors.js';
import { normalizeAddress, normalizeDomain } from '../mail/address.js';
import { parseDuration, parseInteger } from '../config/parse.js';
import type { QueueEntry, QueueEvent, QueueFilter, QueueState, Store } from '../store/store.js';
import { requireSiteAdmin, type Actor } from './actor.js';

export const QUEUE_STATES: QueueState[] = ['queued', 'held', 'bounce'];
export const QUEUE_ACTIONS = ['retry', 'hold', 'release', 'delete'] as const;
export type QueueAction = (typeof QUEUE_ACTIONS)[number];

export interface QueueFilterInput {
  ids?: Array<string | number>;
  state?: string;
  domain?: string;
  /** An address, or "" (or "<>") for bounces. */
  sender?: string;
  recipient?: string;
  /** A duration: entries queued longer ago than this, e.g. 1h. */
  olderThan?: string;
  all?: boolean;
}

/** The filter from ids and conditions; a bulk `action` needs ids, a condition, or `all`. */
export function queueFilter(o: QueueFilterInput, action: string | null): QueueFilter {
  const f: QueueFilter = {};
  if (o.ids?.length) f.ids = o.ids.map((id) => parseInteger('queue id', String(id), 1));
  if (o.state) {
    if (!QUEUE_STATES.includes(o.state as QueueState)) throw new UserError(`state: one of ${QUEUE_STATES.join(', ')}, got ${JSON.stringify(o.state)}`);
    f.state = o.state as QueueState;
  }
  if (o.domain) f.domain = normalizeDomain(o.domain);
  if (o.sender !== undefined) f.sender = o.sender === '' || o.sender === '<>' ? '' : normalizeAddress(o.sender);
  if (o.recipient) f.recipient = normalizeAddress(o.recipient);
  if (o.olderThan) f.olderThan = new Date(Date.now() - parseDuration('older than', o.olderThan));
  if (action && Object.keys(f).length === 0 && !o.all)
    throw new UserError(`${action}: name queue ids, a filter (state, domain, sender, recipient, older than) or all`);
  return f;
}

export async function listQueue(store: Store, actor: Actor, filter: QueueFilter, page: { after?: number; limit: number }): Promise<QueueEntry[]> {
  requireSiteAdmin(actor, 'the queue is the whole site’s');
  return store.queue.list(filter, page);
}

export async function queueEntry(store: Store, actor: Actor, id: number): Promise<{ entry: QueueEntry; events: QueueEvent[] }> {
  requireSiteAdmin(actor, 'the queue is the whole site’s');
  const entry = await store.queue.get(id);
  if (!entry) throw new NotFoundError(`queue entry ${id} does not exist`);
  return { entry, events: await store.queue.events({ ternId: entry.ternId }) };
}

/** Longest header block shown for a queued message. */
const MAX_HEADER_BYTES = 64 * 1024;

/** The header block of a queued message as it will be sent (the entry's prefix, then the body's header), cut at MAX_HEADER_BYTES. */
export async function queuedHeaders(store: Store, actor: Actor, id: number): Promise<string> {
  requireSiteAdmin(actor, 'the queue is the whole site’s');
  let head = Buffer.alloc(0);
  for await (const chunk of store.queue.read(id)) {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end !== -1) return head.subarray(0, end + 2).toString('utf8');
    if (head.length >= MAX_HEADER_BYTES) break;
  }
  return head.subarray(0, MAX_HEADER_BYTES).toString('utf8');
}

/** Runs a bulk action; returns how many entries it touched. */
export async function queueAction(store: Store, actor: Actor, action: QueueAction, filter: QueueFilter): Promise<number> {
  requireSiteAdmin(actor, 'the queue is the whole site’s');
  return store.queue[action](filter);
}

export const entryJson = (e: QueueEntry) => ({ ...e, nextAttemptAt: e.nextAttemptAt.toISOString(), createdAt: e.createdAt.toISOString() });
export const eventJson = (e: QueueEvent) => ({ ...e, at: e.at.toISOString() });
