/**
 * The settings validators (what `tern setting set`, the API and `tern config apply` accept
 * and store) and the config file reader: every mistake of a file reported with its line,
 * sections left out kept apart from empty ones, and export text read back as it was.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigFileError, formatSiteConfig, parseSiteConfig } from '../../src/admin/config-file.js';
import { settingSpec, SETTINGS, validateSetting } from '../../src/admin/settings.js';
import { NotFoundError, UserError } from '../../src/errors.js';

describe('settings validators', () => {
  it('stores good values in their normal form', () => {
    assert.equal(validateSetting('smarthost', ' Relay.Example.NET:587 '), 'relay.example.net:587');
    assert.equal(validateSetting('smarthost', '[::1]:2525'), '[::1]:2525');
    assert.equal(validateSetting('smarthost', 'NONE'), 'none');
    assert.equal(validateSetting('trusted_networks', '10.0.0.0/8, ::1/128,192.0.2.7'), '10.0.0.0/8,::1/128,192.0.2.7');
    assert.equal(validateSetting('trusted_networks', 'None'), 'none');
    assert.equal(validateSetting('dnsbl', 'Zen.Spamhaus.org, bl.example.test'), 'zen.spamhaus.org,bl.example.test');
    assert.equal(validateSetting('rspamd', 'http://127.0.0.1:11333'), 'http://127.0.0.1:11333');
    assert.equal(validateSetting('dmarc_reports', 'Reports@Example.test'), 'reports@example.test');
    assert.equal(validateSetting('dmarc_reports', 'off'), 'off');
    assert.equal(validateSetting('SmartHost', 'a.test:25'), 'a.test:25', 'keys are not case-sensitive');
  });

  it('refuses bad values with a message naming the setting', () => {
    const refused: Array<[string, string, RegExp]> = [
      ['smarthost', 'relay.example', /^setting smarthost: expected HOST:PORT, got "relay.example"$/],
      ['smarthost', 'relay.example:99999', /^setting smarthost: must be between 0 and 65535/],
      ['smarthost', 'relay.example:0', /^setting smarthost: the port must not be 0$/],
      ['trusted_networks', '10.0.0.0/33', /^setting trusted_networks: "10.0.0.0\/33" is not an address or a CIDR range$/],
      ['trusted_networks', ',', /^setting trusted_networks: give CIDR ranges/],
      ['dnsbl', 'bad zone', /^setting dnsbl: "bad zone" is not a zone name$/],
      ['dnsbl', ' , ', /^setting dnsbl: give zone names/],
      ['rspamd', 'localhost:11333', /^setting rspamd: expected http:\/\/HOST:PORT/],
      ['dmarc_reports', 'not an address', /^setting dmarc_reports: expected the address reports come from, or off/],
      ['smarthost', 'x'.repeat(5000), /at most 4096 characters/],
    ];
    for (const [key, value, message] of refused) {
      assert.throws(
        () => validateSetting(key, value),
        (err: unknown) => err instanceof UserError && message.test(err.message),
        `${key}=${value.slice(0, 40)}`,
      );
    }
  });

  it('knows only the editable keys', () => {
    assert.deepEqual(
      SETTINGS.map((s) => s.key),
      ['smarthost', 'trusted_networks', 'dnsbl', 'rspamd', 'dmarc_reports', 'portal_idle_timeout', 'backup_dir', 'backup_interval', 'backup_keep'],
    );
    for (const internal of ['hostname', 'initialized_at', 'route:example.test', 'warmup:example.test', 'acme_challenge:x', 'mta-sts:example.test']) {
      assert.throws(
        () => settingSpec(internal),
        (err: unknown) => err instanceof NotFoundError && /unknown setting .* \(editable: smarthost, trusted_networks/.test(err.message),
      );
    }
  });
});

describe('config file', () => {
  it('reads a file into its sections, normalized, and writes it back the same', () => {
    const text = `version: 1
domains:
  - name: Example.TEST
    policy: { greylist: true }
  - other.test
accounts:
  - { address: Alice@Example.test, quota: 2M }
  - address: boss@example.test
    admin: true
    password_hash: $scrypt$N=16384,r=8,p=1$c2FsdA==$aGFzaA==
aliases:
  team@example.test: [bob@example.test, alice@example.test]
  "@other.test": alice@example.test
settings:
  smarthost: relay.test:25
`;
    const c = parseSiteConfig(text, 'site.yaml');
    assert.deepEqual(
      c.domains?.map((d) => [d.name, d.policy.greylist, d.policy.dmarc, d.line]),
      [
        ['example.test', true, 'enforce', 3],
        ['other.test', false, 'enforce', 5],
      ],
    );
    assert.deepEqual(
      c.accounts?.map((a) => [a.address, a.admin, a.quotaBytes, a.passwordHash ?? null]),
      [
        ['alice@example.test', false, 2 * 1024 * 1024, null],
        ['boss@example.test', true, null, '$scrypt$N=16384,r=8,p=1$c2FsdA==$aGFzaA=='],
      ],
    );
    assert.deepEqual(
      c.aliases?.map((a) => [a.source, a.targets]),
      [
        ['team@example.test', ['alice@example.test', 'bob@example.test']],
        ['@other.test', ['alice@example.test']],
      ],
    );
    assert.deepEqual([...c.settings!], [['smarthost', 'relay.test:25']]);
    assert.equal(c.routes, null, 'a section left out is null, not empty');

    const full = { domains: c.domains, accounts: c.accounts, aliases: c.aliases, settings: c.settings!, routes: [] };
    const written = formatSiteConfig(full);
    assert.match(written, /^version: 1\n/);
    const again = parseSiteConfig(written, 'again.yaml');
    assert.equal(formatSiteConfig({ ...full, ...again, routes: [] } as typeof full), written);
  });

  it('reports every mistake with its line, and nothing else', () => {
    const text = `version: 1
domains:
  - name: bad domain
  - name: fine.test
    colour: blue
    policy: { dmarc: sometimes }
accounts:
  - address: not-an-address
  - { address: a@fine.test, quota: lots, admin: maybe }
  - { address: b@fine.test, password_hash: hunter2 }
aliases:
  x@fine.test: []
settings:
  smarthost: relay
  bogus: 1
routes:
  p.test: nowhere
extra: true
`;
    assert.throws(
      () => parseSiteConfig(text, 'bad.yaml'),
      (err: unknown) => {
        assert.ok(err instanceof ConfigFileError);
        const lines = err.message.split('\n');
        assert.deepEqual(
          lines.map((l) => /^bad\.yaml:(\d+): /.exec(l)?.[1]),
          ['3', '5', '6', '8', '9', '9', '10', '12', '14', '15', '17', '18'],
          err.message,
        );
        assert.match(err.message, /bad\.yaml:5: domain: unknown key "colour"/);
        assert.match(err.message, /bad\.yaml:6: inbound policy: dmarc is enforce or monitor/);
        assert.match(err.message, /bad\.yaml:15: unknown setting "bogus"/);
        assert.match(err.message, /bad\.yaml:18: unknown key "extra"/);
        return true;
      },
    );
    assert.throws(() => parseSiteConfig('domains: []\n', 'f.yaml'), /f\.yaml:1: version: missing/);
    assert.throws(() => parseSiteConfig('version: 2\n', 'f.yaml'), /f\.yaml:1: version: expected 1/);
    assert.throws(() => parseSiteConfig('version: 1\ndomains: [a\n', 'f.yaml'), /f\.yaml:\d+: Flow sequence/);
    assert.throws(() => parseSiteConfig('version: 1\nsettings:\n  dnsbl: a.test\n  dnsbl: b.test\n', 'f.yaml'), /f\.yaml:4: Map keys must be unique/);
    assert.throws(() => parseSiteConfig('- 1\n', 'f.yaml'), /f\.yaml:1: expected a mapping/);
  });
});
