/**
 * Live server state: GET /api/v1/stats every 2 s while the tab is visible. The counters are totals since the
 * server started, so the charts show per-minute rates computed from the samples of the last minute. Samples are
 * kept (up to 60 minutes) while the portal is open, also when another page is shown.
 */
import type uPlot from 'uplot';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api } from '../api';
import { LineChart } from '../charts';
import { clock, formatBytes, Page, useNotice } from '../components';

interface Stats {
  at?: string | number;
  startedAt?: string;
  received: number;
  delivered: number;
  deferred: number;
  bounced: number;
  failed: number;
  queue: { queued: number; held: number; bounce: number };
  connections: Record<string, number>;
  store: { messages: number; bytes: number };
}
interface Sample {
  /** Unix seconds. */
  t: number;
  stats: Stats;
}

const POLL_MS = 2000;
const KEEP_SECONDS = 60 * 60;
const COUNTERS = ['received', 'delivered', 'deferred', 'bounced'] as const;

const history: Sample[] = [];

export function forgetStats(): void {
  history.length = 0;
}

function record(stats: Stats): void {
  const at = stats.at === undefined ? NaN : new Date(stats.at).getTime();
  const t = (Number.isNaN(at) ? Date.now() : at) / 1000;
  const last = history.at(-1);
  // Another server process (restarted, or another http instance): rates across the two would be nonsense.
  if (last && (stats.startedAt !== last.stats.startedAt || COUNTERS.some((c) => stats[c] < last.stats[c]))) history.length = 0;
  else if (last && t <= last.t) return;
  history.push({ t, stats });
  while (history.length && history[0]!.t < t - KEEP_SECONDS) history.shift();
}

/** Per-minute rate of a counter at each sample, over the samples of the minute before it (null where there are none). */
function rates(get: (s: Stats) => number): Array<number | null> {
  let j = 0;
  return history.map((sample, i) => {
    while (history[j]!.t < sample.t - 60) j++;
    if (j === i) return null;
    const from = history[j]!;
    return ((get(sample.stats) - get(from.stats)) / (sample.t - from.t)) * 60;
  });
}

const number = (v: number) => Math.round(v).toLocaleString();
const perMinute = (v: number) => (v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString());
const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);

export function Dashboard() {
  const notices = useNotice();
  const [updated, setUpdated] = useState<Date | null>(null);
  // Charts are made again when the theme changes: they draw with the theme's colours.
  const [theme, setTheme] = useState(0);
  const failing = useRef(false);

  useEffect(() => {
    let timer: number | undefined;
    let inflight = false;
    let stopped = false;
    const schedule = (ms: number) => {
      window.clearTimeout(timer);
      timer = window.setTimeout(poll, ms);
    };
    const poll = () => {
      if (stopped || inflight || document.hidden) return;
      inflight = true;
      api
        .poll<Stats>('/stats')
        .then(
          (stats) => {
            if (stopped) return;
            record(stats);
            setUpdated(new Date());
            if (failing.current) notices.clear();
            failing.current = false;
          },
          (err: unknown) => {
            if (stopped) return;
            failing.current = true;
            notices.fail(err);
          },
        )
        .finally(() => {
          inflight = false;
          if (!stopped && !document.hidden) schedule(POLL_MS);
        });
    };
    // A hidden tab does not poll; it catches up at once when shown again.
    const visibility = () => (document.hidden ? window.clearTimeout(timer) : schedule(0));
    const themed = () => setTheme((n) => n + 1);
    const scheme = matchMedia('(prefers-color-scheme: dark)');
    document.addEventListener('visibilitychange', visibility);
    addEventListener('tern-theme', themed);
    scheme.addEventListener('change', themed);
    poll();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
      document.removeEventListener('visibilitychange', visibility);
      removeEventListener('tern-theme', themed);
      scheme.removeEventListener('change', themed);
    };
  }, []);

  const charts = useMemo(() => {
    const x = history.map((s) => s.t);
    const listeners = [...new Set(history.flatMap((s) => Object.keys(s.stats.connections)))].sort();
    return {
      messages: [x, ...COUNTERS.map((c) => rates((s) => s[c]))] as uPlot.AlignedData,
      queue: [x, ...(['queued', 'held', 'bounce'] as const).map((k) => history.map((s) => s.stats.queue[k]))] as uPlot.AlignedData,
      listeners,
      connections: [x, ...listeners.map((l) => history.map((s) => s.stats.connections[l] ?? 0))] as uPlot.AlignedData,
      store: [x, history.map((s) => s.stats.store.bytes)] as uPlot.AlignedData,
    };
  }, [updated]);

  const now = history.at(-1)?.stats;
  const rate = (c: (typeof COUNTERS)[number]) => {
    const r = rates((s) => s[c]).at(-1);
    return r === null || r === undefined ? '—/min' : `${perMinute(r)}/min`;
  };
  const tiles: Array<[string, string, string]> = now
    ? [
        ['Received', number(now.received), rate('received')],
        ['Delivered', number(now.delivered), rate('delivered')],
        ['Deferred', number(now.deferred), rate('deferred')],
        ['Bounced', number(now.bounced), `${rate('bounced')} · ${number(now.failed)} failed`],
        ['Queue', number(now.queue.queued), `${number(now.queue.held)} held · ${number(now.queue.bounce)} bounces`],
        [
          'Connections',
          number(sum(now.connections)),
          Object.entries(now.connections)
            .map(([k, v]) => `${k} ${v}`)
            .join(' · ') || 'none open',
        ],
        ['Store', formatBytes(now.store.bytes), `${number(now.store.messages)} messages`],
      ]
    : [];

  return (
    <Page title="Dashboard" notices={notices}>
      {/* Empty until the first answer: tests and the bench wait for it to fill. */}
      <p class="muted updated" data-testid="updated">
        {updated ? `Updated ${clock(updated)}` : ''}
      </p>
      <dl class="tiles">
        {tiles.map(([name, value, sub]) => (
          <div class="tile" key={name}>
            <dt>{name}</dt>
            <dd class="value">{value}</dd>
            <dd class="sub">{sub}</dd>
          </div>
        ))}
      </dl>
      <p class="muted">Counters since the server started; charts show the last {Math.round(KEEP_SECONDS / 60)} minutes this page has seen.</p>
      <div class="charts">
        <Chart title="Messages per minute" labels={COUNTERS.map(String)} data={charts.messages} format={perMinute} theme={theme} />
        <Chart title="Queue depth" labels={['queued', 'held', 'bounces']} data={charts.queue} format={number} theme={theme} whole />
        <Chart title="Open connections" labels={charts.listeners} data={charts.connections} format={number} theme={theme} whole />
        <Chart title="Store size" labels={['bytes']} data={charts.store} format={formatBytes} theme={theme} whole />
      </div>
    </Page>
  );
}

function Chart(props: { title: string; labels: string[]; data: uPlot.AlignedData; format: (v: number) => string; theme: number; whole?: boolean }) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<LineChart | null>(null);
  useEffect(() => {
    const c = new LineChart(box.current!, props.labels, props.format, props.whole);
    chart.current = c;
    c.setData(props.data);
    return () => c.destroy();
  }, [props.labels.join('\n'), props.theme]);
  useEffect(() => chart.current?.setData(props.data), [props.data]);
  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      <div ref={box} />
    </figure>
  );
}
