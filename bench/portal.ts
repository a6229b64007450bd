// The admin portal phase: the portal's first load in Chromium (Debian's, headless, driven
// by playwright-core over CDP) against `tern serve` on loopback, then its dashboard kept
// open while mail flows in.
//  1. Login page, cold (new browser context, empty cache): requests, bytes as sent
//     (compressed bodies, and with headers), and performance.now() when "Sign in" shows.
//  2. Signing in: the requests it makes and the time from the click to the dashboard's
//     first data ([data-testid="updated"] filled).
//  3. Dashboard, cold (cache cleared and off, signed in): requests, bytes, and
//     performance.now() at its first data: HTML + JS + CSS + the first API answers.
//  4. Live: smtp-source sends BENCH_PORTAL_RATE (1,000) messages a second (one batch a
//     second, the next as soon as one ends when Tern is slower) to a local mailbox for
//     BENCH_PORTAL_SECONDS (20); meanwhile the open dashboard's polls of /api/v1/stats and
//     its "Updated" text changes are recorded: the report gives the polls, the updates,
//     the largest gap between updates, the rate reached, Tern's peak RSS and the page's
//     JS heap before and after.
// Figures only, nothing asserted (the budget in the portal's contract, 200 KB compressed
// and interactive within 1 s, is printed beside them).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type CDPSession, type Page } from 'playwright-core';
import { ADDRESS, DOMAIN, errorText, newTern, SENDER, type BenchContext } from './context.js';
import { readMemory, RssSampler } from './rss.js';
import { SMTP_SOURCE, smtpSourceArgs } from './smtp-source.js';
import { mustRun, runCommand, sleep } from './util.js';

export const CHROMIUM = '/usr/bin/chromium';
const ADMIN = `admin@${DOMAIN}`;
const ADMIN_PASSWORD = 'bench-portal-admin';
/** The contract's first-load budget. */
const BUDGET_BYTES = 200 * 1024;
const BUDGET_MS = 1000;

/** One step's network figures. */
export interface PortalLoad {
  requests: number;
  /** Response bodies as sent (compressed where the server compressed them). */
  bodyBytes: number;
  /** Bodies plus response headers: what came over the wire. */
  transferBytes: number;
  /** Bodies uncompressed. */
  decodedBytes: number;
  /** performance.now() in the page when the step's goal showed (steps 1 and 3), or the time from the click (step 2). */
  readyMs: number;
  /** Per request: path, status, content-encoding, body bytes as sent. */
  detail: Array<{ path: string; status: number; encoding: string; bytes: number }>;
}

export interface PortalLive {
  seconds: number;
  targetRate: number;
  messageSize: number;
  sent: number;
  messagesPerSecond: number;
  smtpSourceRuns: number;
  failedRuns: number;
  firstError?: string;
  /** GETs of /api/v1/stats the dashboard made during the run. */
  polls: number;
  /** Changes of the "Updated" text during the run. */
  updates: number;
  maxGapMs: number;
  medianGapMs: number;
  /** Messages Tern counted as received over the run, from /api/v1/stats. */
  receivedByStats: number | null;
  peakRssMiB: number | null;
  idleRssMiB: number | null;
  heapBeforeMiB: number | null;
  heapAfterMiB: number | null;
}

export interface PortalResult {
  ok: boolean;
  error?: string;
  /** Chromium's version. */
  browser?: string;
  /** The Accept-Encoding Chromium sent. */
  acceptEncoding?: string;
  login?: PortalLoad;
  signIn?: PortalLoad;
  dashboard?: PortalLoad;
  live?: PortalLive;
}

interface Seen {
  path: string;
  status: number;
  encoding: string;
  headerBytes: number;
  total: number;
  decoded: number;
  finished: boolean;
}

/** Records every request of a page through CDP: what was sent and how many bytes came back. */
class NetworkLog {
  private readonly seen = new Map<string, Seen>();
  acceptEncoding = '';
  private order: string[] = [];

