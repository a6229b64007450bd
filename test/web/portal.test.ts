/**
 * The admin portal in a real browser (Debian's Chromium, headless, driven by
 * playwright-core) against `tern serve`: every page loads after signing in without console
 * errors, failed requests or error answers, at 1280x800 and at 360x740 (no sideways
 * scrolling; the nav behind "Menu"), with a screenshot of each in test-artifacts/portal/;
 * the main flow (add a domain, add an account, send through the HTTP API, find the message
 * on the Trace page); signing out, and the login form again after the idle timeout; the
 * login rate limit as the page shows it; the DNS check against a DNS server the test runs;
 * keyboard use. The session's API (cookie flags, CSRF, expiry) and the portal's file headers
 * are tested over plain HTTP in test/http/portal-api.test.ts. Pages are found by the
 * accessible names in the portal's contract (labels, roles, button names).
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { callApi, createApiKey } from '../helpers/http-api.js';
import { cli, freePort, startTern, tempDir, type Site, type TernServer } from '../helpers/tern.js';

const ARTIFACTS = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test-artifacts/portal');
const ADMIN = 'admin@example.test';
const ADMIN_PASSWORD = 'portal-admin-pw';
const COOKIE = 'tern_session';

/** Every hash route and the text of its one <h1>. */
const PAGES: Array<{ route: string; h1: string; nav?: string }> = [
  { route: '#/dashboard', h1: 'Dashboard', nav: 'Dashboard' },
  { route: '#/domains', h1: 'Domains', nav: 'Domains' },
  { route: '#/domains/example.test', h1: 'example.test' },
  { route: '#/accounts', h1: 'Accounts', nav: 'Accounts' },
  { route: '#/aliases', h1: 'Aliases', nav: 'Aliases' },
  { route: '#/keys', h1: 'API keys', nav: 'API keys' },
  { route: '#/webhooks', h1: 'Webhooks', nav: 'Webhooks' },
  { route: '#/queue', h1: 'Queue', nav: 'Queue' },
  { route: '#/trace', h1: 'Trace', nav: 'Trace' },
  { route: '#/settings', h1: 'Settings', nav: 'Settings' },
];

/** Polls `probe` until it returns something other than undefined, or fails after `ms` saying `what`. */
async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const found = await probe();
      if (found !== undefined) return found;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(50);
  }
}

interface Allowed {
  path: string | RegExp;
  status: number;
}

/**
 * What went wrong on a page: console errors, uncaught exceptions, failed requests and
 * answers of 400 and above, except those a test provokes (allow()). Also counts requests
 * in flight, so a test can wait until the page is quiet.
 */
class PageWatch {
  readonly problems: string[] = [];
  private allowed: Allowed[] = [];
  private inflight = 0;
  private lastActivity = Date.now();

