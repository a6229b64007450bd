/**
 * Warm-up of a new sending domain: large receivers judge a sender by its history, and a
 * domain that starts by sending thousands of messages a day gets throttled or
 * blocklisted. Setting `warmup:<domain>` = "YYYY-MM-DD N1,N2,…" limits the domain's
 * outbound mail (deliveries: one per message and destination domain, bounces not
 * counted) to N1 on that day (UTC), N2 the next, and so on; after the last day there is
 * no limit. What is over the day's limit waits in the queue for the next day, with no
 * attempt counted. Each day's count is kept in the store (`warmup-sent:<domain>:<day>`),
 * added to atomically, so a restart or several nodes never send more than the day allows.
 */
import { UserError } from '../errors.js';

export const WARMUP_PREFIX = 'warmup:';
export const WARMUP_SENT_PREFIX = 'warmup-sent:';
/** Doubling from 50 a day: twelve days to about 100,000. */
export const DEFAULT_WARMUP_SCHEDULE = [50, 100, 200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 51_200, 102_400];
const DAY_MS = 86_400_000;

export interface Warmup {
  /** Midnight UTC of the first day. */
  start: Date;
  /** Messages allowed on each day, from the first. */
  schedule: number[];
}

export function parseWarmup(value: string): Warmup {
  const m = /^(\d{4}-\d{2}-\d{2})\s+(\d+(?:,\d+)*)$/.exec(value.trim());
  const start = m ? new Date(`${m[1]}T00:00:00Z`) : null;
  if (!m || !start || Number.isNaN(start.getTime())) throw new UserError(`warm-up: expected "YYYY-MM-DD N1,N2,…", got ${JSON.stringify(value)}`);
  const schedule = m[2]!.split(',').map(Number);
  if (schedule.some((n) => !Number.isSafeInteger(n) || n < 1)) throw new UserError('warm-up: every day allows at least 1 message');
  return { start, schedule };
}

export function formatWarmup(w: Warmup): string {
  return `${w.start.toISOString().slice(0, 10)} ${w.schedule.join(',')}`;
}

/** Where the warm-up stands at `now`: its day (from 0), that day's limit (null: before the start or after the end, no limit) and when the day ends. */
export function warmupDay(w: Warmup, now: number): { day: number; key: string; limit: number | null; endsAt: Date } {
  const day = Math.floor((now - w.start.getTime()) / DAY_MS);
  const endsAt = new Date(w.start.getTime() + (day + 1) * DAY_MS);
  const key = new Date(w.start.getTime() + day * DAY_MS).toISOString().slice(0, 10);
  return { day, key, limit: day >= 0 && day < w.schedule.length ? w.schedule[day]! : null, endsAt };
}

export const warmupCounterKey = (domain: string, dayKey: string): string => `${WARMUP_SENT_PREFIX}${domain}:${dayKey}`;