  constructor(cdp: CDPSession) {
    cdp.on('Network.requestWillBeSent', (e) => {
      if (!/^https?:/.test(e.request.url)) return;
      const path = new URL(e.request.url).pathname;
      this.seen.set(e.requestId, { path, status: 0, encoding: '', headerBytes: 0, total: 0, decoded: 0, finished: false });
      this.order.push(e.requestId);
    });
    cdp.on('Network.requestWillBeSentExtraInfo', (e) => {
      const header = Object.entries(e.headers).find(([k]) => k.toLowerCase() === 'accept-encoding');
      if (header) this.acceptEncoding = String(header[1]);
    });
    cdp.on('Network.responseReceived', (e) => {
      const s = this.seen.get(e.requestId);
      if (!s) return;
      s.status = e.response.status;
      s.encoding = Object.entries(e.response.headers).find(([k]) => k.toLowerCase() === 'content-encoding')?.[1] ?? '';
      // Until the body starts, encodedDataLength counts the headers.
      s.headerBytes = e.response.encodedDataLength;
    });
    cdp.on('Network.dataReceived', (e) => {
      const s = this.seen.get(e.requestId);
      if (s) s.decoded += e.dataLength;
    });
    cdp.on('Network.loadingFinished', (e) => {
      const s = this.seen.get(e.requestId);
      if (!s) return;
      s.total = e.encodedDataLength;
      s.finished = true;
    });
    // Failed or cancelled (Chromium drops a second request for the same favicon): nothing to wait for.
    cdp.on('Network.loadingFailed', (e) => {
      const s = this.seen.get(e.requestId);
      if (!s) return;
      s.encoding = e.canceled ? 'cancelled' : e.errorText;
      s.finished = true;
    });
  }

  /** Requests seen so far (a mark for between()). */
  mark(): number {
    return this.order.length;
  }

  /** The requests from mark `from` up to mark `to`, once they have all finished (or after 5 s). */
  async between(from: number, to: number, readyMs: number): Promise<PortalLoad> {
    const ids = this.order.slice(from, to);
    const end = Date.now() + 5000;
    while (Date.now() < end && ids.some((id) => !this.seen.get(id)?.finished)) await sleep(20);
    const list = ids.map((id) => this.seen.get(id)!);
    return {
      requests: list.length,
      bodyBytes: list.reduce((n, s) => n + Math.max(0, s.total - s.headerBytes), 0),
      transferBytes: list.reduce((n, s) => n + s.total, 0),
      decodedBytes: list.reduce((n, s) => n + s.decoded, 0),
      readyMs,
      detail: list.map((s) => ({ path: s.path, status: s.status, encoding: s.encoding, bytes: Math.max(0, s.total - s.headerBytes) })),
    };
  }

  /** Requests for `path` since `mark`. */
  count(mark: number, path: string): number {
    return this.order.slice(mark).filter((id) => this.seen.get(id)?.path === path).length;
  }
}

/** performance.now() in the page once `selector`'s text is not empty. */
async function whenFilled(page: Page, selector: string, timeoutMs = 30_000): Promise<number> {
  const handle = await page.waitForFunction(
    (sel) => {
      const el = document.querySelector(sel);
      return el && el.textContent && el.textContent.trim() ? performance.now() : false;
    },
    selector,
    { timeout: timeoutMs },
  );
  return (await handle.jsonValue()) as number;
}

async function jsHeapMiB(cdp: CDPSession): Promise<number | null> {
  const { metrics } = await cdp.send('Performance.getMetrics');
  const used = metrics.find((m) => m.name === 'JSHeapUsedSize')?.value;
  return used === undefined ? null : used / 2 ** 20;
}

/** smtp-source batches of `rate` messages, one a second (back to back when one takes longer), for `seconds`. */
async function sendFor(ctx: BenchContext, port: number, seconds: number, rate: number, size: number, live: PortalLive): Promise<void> {
  const started = Date.now();
  const end = started + seconds * 1000;
  for (let tick = 0; Date.now() < end; tick++) {
    const args = smtpSourceArgs({ sessions: ctx.config.queue.sessions, messages: rate, size, from: SENDER, to: ADDRESS, timeoutMs: 60_000 }, port, false);
    const result = await runCommand(SMTP_SOURCE, args, { timeoutMs: 60_000 });
    live.smtpSourceRuns += 1;
    if (result.code === 0 && !result.timedOut) live.sent += rate;
    else {
      live.failedRuns += 1;
      live.firstError ??= result.timedOut ? 'smtp-source timed out' : `exit ${result.code}: ${result.stderr.trim().split('\n').slice(-2).join(' | ')}`;
    }
    const next = started + (tick + 1) * 1000;
    if (next > Date.now() && next < end) await sleep(next - Date.now());
  }
  live.messagesPerSecond = live.sent / ((Date.now() - started) / 1000);
}

