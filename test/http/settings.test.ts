/**
 * Site settings over real HTTP against `tern serve`: list, get, put (validated, 400 with
 * the reason), delete, the same store as `tern setting`; only whole-site admin keys (a key
 * limited to a domain and a send key get 403, no key 401); the routes are in the OpenAPI
 * document.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { cli, createSite, freePort, startTern, type Site, type TernServer } from '../helpers/tern.js';
import { callApi, createApiKey } from '../helpers/http-api.js';

interface Setting {
  key: string;
  value: string | null;
  unset: string;
  flag: string;
  takesEffect: string;
}

describe('HTTP settings API', { timeout: 60_000 }, () => {
  let site: Site;
  let tern: TernServer;
  let base: string;
  let admin: string;
  let domainAdmin: string;
  let sender: string;

  const api = (method: string, path: string, o: Parameters<typeof callApi>[3] = {}) => callApi(base, method, path, o);
  const newKey = (...args: string[]) => createApiKey(site, ...args);
  const errorOf = (r: { body: unknown }) => (r.body as { error: { code: string; message: string } }).error;

  before(async () => {
    site = await createSite();
    admin = await newKey('--scope', 'admin');
    domainAdmin = await newKey('--scope', 'admin', '--domain', 'example.test');
    sender = await newKey('--scope', 'send,read');
    const httpPort = await freePort();
    base = `http://127.0.0.1:${httpPort}`;
    tern = await startTern(site, ['--http-port', String(httpPort)]);
  });
  after(async () => {
    await tern?.stop();
  });

  it('lists, gets, sets (validated) and deletes settings, for site-wide admin keys only', async () => {
    const list = await api('GET', '/api/v1/settings', { key: admin });
    assert.equal(list.status, 200);
    assert.deepEqual(
      (list.body as Setting[]).map((s) => [s.key, s.value, s.takesEffect]),
      [
        ['smarthost', null, 'start'],
        ['trusted_networks', null, 'start'],
        ['dnsbl', null, 'start'],
        ['rspamd', null, 'start'],
        ['dmarc_reports', null, 'start'],
        ['portal_idle_timeout', null, 'minute'],
        ['backup_dir', null, 'minute'],
        ['backup_interval', null, 'minute'],
        ['backup_keep', null, 'minute'],
      ],
    );

    const put = await api('PUT', '/api/v1/settings/smarthost', { key: admin, body: { value: 'Relay.Example.test:587' } });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual(
      [(put.body as Setting).value, (put.body as Setting).flag, (put.body as Setting).unset],
      ['relay.example.test:587', '--smarthost', 'MX lookup'],
    );
    assert.equal(((await api('GET', '/api/v1/settings/smarthost', { key: admin })).body as Setting).value, 'relay.example.test:587');
    assert.equal(await cli(['setting', 'get', 'smarthost', ...site.args]), 'relay.example.test:587\n', 'the CLI reads what the API stored');

    const bad = await api('PUT', '/api/v1/settings/trusted_networks', { key: admin, body: { value: '10.0.0.0/33' } });
    assert.equal(bad.status, 400);
    assert.deepEqual(errorOf(bad), { code: 'invalid_request', message: 'setting trusted_networks: "10.0.0.0/33" is not an address or a CIDR range' });
    assert.equal((await api('PUT', '/api/v1/settings/smarthost', { key: admin, body: {} })).status, 400);
    assert.equal((await api('PUT', '/api/v1/settings/smarthost', { key: admin, body: { value: 'a.test:25', extra: 1 } })).status, 400);
    const unknown = await api('PUT', '/api/v1/settings/hostname', { key: admin, body: { value: 'evil.test' } });
    assert.equal(unknown.status, 404);
    assert.match(errorOf(unknown).message, /unknown setting "hostname" \(editable: smarthost/);

    // Keys that do not manage the whole site.
    for (const [method, body] of [
      ['GET', undefined],
      ['PUT', { value: 'x.test:25' }],
      ['DELETE', undefined],
    ] as const) {
      const limited = await api(method, '/api/v1/settings/smarthost', { key: domainAdmin, body });
      assert.equal(limited.status, 403, `${method} with a key limited to a domain`);
      assert.match(errorOf(limited).message, /limited to example\.test/);
      assert.equal((await api(method, '/api/v1/settings/smarthost', { key: sender, body })).status, 403, `${method} with a send key`);
      assert.equal((await api(method, '/api/v1/settings/smarthost', { body })).status, 401, `${method} without a key`);
    }
    assert.equal((await api('GET', '/api/v1/settings', { key: domainAdmin })).status, 403);

    assert.equal((await api('DELETE', '/api/v1/settings/smarthost', { key: admin })).status, 204);
    const again = await api('DELETE', '/api/v1/settings/smarthost', { key: admin });
    assert.equal(again.status, 404);
    assert.equal(errorOf(again).message, 'setting smarthost is not set');
    assert.equal(((await api('GET', '/api/v1/settings/smarthost', { key: admin })).body as Setting).value, null);

    const doc = (await api('GET', '/api/openapi.json')).body as { paths: Record<string, Record<string, { tags?: string[] }>> };
    assert.deepEqual(Object.keys(doc.paths['/api/v1/settings/{key}'] ?? {}).sort(), ['delete', 'get', 'put']);
    assert.deepEqual(doc.paths['/api/v1/settings']?.get?.tags, ['settings']);
  });
});
