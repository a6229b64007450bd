/**
 * The admin API over real HTTP against `tern serve`: domains with their DKIM keys and DNS
 * records (and rotation), accounts (a generated password works for an IMAP login), aliases,
 * the outbound queue (a message a 4xx keeps queued is listed, traced, held, released and
 * deleted), and who may do what: keys limited to a domain stay in it, send keys and no key
 * are refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { cli, createSite, freePort, startTern, type Site, type TernServer } from '../helpers/tern.js';
import { callApi, createApiKey } from '../helpers/http-api.js';

interface ApiError {
  error: { code: string; message: string; field?: string };
}
interface DnsRecord {
  name: string;
  type: string;
  value: string;
}
interface DkimKey {
  domain: string;
  selector: string;
  algorithm: string;
  state: string;
  record: DnsRecord;
}
interface DomainView {
  name: string;
  createdAt: string;
  dkim: DkimKey[];
  records: DnsRecord[];
}
interface Account {
  address: string;
  admin: boolean;
  quotaBytes: number | null;
  usedBytes: number;
  messages: number;
  createdAt: string;
  password?: string;
}
interface QueueEntry {
  id: number;
  ternId: string;
  envelopeFrom: string;
  domain: string;
  state: string;
  attempts: number;
  recipients: Array<{ address: string; status: string; reply: string | null }>;
  events?: Array<{ recipient: string; event: string; reply: string | null }>;
}

describe('HTTP admin API', { timeout: 120_000 }, () => {
  let sink: SmtpSink;
  let site: Site;
  let tern: TernServer;
  let base: string;
  let imapPort: number;
  let sender: string;
  let admin: string;
  let domainAdmin: string;

  const api = (method: string, path: string, o: Parameters<typeof callApi>[3] = {}) => callApi(base, method, path, o);
  const newKey = (...args: string[]) => createApiKey(site, ...args);
  const errorOf = (r: { body: unknown }) => (r.body as ApiError).error;
  /** Expects `status` with the error `code` (and `field`, when given). */
  const refused = (r: { status: number; body: unknown }, status: number, code: string, field?: string) => {
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.equal(errorOf(r).code, code);
    if (field) assert.equal(errorOf(r).field, field);
  };
  /** Whether `user` can log in over IMAP with `pass`. */
  const imapLogin = async (user: string, pass: string): Promise<boolean> => {
    const client = new ImapFlow({
      host: '127.0.0.1',
      port: imapPort,
      secure: false,
      auth: { user, pass },
      logger: false,
      tls: { rejectUnauthorized: false },
      disableAutoIdle: true,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.logout();
      return true;
    } catch {
      client.close();
      return false;
    }
  };

  before(async () => {
    sink = await startSmtpSink();
    site = await createSite();
    await cli(['domain', 'add', 'other.test', ...site.args]);
    await cli(['user', 'add', 'zed@other.test', '--password-stdin', ...site.args], 'password123\n');
    sender = await newKey('--scope', 'send,read');
    admin = await newKey('--scope', 'admin');
    domainAdmin = await newKey('--scope', 'admin', '--domain', 'example.test');
    const httpPort = await freePort();
    imapPort = await freePort();
    base = `http://127.0.0.1:${httpPort}`;
    tern = await startTern(site, [
      '--http-port',
      String(httpPort),
      '--imap-port',
      String(imapPort),
      '--smarthost',
      `127.0.0.1:${sink.port}`,
      '--dns-server',
      '127.0.0.1:9',
    ]);
  });
  after(async () => {
    await tern?.stop();
    await sink?.close();
  });

  it('adds a domain with its DKIM key and DNS records, rotates the key, and deletes the domain once it is empty', async () => {
    const made = await api('POST', '/api/v1/domains', { key: admin, body: { name: 'Shop.Test' } });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const shop = made.body as DomainView;
    assert.equal(shop.name, 'shop.test');
    assert.equal(shop.dkim.length, 1);
    const [key] = shop.dkim;
    assert.deepEqual([key!.domain, key!.algorithm, key!.state], ['shop.test', 'rsa', 'active']);
    assert.deepEqual([key!.record.name, key!.record.type], [`${key!.selector}._domainkey.shop.test`, 'TXT']);
    assert.match(key!.record.value, /^v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]+$/);
    assert.ok(!JSON.stringify(shop).includes('PRIVATE'), 'no private key');
    const record = (type: string, name: string) => shop.records.find((r) => r.type === type && r.name === name)?.value;
    assert.equal(record('MX', 'shop.test'), '10 mx.example.test.');
    assert.match(record('TXT', 'shop.test')!, /^v=spf1 /);
    assert.equal(record('TXT', key!.record.name), key!.record.value);
    assert.match(record('TXT', '_dmarc.shop.test')!, /^v=DMARC1; p=none/);
    assert.equal(record('SRV', '_submission._tcp.shop.test'), '0 1 587 mx.example.test.');
    assert.equal(record('SRV', '_imaps._tcp.shop.test'), '0 1 993 mx.example.test.');

    refused(await api('POST', '/api/v1/domains', { key: admin, body: { name: 'shop.test' } }), 409, 'conflict');
    refused(await api('POST', '/api/v1/domains', { key: admin, body: { name: 'not a domain!' } }), 400, 'invalid_request');
    refused(await api('POST', '/api/v1/domains', { key: admin, body: { name: 'x.test', colour: 'red' } }), 400, 'invalid_request', 'colour');
    refused(await api('POST', '/api/v1/domains', { key: admin, body: { name: 'x.test', dkim: 'dsa' } }), 400, 'invalid_request', 'dkim');

    const listed = (await api('GET', '/api/v1/domains', { key: admin })).body as Array<{ name: string }>;
    assert.deepEqual(listed.map((d) => d.name).sort(), ['example.test', 'mx.example.test', 'other.test', 'shop.test']);
    const cliDomains = JSON.parse(await cli(['domain', 'list', '--json', ...site.args])) as Array<{ name: string }>;
    assert.ok(
      cliDomains.some((d) => d.name === 'shop.test'),
      'the CLI sees what the API made',
    );
    const one = await api('GET', '/api/v1/domains/SHOP.test', { key: admin });
    assert.equal(one.status, 200);
    assert.deepEqual((one.body as DomainView).dkim, shop.dkim);
    refused(await api('GET', '/api/v1/domains/nowhere.test', { key: admin }), 404, 'not_found');

    // Rotation: a second key, pending until its record is published, shown with its record.
    const rotated = await api('POST', '/api/v1/domains/shop.test/dkim', { key: admin, body: { algorithm: 'ed25519' } });
    assert.equal(rotated.status, 201, JSON.stringify(rotated.body));
    const pending = rotated.body as DkimKey;
    assert.deepEqual([pending.domain, pending.algorithm, pending.state], ['shop.test', 'ed25519', 'pending']);
    assert.notEqual(pending.selector, key!.selector);
    assert.match(pending.record.value, /^v=DKIM1; k=ed25519; p=/);
    const defaulted = await api('POST', '/api/v1/domains/shop.test/dkim', { key: admin }); // no body: the defaults
    assert.deepEqual([defaulted.status, (defaulted.body as DkimKey).algorithm], [201, 'rsa']);
    const after = (await api('GET', '/api/v1/domains/shop.test', { key: admin })).body as DomainView;
    assert.deepEqual(after.dkim.map((k) => k.state).sort(), ['active', 'pending', 'pending']);
    assert.ok(after.records.some((r) => r.name === pending.record.name && r.value === pending.record.value));
    refused(await api('POST', '/api/v1/domains/nowhere.test/dkim', { key: admin, body: {} }), 404, 'not_found');

    // Not while an account uses it; then deleted with its keys (an API key limited to it is revoked).
    const shopKey = await newKey('--scope', 'admin', '--domain', 'shop.test');
    assert.equal((await api('POST', '/api/v1/accounts', { key: admin, body: { address: 'owner@shop.test', password: 'password123' } })).status, 201);
    refused(await api('DELETE', '/api/v1/domains/shop.test', { key: admin }), 409, 'conflict');
    assert.equal((await api('DELETE', '/api/v1/accounts/owner@shop.test', { key: admin })).status, 204);
    assert.equal((await api('DELETE', '/api/v1/domains/shop.test', { key: admin })).status, 204);
    refused(await api('GET', '/api/v1/domains/shop.test', { key: admin }), 404, 'not_found');
    refused(await api('DELETE', '/api/v1/domains/shop.test', { key: admin }), 404, 'not_found');
    refused(await api('GET', '/api/v1/domains', { key: shopKey }), 401, 'unauthorized');
    assert.doesNotMatch(await cli(['domain', 'list', ...site.args]), /shop\.test/);
  });

  it('creates accounts with a given or generated password that logs in, lists, changes and deletes them', async () => {
    const given = await api('POST', '/api/v1/accounts', {
      key: admin,
      body: { address: 'Carol@Example.test', password: 'carol-secret', quotaBytes: 1_000_000 },
    });
    assert.equal(given.status, 201, JSON.stringify(given.body));
    const carol = given.body as Account;
    assert.deepEqual([carol.address, carol.admin, carol.quotaBytes, carol.usedBytes, carol.messages], ['carol@example.test', false, 1_000_000, 0, 0]);
    assert.ok(!('password' in carol), 'a given password is not echoed');
    assert.ok(await imapLogin('carol@example.test', 'carol-secret'));

    const generated = await api('POST', '/api/v1/accounts', { key: admin, body: { address: 'dave@example.test' } });
    assert.equal(generated.status, 201, JSON.stringify(generated.body));
    const dave = generated.body as Account;
    assert.equal(dave.quotaBytes, null);
    assert.ok(dave.password && dave.password.length >= 16, 'a generated password, shown once');
    assert.ok(await imapLogin('dave@example.test', dave.password), 'the generated password logs in');
    const shown = (await api('GET', '/api/v1/accounts/dave@example.test', { key: admin })).body as Account;
    assert.ok(!('password' in shown));
    assert.equal(shown.address, 'dave@example.test');

    refused(await api('POST', '/api/v1/accounts', { key: admin, body: { address: 'dave@EXAMPLE.test' } }), 409, 'conflict');
    refused(
      await api('POST', '/api/v1/accounts', { key: admin, body: { address: 'erin@example.test', password: 'short' } }),
      400,
      'invalid_request',
      'password',
    );
    refused(await api('POST', '/api/v1/accounts', { key: admin, body: { address: 'erin@nowhere.test' } }), 404, 'not_found');
    refused(await api('POST', '/api/v1/accounts', { key: admin, body: { address: 'not-an-address' } }), 400, 'invalid_request');
    refused(
      await api('POST', '/api/v1/accounts', { key: admin, body: { address: 'erin@example.test', quotaBytes: -1 } }),
      400,
      'invalid_request',
      'quotaBytes',
    );

    const inDomain = (await api('GET', '/api/v1/accounts?domain=example.test', { key: admin })).body as Account[];
    assert.deepEqual(inDomain.map((a) => a.address).sort(), ['alice@example.test', 'bob@example.test', 'carol@example.test', 'dave@example.test']);
    assert.ok(inDomain.every((a) => !('password' in a)));
    const all = (await api('GET', '/api/v1/accounts', { key: admin })).body as Account[];
    assert.ok(all.some((a) => a.address === 'zed@other.test') && all.some((a) => a.address === 'admin@mx.example.test' && a.admin));
    refused(await api('GET', '/api/v1/accounts/nobody@example.test', { key: admin }), 404, 'not_found');

    // PATCH: quota, then the password (the old one stops working).
    const quota = await api('PATCH', '/api/v1/accounts/carol@example.test', { key: admin, body: { quotaBytes: 5000 } });
    assert.deepEqual([quota.status, (quota.body as Account).quotaBytes], [200, 5000]);
    const unlimited = await api('PATCH', '/api/v1/accounts/carol@example.test', { key: admin, body: { quotaBytes: null } });
    assert.equal((unlimited.body as Account).quotaBytes, null);
    const changed = await api('PATCH', '/api/v1/accounts/carol@example.test', { key: admin, body: { password: 'carol-second' } });
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    assert.ok(!('password' in (changed.body as Account)));
    assert.ok(await imapLogin('carol@example.test', 'carol-second'));
    assert.equal(await imapLogin('carol@example.test', 'carol-secret'), false, 'the old password no longer works');
    refused(await api('PATCH', '/api/v1/accounts/carol@example.test', { key: admin, body: {} }), 400, 'invalid_request');
    refused(await api('PATCH', '/api/v1/accounts/carol@example.test', { key: admin, body: { password: 'short' } }), 400, 'invalid_request', 'password');
    refused(await api('PATCH', '/api/v1/accounts/carol@example.test', { key: admin, body: { admin: true } }), 400, 'invalid_request', 'admin');
    refused(await api('PATCH', '/api/v1/accounts/nobody@example.test', { key: admin, body: { quotaBytes: 1 } }), 404, 'not_found');

    // A reset password is returned once and works.
    const reset = await api('POST', '/api/v1/accounts/carol@example.test/reset-password', { key: admin });
    assert.equal(reset.status, 200, JSON.stringify(reset.body));
    const { address, password } = reset.body as { address: string; password: string };
    assert.equal(address, 'carol@example.test');
    assert.ok(await imapLogin('carol@example.test', password));
    assert.equal(await imapLogin('carol@example.test', 'carol-second'), false);
    refused(await api('POST', '/api/v1/accounts/nobody@example.test/reset-password', { key: admin }), 404, 'not_found');

    for (const gone of ['carol@example.test', 'dave@example.test']) assert.equal((await api('DELETE', `/api/v1/accounts/${gone}`, { key: admin })).status, 204);
    refused(await api('GET', '/api/v1/accounts/carol@example.test', { key: admin }), 404, 'not_found');
    refused(await api('DELETE', '/api/v1/accounts/carol@example.test', { key: admin }), 404, 'not_found');
    assert.equal(await imapLogin('dave@example.test', dave.password), false, 'a deleted account cannot log in');
  });

  it('adds aliases to local targets, lists them by domain, deletes one target or the whole alias', async () => {
    const made = await api('POST', '/api/v1/aliases', {
      key: admin,
      body: { source: 'Team@example.test', targets: ['alice@example.test', 'BOB@example.test'] },
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    assert.deepEqual(made.body, { source: 'team@example.test', targets: ['alice@example.test', 'bob@example.test'] });
    assert.equal((await api('POST', '/api/v1/aliases', { key: admin, body: { source: 'help@other.test', targets: ['zed@other.test'] } })).status, 201);
    refused(await api('POST', '/api/v1/aliases', { key: admin, body: { source: 'team@example.test', targets: ['alice@example.test'] } }), 409, 'conflict');
    refused(await api('POST', '/api/v1/aliases', { key: admin, body: { source: 'out@example.test', targets: ['far@remote.test'] } }), 400, 'invalid_request');
    refused(await api('POST', '/api/v1/aliases', { key: admin, body: { source: 'out@example.test', targets: [] } }), 400, 'invalid_request', 'targets');

    const team = async () =>
      ((await api('GET', '/api/v1/aliases?domain=example.test', { key: admin })).body as Array<{ address: string; target: string }>).filter(
        (r) => r.address === 'team@example.test',
      );
    assert.deepEqual((await team()).map((r) => r.target).sort(), ['alice@example.test', 'bob@example.test']);
    const inExample = (await api('GET', '/api/v1/aliases?domain=example.test', { key: admin })).body as Array<{ address: string }>;
    assert.ok(!inExample.some((r) => r.address === 'help@other.test'), 'only the domain asked for');
    const everything = (await api('GET', '/api/v1/aliases', { key: admin })).body as Array<{ address: string }>;
    assert.ok(everything.some((r) => r.address === 'help@other.test') && everything.some((r) => r.address === 'team@example.test'));

    assert.equal((await api('DELETE', '/api/v1/aliases/team@example.test?target=bob@example.test', { key: admin })).status, 204);
    assert.deepEqual(
      (await team()).map((r) => r.target),
      ['alice@example.test'],
    );
    refused(await api('DELETE', '/api/v1/aliases/team@example.test?target=bob@example.test', { key: admin }), 404, 'not_found');
    assert.equal((await api('DELETE', '/api/v1/aliases/team@example.test', { key: admin })).status, 204);
    assert.deepEqual(await team(), []);
    refused(await api('DELETE', '/api/v1/aliases/team@example.test', { key: admin }), 404, 'not_found');
    assert.equal((await api('DELETE', '/api/v1/aliases/help@other.test', { key: admin })).status, 204);
  });

  it('keeps a key limited to a domain inside it', async () => {
    const domains = (await api('GET', '/api/v1/domains', { key: domainAdmin })).body as Array<{ name: string }>;
    assert.deepEqual(
      domains.map((d) => d.name),
      ['example.test'],
    );
    assert.equal((await api('GET', '/api/v1/domains/example.test', { key: domainAdmin })).status, 200);
    refused(await api('GET', '/api/v1/domains/other.test', { key: domainAdmin }), 404, 'not_found');
    refused(await api('POST', '/api/v1/domains', { key: domainAdmin, body: { name: 'mine.test' } }), 403, 'forbidden');
    refused(await api('DELETE', '/api/v1/domains/example.test', { key: domainAdmin }), 403, 'forbidden');

    const accounts = (await api('GET', '/api/v1/accounts', { key: domainAdmin })).body as Account[];
    assert.ok(accounts.length > 0 && accounts.every((a) => a.address.endsWith('@example.test')));
    refused(await api('GET', '/api/v1/accounts?domain=other.test', { key: domainAdmin }), 403, 'forbidden');
    refused(await api('GET', '/api/v1/accounts/zed@other.test', { key: domainAdmin }), 404, 'not_found');
    refused(await api('PATCH', '/api/v1/accounts/zed@other.test', { key: domainAdmin, body: { password: 'taken-over' } }), 404, 'not_found');
    refused(await api('POST', '/api/v1/accounts', { key: domainAdmin, body: { address: 'new@other.test' } }), 403, 'forbidden');
    refused(await api('POST', '/api/v1/accounts', { key: domainAdmin, body: { address: 'boss@example.test', admin: true } }), 403, 'forbidden');
    const own = await api('POST', '/api/v1/accounts', { key: domainAdmin, body: { address: 'frank@example.test' } });
    assert.equal(own.status, 201, JSON.stringify(own.body));
    assert.equal((await api('DELETE', '/api/v1/accounts/frank@example.test', { key: domainAdmin })).status, 204);

    // A site administrator in its domain is not its to take over or remove.
    assert.equal((await api('POST', '/api/v1/accounts', { key: admin, body: { address: 'root@example.test', admin: true } })).status, 201);
    assert.equal((await api('GET', '/api/v1/accounts/root@example.test', { key: domainAdmin })).status, 200);
    refused(await api('PATCH', '/api/v1/accounts/root@example.test', { key: domainAdmin, body: { password: 'taken-over' } }), 403, 'forbidden');
    refused(await api('POST', '/api/v1/accounts/root@example.test/reset-password', { key: domainAdmin }), 403, 'forbidden');
    refused(await api('PATCH', '/api/v1/accounts/root@example.test', { key: domainAdmin, body: { quotaBytes: 0 } }), 403, 'forbidden');
    assert.equal(await imapLogin('root@example.test', 'taken-over'), false);
    refused(await api('DELETE', '/api/v1/accounts/root@example.test', { key: domainAdmin }), 403, 'forbidden');
    assert.equal((await api('DELETE', '/api/v1/accounts/root@example.test', { key: admin })).status, 204);

    refused(await api('POST', '/api/v1/aliases', { key: domainAdmin, body: { source: 'x@other.test', targets: ['zed@other.test'] } }), 403, 'forbidden');
    refused(await api('GET', '/api/v1/aliases?domain=other.test', { key: domainAdmin }), 403, 'forbidden');
    refused(await api('GET', '/api/v1/queue', { key: domainAdmin }), 403, 'forbidden');
    refused(await api('POST', '/api/v1/queue/retry', { key: domainAdmin, body: { all: true } }), 403, 'forbidden');
  });

  it('lists, traces, holds, releases and deletes a queued message', async () => {
    sink.rcpt = (address) => (address.endsWith('@stuck.test') ? { code: 451, message: '4.3.0 Try again later' } : null);
    const sent = await api('POST', '/api/v1/messages', {
      key: sender,
      body: { from: 'alice@example.test', to: 'someone@stuck.test', subject: 'stuck', text: 'x' },
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    const ternId = (sent.body as { id: string }).id;

    // Wait for the first attempt to be deferred, so what follows does not race it.
    let entry: QueueEntry | undefined;
    for (let i = 0; i < 100; i++) {
      const page = (await api('GET', '/api/v1/queue?domain=stuck.test', { key: admin })).body as QueueEntry[];
      entry = page.find((e) => e.ternId === ternId);
      if (entry && entry.attempts > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(entry && entry.attempts > 0, 'deferred once');
    assert.deepEqual([entry.domain, entry.state, entry.envelopeFrom], ['stuck.test', 'queued', 'alice@example.test']);
    assert.deepEqual(
      entry.recipients.map((r) => [r.address, r.status]),
      [['someone@stuck.test', 'pending']],
    );
    assert.match(entry.recipients[0]!.reply!, /^451 /);
    const id = entry.id;
    const ids = async (query: string) => ((await api('GET', `/api/v1/queue?${query}`, { key: admin })).body as QueueEntry[]).map((e) => e.id);
    assert.deepEqual(await ids('domain=stuck.test&state=queued'), [id]);
    assert.deepEqual(await ids('domain=stuck.test&state=held'), []);
    assert.deepEqual(await ids('domain=elsewhere.test'), []);
    refused(await api('GET', '/api/v1/queue?state=lost', { key: admin }), 400, 'invalid_request', 'state');

    const shown = await api('GET', `/api/v1/queue/${id}`, { key: admin });
    assert.equal(shown.status, 200);
    assert.deepEqual(
      (shown.body as QueueEntry).events!.map((e) => e.event),
      ['queued', 'deferred'],
    );

    assert.deepEqual((await api('POST', '/api/v1/queue/hold', { key: admin, body: { ids: [id] } })).body, { count: 1 });
    assert.equal(((await api('GET', `/api/v1/queue/${id}`, { key: admin })).body as QueueEntry).state, 'held');
    assert.deepEqual(await ids('domain=stuck.test&state=held'), [id]);
    assert.deepEqual((await api('POST', '/api/v1/queue/hold', { key: admin, body: { ids: [id] } })).body, { count: 0 }, 'already held');
    assert.deepEqual((await api('POST', '/api/v1/queue/release', { key: admin, body: { ids: [id] } })).body, { count: 1 });
    const released = (await api('GET', `/api/v1/queue/${id}`, { key: admin })).body as QueueEntry;
    assert.equal(released.state, 'queued');
    assert.deepEqual(released.events!.map((e) => e.event).slice(0, 4), ['queued', 'deferred', 'held', 'released']);

    for (const body of [{}, undefined]) {
      const unnamed = await api('POST', '/api/v1/queue/retry', { key: admin, body });
      refused(unnamed, 400, 'invalid_request');
      assert.match(errorOf(unnamed).message, /name queue ids, a filter .* or all/);
    }
    refused(await api('POST', '/api/v1/queue/bury', { key: admin, body: { all: true } }), 400, 'invalid_request');
    refused(await api('POST', '/api/v1/queue/hold', { key: admin, body: { ids: [id], colour: 'red' } }), 400, 'invalid_request', 'colour');

    assert.equal((await api('DELETE', `/api/v1/queue/${id}`, { key: admin })).status, 204);
    refused(await api('GET', `/api/v1/queue/${id}`, { key: admin }), 404, 'not_found');
    refused(await api('DELETE', `/api/v1/queue/${id}`, { key: admin }), 404, 'not_found');
    refused(await api('GET', '/api/v1/queue/abc', { key: admin }), 400, 'invalid_request');
    assert.deepEqual(await ids('domain=stuck.test'), []);
    assert.ok(!sink.messages.some((m) => m.to.includes('someone@stuck.test')), 'never delivered');
    sink.rcpt = () => null;
  });

  it('refuses keys without the admin scope and requests without a key', async () => {
    const routes: Array<[string, string, unknown?]> = [
      ['GET', '/api/v1/domains'],
      ['POST', '/api/v1/domains', { name: 'sneaky.test' }],
      ['GET', '/api/v1/domains/example.test'],
      ['POST', '/api/v1/domains/example.test/dkim', {}],
      ['DELETE', '/api/v1/domains/other.test'],
      ['GET', '/api/v1/accounts'],
      ['POST', '/api/v1/accounts', { address: 'sneaky@example.test' }],
      ['PATCH', '/api/v1/accounts/alice@example.test', { password: 'taken-over' }],
      ['POST', '/api/v1/accounts/alice@example.test/reset-password'],
      ['DELETE', '/api/v1/accounts/bob@example.test'],
      ['GET', '/api/v1/aliases'],
      ['POST', '/api/v1/aliases', { source: 'x@example.test', targets: ['alice@example.test'] }],
      ['DELETE', '/api/v1/aliases/x@example.test'],
      ['GET', '/api/v1/queue'],
      ['GET', '/api/v1/queue/1'],
      ['POST', '/api/v1/queue/retry', { all: true }],
      ['DELETE', '/api/v1/queue/1'],
    ];
    for (const [method, path, body] of routes) {
      const what = `${method} ${path}`;
      const withSend = await api(method, path, { key: sender, body });
      assert.deepEqual([withSend.status, errorOf(withSend).code], [403, 'forbidden'], what);
      const withNone = await api(method, path, { body });
      assert.deepEqual([withNone.status, errorOf(withNone).code], [401, 'unauthorized'], what);
    }
    // Nothing changed.
    assert.equal((await api('GET', '/api/v1/accounts/bob@example.test', { key: admin })).status, 200);
    assert.ok(await imapLogin('alice@example.test', 'password123'));

    const doc = (await api('GET', '/api/openapi.json')).body as { paths: Record<string, unknown> };
    for (const path of ['/api/v1/domains', '/api/v1/domains/{name}/dkim', '/api/v1/accounts/{address}', '/api/v1/aliases/{source}', '/api/v1/queue/{id}'])
      assert.ok(doc.paths[path], path);
  });
});
