/**
 * What `/metrics` adds to the process's counters (src/metrics.ts): the process's own
 * (memory, CPU, event loop lag), HTTP request latency by route and status, and the
 * outbound queue's depth by state, read from the store when scraped.
 */
import { collectDefaultMetrics, Gauge, Histogram } from 'prom-client';
import { registry } from '../metrics.js';
import type { Store } from '../store/store.js';

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