  constructor(readonly page: Page) {
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      // Chromium logs every error answer as "Failed to load resource: … status of 401 (…)" at the resource's URL.
      const status = /status of (\d+)/.exec(m.text())?.[1];
      if (status && this.isAllowed(m.location().url, Number(status))) return;
      this.problems.push(`console error: ${m.text()} (${m.location().url})`);
    });
    page.on('pageerror', (e) => this.problems.push(`uncaught: ${e.message}`));
    page.on('request', () => {
      this.inflight++;
      this.lastActivity = Date.now();
    });
    const done = () => {
      this.inflight = Math.max(0, this.inflight - 1);
      this.lastActivity = Date.now();
    };
    page.on('requestfinished', done);
    page.on('requestfailed', (r) => {
      done();
      // A fetch the page cancels itself (leaving a page while a poll is under way) is not a failure.
      if (r.failure()?.errorText === 'net::ERR_ABORTED') return;
      this.problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`);
    });
    page.on('response', (r) => {
      if (r.status() >= 400 && !this.isAllowed(r.url(), r.status())) this.problems.push(`${r.status()} for ${r.request().method()} ${r.url()}`);
    });
  }

  private isAllowed(url: string, status: number): boolean {
    let path: string;
    try {
      path = new URL(url).pathname;
    } catch {
      return false;
    }
    return this.allowed.some((a) => a.status === status && (typeof a.path === 'string' ? a.path === path : a.path.test(path)));
  }

  /** Answers with this status for this path are expected from now on. */
  allow(path: string | RegExp, status: number): void {
    this.allowed.push({ path, status });
  }

  /** Waits until no request has been in flight for `quietMs`. */
  async settle(quietMs = 300, ms = 10_000): Promise<void> {
    await until('the page to go quiet', () => (this.inflight === 0 && Date.now() - this.lastActivity >= quietMs ? true : undefined), ms);
  }

  /** Fails with every problem seen so far (and forgets them). */
  assertClean(where: string): void {
    const seen = this.problems.splice(0);
    assert.deepEqual(seen, [], `${where}: ${seen.join('\n')}`);
  }
}

let browser: Browser;
/** The site every describe starts from (a copy each): example.test with alice@ and bob@ as createSite makes it, an administrator, two API keys. */
let template: Site;
let sendKey: string;
let adminKey: string;
before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const launched = chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  // Made as createSite does, but the accounts and keys side by side (each CLI run starts a process).
  const dataDir = tempDir();
  template = { dataDir, args: ['--data', dataDir] };
  await cli(['init', '--hostname', 'mx.example.test', ...template.args]);
  await cli(['domain', 'add', 'example.test', ...template.args]);
  [sendKey, adminKey] = await Promise.all([
    createApiKey(template, '--scope', 'send,read'),
    createApiKey(template, '--scope', 'admin'),
    cli(['user', 'add', ADMIN, '--admin', '--password-stdin', ...template.args], `${ADMIN_PASSWORD}\n`),
    ...['alice', 'bob'].map((user) => cli(['user', 'add', `${user}@example.test`, '--password-stdin', ...template.args], 'password123\n')),
  ]);
  browser = await launched;
});
after(async () => {
  await browser?.close();
});

/** A copy of the template site (prepared by `setup`) served by `tern serve` with the http role on a free port (plus `args`). */
async function startPortal(opts: { args?: string[]; setup?: (site: Site) => Promise<void> } = {}) {
  const dataDir = tempDir();
  cpSync(template.dataDir, dataDir, { recursive: true });
  const site: Site = { dataDir, args: ['--data', dataDir] };
  await opts.setup?.(site);
  const httpPort = await freePort();
  const tern = await startTern(site, ['--http-port', String(httpPort), ...(opts.args ?? [])]);
  return { site, tern, base: `http://127.0.0.1:${httpPort}` };
}

/** A new browser context (own cookies) at `width` x `height`, with its first page and a watch on it. */
async function openPage(base: string, width = 1280, height = 800): Promise<{ context: BrowserContext; page: Page; watch: PageWatch }> {
  const context = await browser.newContext({ viewport: { width, height }, baseURL: base });
  // Well under the test's own timeout, so a missing element fails with its name.
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  const watch = new PageWatch(page);
  return { context, page, watch };
}

const h1 = (page: Page, name: string) => page.getByRole('heading', { level: 1, name, exact: true });
const mainNav = (page: Page) => page.getByRole('navigation', { name: 'Main' });

/** Fills the login form and signs in; waits for the dashboard. */
async function signIn(page: Page): Promise<void> {
  await page.getByLabel('Address', { exact: true }).fill(ADMIN);
  await page.getByLabel('Password', { exact: true }).fill(ADMIN_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await h1(page, 'Dashboard').waitFor();
}

/** The tern_session cookie as the browser holds it. */
async function sessionCookie(context: BrowserContext, base: string) {
  const cookie = (await context.cookies(base)).find((c) => c.name === COOKIE);
  assert.ok(cookie, `no ${COOKIE} cookie in the browser`);
  return cookie;
}

/** An HTTP API call outside the browser with a session cookie (and a CSRF token, when given) instead of a key. */
function withCookie(base: string, cookie: string, method: string, path: string, o: { body?: unknown; csrf?: string } = {}) {
  return callApi(base, method, path, { body: o.body, headers: { cookie: `${COOKIE}=${cookie}`, ...(o.csrf ? { 'x-csrf-token': o.csrf } : {}) } });
}

const errorCode = (body: unknown) => (body as { error?: { code?: string } }).error?.code;

describe('admin portal: pages, main flow, session, DNS check, keyboard', { timeout: 60_000 }, () => {
  let tern: TernServer;
  let base: string;
  let dns: TestDnsServer;
  let context: BrowserContext;
  let page: Page;
  let watch: PageWatch;

  before(async () => {
    dns = await startDnsServer();
    ({ tern, base } = await startPortal({ args: ['--dns-server', dns.address] }));
    ({ context, page, watch } = await openPage(base));
    await page.goto('/');
    await signIn(page);
  });
  after(async () => {
    await context?.close();
    await tern?.stop();
    await dns?.close();
  });

  it('loads every page at 1280x800 with one <h1>, no console errors and no failed requests', async () => {
    for (const { route, h1: name } of PAGES) {
      // A fresh load of each deep link, as a bookmark or a reload would do.
      await page.goto(`/${route}`);
      await h1(page, name).waitFor();
      await watch.settle();
      assert.equal(await page.locator('h1').count(), 1, `${route}: exactly one <h1>`);
      assert.ok(await mainNav(page).isVisible(), `${route}: the main nav shows at 1280 px`);
      await page.screenshot({ path: join(ARTIFACTS, `${route.slice(2).replace(/\//g, '_')}-1280.png`), fullPage: true });
      watch.assertClean(route);
    }
    // Every nav link leads to its page without a reload.
    for (const { nav, h1: name } of PAGES) {
      if (!nav) continue;
      await mainNav(page).getByRole('link', { name: nav, exact: true }).click();
      await h1(page, name).waitFor();
    }
    await watch.settle();
    watch.assertClean('nav links');
    // The dashboard's "Updated" text changes on every poll (2 s).
    await page.goto('/#/dashboard');
    for (const tile of ['Received', 'Delivered', 'Deferred', 'Bounced', 'Queue', 'Connections', 'Store'])
      await page.getByText(tile, { exact: true }).first().waitFor();
    const updated = page.getByTestId('updated');
    const first = await until('the dashboard to show its first data', async () =>
      (await updated.textContent())?.trim() ? await updated.textContent() : undefined,
    );
    await until('a second poll', async () => ((await updated.textContent()) !== first ? true : undefined), 6_000);
    assert.ok(await page.getByRole('button', { name: 'Theme' }).isVisible(), 'a Theme button');
    assert.ok(await page.getByRole('button', { name: 'Sign out' }).isVisible(), 'a Sign out button');
    watch.assertClean('dashboard');
  });

  it('fits 360x740 without sideways scrolling, with the nav behind "Menu"', async () => {
    const small = await openPage(base, 360, 740);
    try {
      await small.page.goto('/');
      await small.page.getByRole('button', { name: 'Sign in' }).waitFor();
      assert.ok((await small.page.evaluate(() => document.documentElement.scrollWidth)) <= 360, 'the login page fits 360 px');
      await small.page.screenshot({ path: join(ARTIFACTS, 'login-360.png'), fullPage: true });
      await signIn(small.page);
      const menu = small.page.getByRole('button', { name: 'Menu' });
      for (const { route, h1: name, nav } of PAGES) {
        if (nav) {
          // The nav is collapsed: "Menu" opens it, then its link is followed.
          if ((await menu.getAttribute('aria-expanded')) !== 'true') {
            assert.equal(
              await mainNav(small.page).getByRole('link', { name: nav, exact: true }).isVisible(),
              false,
              `${route}: the nav links are hidden at 360 px`,
            );
            await menu.click();
            assert.equal(await menu.getAttribute('aria-expanded'), 'true', 'Menu says it is expanded');
          }
          await mainNav(small.page).getByRole('link', { name: nav, exact: true }).click();
        } else {
          await small.page.goto(`/${route}`);
        }
        await h1(small.page, name).waitFor();
        await small.watch.settle();
        const width = await small.page.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(width <= 360, `${route}: the page is ${width} px wide at 360 px`);
        await small.page.screenshot({ path: join(ARTIFACTS, `${route.slice(2).replace(/\//g, '_')}-360.png`), fullPage: true });
        small.watch.assertClean(`${route} at 360 px`);
      }
    } finally {
      await small.context.close();
    }
  });

  it('adds a domain and an account, and traces a message sent through the API', async () => {
    await page.goto('/#/domains');
    await h1(page, 'Domains').waitFor();
    await page.getByLabel('Domain name', { exact: true }).fill('portal.test');
    await page.getByRole('button', { name: 'Add domain' }).click();
    await page.getByRole('link', { name: 'portal.test', exact: true }).click();
    await h1(page, 'portal.test').waitFor();
    await page.getByRole('button', { name: 'Copy MX record portal.test' }).waitFor();

    await mainNav(page).getByRole('link', { name: 'Accounts', exact: true }).click();
    await h1(page, 'Accounts').waitFor();
    await page.getByLabel('Address', { exact: true }).fill('carol@portal.test');
    // No password: the portal has one generated and shows it once.
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('status').filter({ hasText: 'shown once' }).waitFor();
    await page.getByLabel('Search', { exact: true }).fill('carol');
    await page.getByRole('row').filter({ hasText: 'carol@portal.test' }).first().waitFor();
    const account = await callApi(base, 'GET', '/api/v1/accounts/carol@portal.test', { key: adminKey });
    assert.equal(account.status, 200, 'the account exists');

    const subject = `Portal trace ${Date.now()}`;
    const sent = await callApi(base, 'POST', '/api/v1/messages', {
      key: sendKey,
      body: { from: 'carol@portal.test', to: 'carol@portal.test', subject, text: 'Hello from the portal test.\n' },
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    const id = (sent.body as { id: string }).id;

    await mainNav(page).getByRole('link', { name: 'Trace', exact: true }).click();
    await h1(page, 'Trace').waitFor();
    await page.getByLabel('Recipient', { exact: true }).fill('carol@portal.test');
    await page.getByRole('button', { name: 'Search' }).click();
    const row = page.getByRole('row').filter({ hasText: id });
    await row.waitFor();
    assert.match((await row.textContent()) ?? '', new RegExp(subject));
    await row
      .getByRole('button', { name: id })
      .or(row.getByRole('link', { name: id }))
      .first()
      .click();
    // Its details: the copy stored in carol's mailbox (events per recipient, as GET /api/v1/messages/:id has them).
    const details = page.getByRole('region', { name: `Message ${id}` });
    await until('the trace to say the message was stored or delivered', async () =>
      /carol@portal\.test/.test(await details.innerText()) && /\b(stored|delivered)\b/i.test(await details.innerText()) ? true : undefined,
    );
    await watch.settle();
    watch.assertClean('main flow');
  });

  it('checks a domain’s DNS records against the resolver Tern is given', async () => {
    const domain = (await callApi(base, 'GET', '/api/v1/domains/example.test', { key: adminKey })).body as {
      records: Array<{ name: string; type: string; value: string }>;
    };
    const dkim = domain.records.find((r) => r.name.includes('._domainkey.'));
    assert.ok(dkim, 'example.test has a DKIM record to publish');
    // Published as asked: MX and SPF; published with another value: DMARC; not published: DKIM.
    dns.set([
      { type: 'MX', name: 'example.test', exchange: 'mx.example.test', priority: 10 },
      { type: 'TXT', name: 'example.test', text: 'v=spf1 mx ~all' },
      { type: 'TXT', name: '_dmarc.example.test', text: 'v=DMARC1; p=reject' },
    ]);

    const check = await callApi(base, 'GET', '/api/v1/domains/example.test/dns-check', { key: adminKey });
    assert.equal(check.status, 200, JSON.stringify(check.body));
    const result = check.body as { resolvers: string[]; records: Array<{ type: string; name: string; status: string; found: string[] }> };
    assert.ok(
      result.resolvers.some((r) => r.includes('127.0.0.1')),
      `the check used the test's DNS server: ${JSON.stringify(result.resolvers)}`,
    );
    assert.deepEqual(
      result.records.map((r) => [r.type, r.name]),
      domain.records.map((r) => [r.type, r.name]),
      'one result per record, in order',
    );
    const statusOf = (type: string, name: string) => result.records.find((r) => r.type === type && r.name === name)?.status;
    assert.equal(statusOf('MX', 'example.test'), 'ok');
    assert.equal(statusOf('TXT', 'example.test'), 'ok');
    assert.equal(statusOf('TXT', '_dmarc.example.test'), 'different');
    assert.equal(statusOf('TXT', dkim.name), 'missing');

    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    await page.goto('/#/domains/example.test');
    await h1(page, 'example.test').waitFor();
    const rowOf = (type: string, name: string) =>
      page.getByRole('row').filter({ has: page.getByRole('button', { name: `Copy ${type} record ${name}`, exact: true }) });
    await page.getByRole('button', { name: 'Check DNS' }).click();
    const cases: Array<[string, string, RegExp]> = [
      ['MX', 'example.test', /\bok\b/i],
      ['TXT', 'example.test', /\bok\b/i],
      ['TXT', '_dmarc.example.test', /\bdifferent\b/i],
      ['TXT', dkim.name, /\bmissing\b/i],
    ];
    for (const [type, name, status] of cases) {
      await until(`the ${type} ${name} row to say ${status}`, async () => (status.test(await rowOf(type, name).innerText()) ? true : undefined));
    }
    // "Copy" puts the record's value on the clipboard.
    await rowOf('MX', 'example.test').getByRole('button', { name: 'Copy MX record example.test' }).click();
    const copied = await until('the clipboard to hold the MX record', async () => {
      const text = await page.evaluate(() => navigator.clipboard.readText());
      return text.includes('mx.example.test') ? text : undefined;
    });
    assert.match(copied, /10 mx\.example\.test\.?/);
    await watch.settle();
    watch.assertClean('DNS check');
  });

  it('is usable from the keyboard: the login form, and dialogs close on Escape', async () => {
    const kb = await openPage(base);
    try {
      await kb.page.goto('/');
      const address = kb.page.getByLabel('Address', { exact: true });
      const password = kb.page.getByLabel('Password', { exact: true });
      await address.waitFor();
      await kb.page.screenshot({ path: join(ARTIFACTS, 'login-1280.png'), fullPage: true });
      const focused = (l: typeof address) => l.evaluate((el) => el === document.activeElement);
      for (let i = 0; i < 10 && !(await focused(address)); i++) await kb.page.keyboard.press('Tab');
      assert.ok(await focused(address), 'Tab reaches the Address field');
      await kb.page.keyboard.type(ADMIN);
      await kb.page.keyboard.press('Tab');
      assert.ok(await focused(password), 'Tab goes on from Address to Password');
      await kb.page.keyboard.type(ADMIN_PASSWORD);
      await kb.page.keyboard.press('Enter');
      await h1(kb.page, 'Dashboard').waitFor();

      await kb.page.goto('/#/accounts');
      await h1(kb.page, 'Accounts').waitFor();
      await kb.page.getByLabel('Search', { exact: true }).fill('bob@');
      const bob = kb.page.getByRole('row').filter({ hasText: 'bob@example.test' });
      await bob.getByRole('button', { name: 'Delete' }).click();
      const dialog = kb.page.locator('dialog[open]');
      await dialog.waitFor();
      assert.ok(await dialog.getByRole('button', { name: 'Cancel' }).isVisible(), 'the dialog has Cancel');
      assert.ok(await dialog.getByRole('button', { name: 'Delete' }).isVisible(), 'the dialog has Delete');
      await kb.page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'detached' });
      await kb.watch.settle();
      const still = await callApi(base, 'GET', '/api/v1/accounts/bob@example.test', { key: adminKey });
      assert.equal(still.status, 200, 'Escape deleted nothing');
      kb.watch.assertClean('keyboard');
    } finally {
      await kb.context.close();
    }
  });

  it('signs in admins only, and a signed-out cookie opens nothing', async () => {
    const wrong = await callApi(base, 'POST', '/api/v1/session', { body: { address: ADMIN, password: 'not-the-password' } });
    assert.equal(wrong.status, 401);
    assert.equal(errorCode(wrong.body), 'unauthorized');
    const notAdmin = await callApi(base, 'POST', '/api/v1/session', { body: { address: 'alice@example.test', password: 'password123' } });
    assert.equal(notAdmin.status, 401, 'an account that is not an administrator may not sign in');

    const login = await callApi(base, 'POST', '/api/v1/session', { body: { address: ADMIN, password: ADMIN_PASSWORD } });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    const setCookie = login.headers.get('set-cookie') ?? '';
    assert.match(setCookie, new RegExp(`^${COOKIE}=`));
    assert.match(setCookie, /;\s*HttpOnly/i);
    assert.match(setCookie, /;\s*SameSite=Strict/i);
    assert.match(setCookie, /;\s*Path=\//i);
    const value = /^tern_session=([^;]*)/.exec(setCookie)![1]!;
    const { csrfToken, expiresAt } = login.body as { csrfToken: string; expiresAt: string };
    const lifetime = Date.parse(expiresAt) - Date.now();
    assert.ok(lifetime > 0 && lifetime <= 12 * 3600_000 + 60_000, `expiresAt within 12 h: ${expiresAt}`);
    assert.equal((await withCookie(base, value, 'GET', '/api/v1/domains')).status, 200);

    const out = await withCookie(base, value, 'DELETE', '/api/v1/session', { csrf: csrfToken });
    assert.equal(out.status, 204);
    assert.match(out.headers.get('set-cookie') ?? '', new RegExp(`^${COOKIE}=;|Max-Age=0|Expires=Thu, 01 Jan 1970`, 'i'), 'the cookie is cleared');
    // No session is an ordinary answer to GET /api/v1/session: 204 (the portal asks it on every load).
    const after = await withCookie(base, value, 'GET', '/api/v1/session');
    assert.equal(after.status, 204, JSON.stringify(after.body));
    assert.equal((await withCookie(base, value, 'GET', '/api/v1/domains')).status, 401);
    const change = await withCookie(base, value, 'POST', '/api/v1/domains', { body: { name: 'after-logout.test' }, csrf: csrfToken });
    assert.ok(change.status === 401 || change.status === 403, `a change with the old cookie and token: ${change.status}`);

    // The same through the portal's "Sign out".
    const before = (await sessionCookie(context, base)).value;
    await page.goto('/#/dashboard');
    await h1(page, 'Dashboard').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    assert.equal((await withCookie(base, before, 'GET', '/api/v1/domains')).status, 401, 'the signed-out cookie opens nothing');
    await page.reload();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await watch.settle();
    watch.assertClean('sign out');
  });
});

describe('admin portal: idle sessions expire', { timeout: 30_000 }, () => {
  let tern: TernServer;
  let base: string;

  before(async () => {
    // 3 s, not 2: the dashboard polls every 2 s, so at 2 s a session could lapse between two polls before the test leaves it.
    ({ tern, base } = await startPortal({ setup: (s) => cli(['setting', 'set', 'portal_idle_timeout', '3', ...s.args]).then(() => undefined) }));
  });
  after(async () => {
    await tern?.stop();
  });

  it('returns to the login form saying "Your session expired"', async () => {
    const { context, page, watch } = await openPage(base);
    try {
      await page.goto('/');
      await signIn(page);
      // Settings does not poll: the session goes idle there.
      await mainNav(page).getByRole('link', { name: 'Settings', exact: true }).click();
      await h1(page, 'Settings').waitFor();
      const cookie = await sessionCookie(context, base);
      const session = await withCookie(base, cookie.value, 'GET', '/api/v1/session');
      assert.equal((session.body as { idleTimeoutSeconds: number }).idleTimeoutSeconds, 3);
      await watch.settle();
      watch.allow(/^\/api\/v1\//, 401);
      await sleep(4_500);
      await mainNav(page).getByRole('link', { name: 'Domains', exact: true }).click();
      await page.getByRole('button', { name: 'Sign in' }).waitFor();
      await page.getByText('Your session expired').waitFor();
      assert.equal((await withCookie(base, cookie.value, 'GET', '/api/v1/domains')).status, 401, 'the idle cookie opens nothing');
      // Signing in again works (after an ended session the portal starts on the dashboard).
      await signIn(page);
      await watch.settle();
      watch.assertClean('idle expiry');
    } finally {
      await context.close();
    }
  });
});

describe('admin portal: login rate limit', { timeout: 30_000 }, () => {
  let tern: TernServer;
  let base: string;

  before(async () => {
    ({ tern, base } = await startPortal({ args: ['--log-level', 'info'] }));
  });
  after(async () => {
    await tern?.stop();
  });

  it('refuses an address after repeated wrong passwords, shows why, and logs the failures', async () => {
    const { context, page, watch } = await openPage(base);
    try {
      watch.allow('/api/v1/session', 401);
      watch.allow('/api/v1/session', 429);
      watch.allow('/api/v1/session', 403);
      await page.goto('/');
      await page.getByLabel('Address', { exact: true }).fill(ADMIN);
      await page.getByLabel('Password', { exact: true }).fill('wrong-password-1');
      await page.getByRole('button', { name: 'Sign in' }).click();
      const alert = page.getByRole('alert');
      await alert.waitFor();
      assert.ok((await alert.innerText()).trim().length > 0, 'the alert says why');

      let limited: { status: number; body: unknown } | undefined;
      for (let i = 2; i <= 30 && !limited; i++) {
        const r = await callApi(base, 'POST', '/api/v1/session', { body: { address: ADMIN, password: `wrong-password-${i}` } });
        if (r.status === 429 || r.status === 403) limited = r;
        else assert.equal(r.status, 401, JSON.stringify(r.body));
      }
      assert.ok(limited, '30 wrong passwords in a row are limited');
      assert.ok(
        (limited.status === 429 && errorCode(limited.body) === 'rate_limited') || (limited.status === 403 && errorCode(limited.body) === 'banned'),
        JSON.stringify(limited.body),
      );
      const right = await callApi(base, 'POST', '/api/v1/session', { body: { address: ADMIN, password: ADMIN_PASSWORD } });
      assert.ok(right.status === 429 || right.status === 403, `the right password is refused too while limited: ${right.status}`);

      // The portal shows the refusal.
      await page.getByLabel('Password', { exact: true }).fill(ADMIN_PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await until('the alert to say the address is limited', async () => ((await alert.innerText()).match(/try|later|many|limit|ban/i) ? true : undefined));
      await watch.settle();
      watch.assertClean('rate limit');

      const logged = tern
        .output()
        .split('\n')
        .filter((l) => l.includes(ADMIN) && /fail|wrong|invalid|refused|unauthori[sz]ed/i.test(l));
      assert.ok(logged.length > 0, `failed logins are logged:\n${tern.output().slice(-2000)}`);
    } finally {
      await context.close();
    }
  });
});
