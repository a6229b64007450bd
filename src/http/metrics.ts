/**
 * What `/metrics` adds to the process's counters (src/metrics.ts): the process's own
 * (memory, CPU, event loop lag), HTTP request latency by route and status, and the
 * outbound queue's depth by state, read from the store when scraped.
 */
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Gauge, Histogram } from 'prom-client';
import { metrics, registry } from '../metrics.js';
import type { Store } from '../store/store.js';
import type { ApiKeyAuth } from './auth.js';
import { ERROR_SCHEMA } from './errors.js';

const STARTED_AT = new Date();

let created: ReturnType<typeof create> | null = null;

/** The HTTP side of the metrics; made once per process (its metrics join the one registry). */
export function createMetrics(store: Store): ReturnType<typeof create> {
  created ??= create(store);
  return created;
}

function create(store: Store) {
  collectDefaultMetrics({ register: registry, prefix: 'tern_' });
  const requests = new Histogram({
    name: 'tern_http_request_duration_seconds',
    help: 'HTTP API requests by route, method and status',
    labelNames: ['route', 'method', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [registry],
  });
  new Gauge({
    name: 'tern_queue_entries',
    help: 'Outbound queue entries (one per message and destination domain) by state',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      for (const state of ['queued', 'held', 'bounce'] as const) this.set({ state }, await store.queue.count({ state }));
    },
  });
  return {
    contentType: registry.contentType,
    render: () => registry.metrics(),
    observeRequest(route: string, method: string, status: number, seconds: number) {
      requests.observe({ route, method, status: String(status) }, seconds);
    },
  };
}

/** Sum of a metric's values, by one label (all of them under "" when `label` is omitted). */
async function byLabel(metric: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, string | number | undefined> }> }> }, label?: string) {
  const out: Record<string, number> = {};
  for (const v of (await metric.get()).values) {
    const key = label ? String(v.labels[label] ?? '') : '';
    out[key] = (out[key] ?? 0) + v.value;
  }
  return out;
}

/** How long the store's size is reused: summing every account is not free, and it changes slowly. */
const STORE_STATS_MS = 30_000;

/**
 * `GET /api/v1/stats`: the dashboard's numbers as JSON, from the counters `/metrics` renders
 * (this process's, since it started) and the queue and store as they are now.
 */
export function registerStatsRoute(app: FastifyInstance, deps: { store: Store; auth: ApiKeyAuth }): void {
  let storeStats: { until: number; value: Promise<{ messages: number; bytes: number }> } | null = null;
  const storeSize = () => {
    const now = Date.now();
    if (storeStats && storeStats.until > now) return storeStats.value;
    const value = deps.store.stats().then((s) => ({ messages: s.messages, bytes: s.accounts.reduce((n, a) => n + a.usedBytes, 0) }));
    value.catch(() => (storeStats = null));
    storeStats = { until: now + STORE_STATS_MS, value };
    return value;
  };
  const count = { type: 'integer' } as const;
  const counts = { type: 'object', additionalProperties: count } as const;
  app.get(
    '/api/v1/stats',
    {
      onRequest: deps.auth.require('admin'),
      schema: {
        tags: ['health'],
        security: [{ bearer: [] }],
        summary: 'Counters of this process since it started (as /metrics), queue depth and store size now',
        response: {
          200: {
            type: 'object',
            properties: {
              at: { type: 'string' },
              startedAt: { type: 'string' },
              received: count,
              delivered: count,
              deferred: count,
              failed: count,
              bounced: count,
              queue: counts,
              connections: counts,
              store: { type: 'object', properties: { messages: count, bytes: count } },
            },
          },
          '4xx': ERROR_SCHEMA,
        },
      },
    },
    async () => {
      const [received, deliveries, notices, connections, queue, store] = await Promise.all([
        byLabel(metrics.received),
        byLabel(metrics.deliveries, 'result'),
        byLabel(metrics.notices, 'action'),
        byLabel(metrics.connections, 'listener'),
        Promise.all((['queued', 'held', 'bounce'] as const).map(async (state) => [state, await deps.store.queue.count({ state })] as const)),
        storeSize(),
      ]);
      return {
        at: new Date().toISOString(),
        startedAt: STARTED_AT.toISOString(),
        received: received[''] ?? 0,
        delivered: deliveries.delivered ?? 0,
        deferred: deliveries.deferred ?? 0,
        failed: deliveries.failed ?? 0,
        bounced: notices.failed ?? 0,
        queue: Object.fromEntries(queue),
        connections,
        store,
      };
    },
  );
}
