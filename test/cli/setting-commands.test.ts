/**
 * `tern setting list|get|set|del` as operators use it, with `--json`, the clear one-line
 * refusals of bad values and internal keys, and `tern serve` starting with what was set.
 * `tern route` goes through the same service layer and keeps its messages.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cli, createSite, runCli, startTern } from '../helpers/tern.js';

interface SettingJson {
  key: string;
  value: string | null;
  unset: string;
  flag: string;
  takesEffect: string;
}

function assertUserError(r: { code: number | null; stderr: string }, pattern: RegExp): void {
  assert.notEqual(r.code, 0, 'non-zero exit');
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

describe('tern setting', { timeout: 60_000 }, () => {
  it('sets, gets, lists and deletes settings, and refuses bad values and internal keys', async () => {
    const site = await createSite();
    const a = site.args;
    const list = async () => JSON.parse(await cli(['setting', 'list', '--json', ...a])) as SettingJson[];
    assert.deepEqual(
      (await list()).map((s) => [s.key, s.value]),
      [
        ['smarthost', null],
        ['trusted_networks', null],
        ['dnsbl', null],
        ['rspamd', null],
        ['dmarc_reports', null],
        ['portal_idle_timeout', null],
        ['backup_dir', null],
        ['backup_interval', null],
        ['backup_keep', null],
      ],
    );
    assert.equal(await cli(['setting', 'get', 'smarthost', ...a]), '(not set: MX lookup)\n');

    assert.match(await cli(['setting', 'set', 'smarthost', 'Relay.Example.test:587', ...a]), /^smarthost = relay\.example\.test:587 \(.*restart/);
    assert.match(await cli(['setting', 'set', 'smarthost', 'relay.example.test:587', ...a]), /^smarthost is already relay\.example\.test:587$/m);
    assert.equal(await cli(['setting', 'get', 'smarthost', ...a]), 'relay.example.test:587\n');
    await cli(['setting', 'set', 'trusted_networks', '10.0.0.0/8, 192.0.2.1', ...a]);
    await cli(['setting', 'set', 'dnsbl', 'bl.example.test', ...a]);
    await cli(['setting', 'set', 'dmarc_reports', 'reports@example.test', ...a]);
    const got = JSON.parse(await cli(['setting', 'get', 'trusted_networks', '--json', ...a])) as SettingJson;
    assert.deepEqual([got.value, got.flag, got.takesEffect], ['10.0.0.0/8,192.0.2.1', '--trusted-networks', 'start']);
    const table = await cli(['setting', 'list', ...a]);
    assert.match(table, /^KEY +VALUE +UNSET MEANS$/m);
    assert.match(table, /^rspamd +- +no spam filter$/m);

    assert.match(await cli(['setting', 'del', 'dnsbl', ...a]), /^dnsbl removed \(was bl\.example\.test\)/);
    assert.equal((await list()).find((s) => s.key === 'dnsbl')!.value, null);

    assertUserError(
      await runCli(['setting', 'set', 'smarthost', 'relay.example', ...a]),
      /^tern: setting smarthost: expected HOST:PORT, got "relay.example"\n$/,
    );
    assertUserError(await runCli(['setting', 'set', 'trusted_networks', '10.0.0.0/33', ...a]), /^tern: setting trusted_networks: "10.0.0.0\/33" is not/);
    assertUserError(await runCli(['setting', 'set', 'rspamd', 'rspamd:11333', ...a]), /^tern: setting rspamd: expected http:\/\/HOST:PORT/);
    assertUserError(await runCli(['setting', 'set', 'dmarc_reports', 'nobody', ...a]), /^tern: setting dmarc_reports: expected the address/);
    assertUserError(await runCli(['setting', 'set', 'hostname', 'evil.test', ...a]), /^tern: unknown setting "hostname" \(editable: smarthost, /);
    assertUserError(await runCli(['setting', 'get', 'initialized_at', ...a]), /unknown setting "initialized_at"/);
    assertUserError(await runCli(['setting', 'del', 'dnsbl', ...a]), /^tern: setting dnsbl is not set\n$/);
    assert.equal(await cli(['setting', 'get', 'smarthost', ...a]), 'relay.example.test:587\n', 'a refused value changes nothing');
    assert.match(await cli(['setting', '--help']), /trusted_networks +clients that skip the MX checks/);

    // Routes: the same messages through admin/routes.ts.
    assert.match(await cli(['route', 'add', 'Partner.test', '10.0.0.5:25', ...a]), /^mail for partner\.test goes to 10\.0\.0\.5:25$/m);
    assert.deepEqual(JSON.parse(await cli(['route', 'list', '--json', ...a])), [{ domain: 'partner.test', target: '10.0.0.5:25' }]);
    assertUserError(await runCli(['route', 'add', 'x.test', 'nowhere', ...a]), /route: expected HOST:PORT/);
    assert.match(await cli(['route', 'del', 'partner.test', ...a]), /route of partner\.test removed/);
    assertUserError(await runCli(['route', 'del', 'partner.test', ...a]), /partner\.test has no route/);

    // tern serve starts with the settings (the smarthost is read at start; no flag overrides it).
    const tern = await startTern(site);
    assert.equal(await tern.stop(), 0, tern.output());
  });
});