export async function portalPhase(ctx: BenchContext): Promise<PortalResult> {
  const q = ctx.config.portal;
  const result: PortalResult = { ok: false };
  const webIndex = join(ctx.repo, 'dist', 'web', 'index.html');
  let browser: Browser | undefined;
  const tern = await newTern(ctx, { backend: 'sqlite', name: 'portal', lmtp: false, extraFlags: ['--http-port', String(q.port)] });
  const forget = ctx.onCleanup(tern.stop);
  try {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (Debian's chromium package)`);
    // `npm run bench` builds the front end; after `tsc -p .` alone it is built here.
    if (!existsSync(webIndex)) {
      ctx.log('building the portal front end (scripts/build-web.mjs)');
      await mustRun(process.execPath, [join(ctx.repo, 'scripts', 'build-web.mjs')], { timeoutMs: 300_000 });
    }
    await tern.provision();
    await mustRun(process.execPath, [ctx.cli, 'user', 'add', ADMIN, '--admin', '--password-stdin', '--data', tern.dataDir], { input: `${ADMIN_PASSWORD}\n` });
    await tern.start();
    const base = `http://127.0.0.1:${q.port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Performance.enable');
    const net = new NetworkLog(cdp);
    result.browser = browser.version();

    // 1. The login page, cold.
    ctx.log(`portal: first load of ${base}/ in Chromium ${browser.version()}`);
    // Each step counts the requests made until its goal showed (the dashboard's later polls are not part of a load).
    let mark = net.mark();
    await page.goto(`${base}/`);
    const loginReady = (await (
      await page.waitForFunction(() => ([...document.querySelectorAll('button')].some((b) => b.textContent?.trim() === 'Sign in') ? performance.now() : false))
    ).jsonValue()) as number;
    result.login = await net.between(mark, net.mark(), loginReady);
    result.acceptEncoding = net.acceptEncoding;

    // 2. Signing in, up to the dashboard's first data.
    mark = net.mark();
    await page.getByLabel('Address', { exact: true }).fill(ADMIN);
    await page.getByLabel('Password', { exact: true }).fill(ADMIN_PASSWORD);
    const clickedAt = await page.evaluate(() => performance.now());
    await page.getByRole('button', { name: 'Sign in' }).click();
    const signedIn = await whenFilled(page, '[data-testid="updated"]');
    result.signIn = await net.between(mark, net.mark(), signedIn - clickedAt);

    // 3. The dashboard, cold, with the session.
    await cdp.send('Network.clearBrowserCache');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    await page.goto(`${base}/#/dashboard`);
    // The same document with another hash loaded nothing: the reload is the cold load.
    mark = net.mark();
    await page.reload();
    const dashboardReady = await whenFilled(page, '[data-testid="updated"]');
    result.dashboard = await net.between(mark, net.mark(), dashboardReady);
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: false });

    // 4. Live, under load.
    await page.evaluate(() => {
      const w = window as unknown as { __updates: number[] };
      w.__updates = [];
      const el = document.querySelector('[data-testid="updated"]');
      let last = el?.textContent ?? '';
      new MutationObserver(() => {
        const now = document.querySelector('[data-testid="updated"]')?.textContent ?? '';
        if (now !== last) {
          last = now;
          w.__updates.push(performance.now());
        }
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    const statsReceived = async (): Promise<number | null> =>
      page.evaluate(async () => {
        const r = await fetch('/api/v1/stats');
        return r.ok ? ((await r.json()) as { received: number }).received : null;
      });
    const live: PortalLive = {
      seconds: q.seconds,
      targetRate: q.rate,
      messageSize: q.size,
      sent: 0,
      messagesPerSecond: 0,
      smtpSourceRuns: 0,
      failedRuns: 0,
      polls: 0,
      updates: 0,
      maxGapMs: 0,
      medianGapMs: 0,
      receivedByStats: null,
      peakRssMiB: null,
      idleRssMiB: null,
      heapBeforeMiB: await jsHeapMiB(cdp),
      heapAfterMiB: null,
    };
    result.live = live;
    const idle = readMemory(tern.pid());
    live.idleRssMiB = idle ? idle.rssKiB / 1024 : null;
    const receivedBefore = await statsReceived();
    ctx.log(`portal: dashboard open while smtp-source sends ${q.rate} x ${q.size} B a second for ${q.seconds} s`);
    const rss = new RssSampler(tern.pid());
    rss.start();
    mark = net.mark();
    const from = await page.evaluate(() => performance.now());
    await sendFor(ctx, ctx.config.ports.ternSmtp, q.seconds, q.rate, q.size, live);
    const to = await page.evaluate(() => performance.now());
    rss.stop();
    live.peakRssMiB = rss.peakRssKiB / 1024;
    live.polls = net.count(mark, '/api/v1/stats');
    const updates = (await page.evaluate(() => (window as unknown as { __updates: number[] }).__updates)).filter((t) => t >= from && t <= to);
    live.updates = updates.length;
    const marks = [from, ...updates, to];
    const gaps = marks.slice(1).map((t, i) => t - marks[i]!);
    live.maxGapMs = Math.max(...gaps);
    const sorted = updates
      .slice(1)
      .map((t, i) => t - updates[i]!)
      .sort((a, b) => a - b);
    live.medianGapMs = sorted.length ? sorted[Math.floor(sorted.length / 2)]! : 0;
    const receivedAfter = await statsReceived();
    live.receivedByStats = receivedBefore === null || receivedAfter === null ? null : receivedAfter - receivedBefore;
    live.heapAfterMiB = await jsHeapMiB(cdp);
    result.ok = live.failedRuns === 0;
    if (!result.ok) result.error = live.firstError;
  } catch (error) {
    result.error = errorText(error);
  } finally {
    await browser?.close().catch(() => undefined);
    await tern.stop();
    forget();
  }
  return result;
}

const kb = (bytes: number | undefined | null) => (bytes === undefined || bytes === null ? '-' : `${(bytes / 1024).toFixed(1)} KB`);

export function formatPortal(r: PortalResult): string[] {
  const lines = [
    `Admin portal in Chromium ${r.browser ?? ''} (first load budget: ${kb(BUDGET_BYTES)} compressed, interactive < ${BUDGET_MS} ms; Accept-Encoding: ${r.acceptEncoding ?? '?'}):`,
  ];
  lines.push('  step                         requests  bodies as sent  on the wire  uncompressed  ready ms');
  const row = (name: string, l: PortalLoad | undefined) => {
    if (!l) return;
    lines.push(
      `  ${name.padEnd(28)} ${String(l.requests).padStart(8)} ${kb(l.bodyBytes).padStart(15)} ${kb(l.transferBytes).padStart(12)} ${kb(l.decodedBytes).padStart(13)} ${l.readyMs.toFixed(0).padStart(9)}`,
    );
  };
  row('login page, cold', r.login);
  row('sign in → first data', r.signIn);
  row('dashboard, cold (signed in)', r.dashboard);
  if (r.dashboard) {
    const within = r.dashboard.bodyBytes <= BUDGET_BYTES && r.dashboard.readyMs <= BUDGET_MS;
    lines.push(`  dashboard cold load ${within ? 'within' : 'OVER'} budget`);
    const answer = (d: PortalLoad['detail'][number]) =>
      d.status ? `${d.status} ${d.encoding || 'identity'} ${kb(d.bytes)}` : `no answer (${d.encoding || 'cancelled'})`;
    lines.push(`  ${r.dashboard.detail.map((d) => `${d.path} ${answer(d)}`).join('; ')}`);
  }
  const l = r.live;
  if (l) {
    lines.push(
      `  live: ${l.sent} messages of ${l.messageSize} B in ${l.seconds} s (target ${l.targetRate}/s): ${l.messagesPerSecond.toFixed(0)} msg/s reached, ${l.receivedByStats ?? '?'} counted by /api/v1/stats`,
    );
    lines.push(`        dashboard: ${l.polls} polls, ${l.updates} updates, largest gap ${l.maxGapMs.toFixed(0)} ms, median ${l.medianGapMs.toFixed(0)} ms`);
    lines.push(
      `        Tern RSS idle ${l.idleRssMiB?.toFixed(0) ?? '-'} MiB, peak ${l.peakRssMiB?.toFixed(0) ?? '-'} MiB; page JS heap ${l.heapBeforeMiB?.toFixed(1) ?? '-'} → ${l.heapAfterMiB?.toFixed(1) ?? '-'} MiB`,
    );
    if (l.failedRuns) lines.push(`        ${l.failedRuns} of ${l.smtpSourceRuns} smtp-source runs failed: ${l.firstError ?? ''}`);
  }
  if (r.error) lines.push(`  error: ${r.error}`);
  return lines;
}
