/**
 * `tern config export|apply` as operators use it: a site exported and applied to a fresh
 * data dir exports the same (with generated passwords printed once, or the hashes carried
 * over), a second apply changes nothing, --dry-run changes nothing, a bad file is refused
 * whole with its line numbers, and --prune removes what the file does not name (and is
 * refused when a pruned domain would keep accounts).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { cli, createSite, runCli, tempDir } from '../helpers/tern.js';

interface SiteFile {
  version: number;
  domains: Array<{ name: string; policy: Record<string, unknown> }>;
  accounts: Array<{ address: string; admin: boolean; quota: number | string; password_hash?: string }>;
  aliases: Record<string, string[]>;
  settings: Record<string, string>;
  routes: Record<string, string>;
}

describe('tern config', { timeout: 90_000, concurrency: 2 }, () => {
  it('exports a site, applies it to a fresh data dir (round trip), idempotently, and --dry-run changes nothing', async () => {
    const site = await createSite();
    const a = site.args;
    await cli(['domain', 'add', 'other.test', '--dkim', 'none', ...a]);
    await cli(['domain', 'policy', 'other.test', '--greylist', 'on', '--spf', 'reject', ...a]);
    await cli(['user', 'add', 'carol@other.test', '--quota', '2M', '--admin', ...a]);
    await cli(['alias', 'add', 'team@example.test', 'bob@example.test', 'alice@example.test', ...a]);
    await cli(['alias', 'add', '@other.test', 'carol@other.test', ...a]);
    await cli(['setting', 'set', 'smarthost', 'relay.example.test:587', ...a]);
    await cli(['setting', 'set', 'trusted_networks', '10.0.0.0/8', ...a]);
    await cli(['route', 'add', 'partner.test', '192.0.2.10:25', ...a]);

    const dir = tempDir();
    const file = join(dir, 'site.yaml');
    assert.match(await cli(['config', 'export', file, ...a]), /site written to/);
    const text = readFileSync(file, 'utf8');
    assert.equal(await cli(['config', 'export', '-', ...a]), text, '- writes the same to stdout');
    assert.match(text, /^version: 1\n/);
    const exported = parse(text) as SiteFile;
    assert.deepEqual(
      exported.domains.map((d) => d.name),
      ['example.test', 'mx.example.test', 'other.test'],
    );
    assert.deepEqual(exported.domains[2]!.policy, { dmarc: 'enforce', spf: 'reject', greylist: true, mtaSts: 'testing' });
    assert.deepEqual(
      exported.accounts.find((x) => x.address === 'carol@other.test'),
      { address: 'carol@other.test', admin: true, quota: 2097152 },
    );
    assert.ok(!text.includes('scrypt'), 'no password hashes unless asked');
    assert.deepEqual(exported.aliases['team@example.test'], ['alice@example.test', 'bob@example.test']);
    assert.deepEqual(exported.settings, { smarthost: 'relay.example.test:587', trusted_networks: '10.0.0.0/8' });
    assert.deepEqual(exported.routes, { 'partner.test': '192.0.2.10:25' });

    // A fresh data dir: --dry-run prints the changes and makes none.
    const fresh = ['--data', tempDir()];
    const dry = await cli(['config', 'apply', file, '--dry-run', ...fresh]);
    assert.match(dry, /^\+ domain example\.test$/m);
    assert.match(dry, /^~ domain other\.test policy: spf monitor -> reject, greylist false -> true$/m);
    assert.match(dry, /^\+ account carol@other\.test \(admin true, quota 2097152, a password is generated\)$/m);
    assert.match(dry, /^\+ alias team@example\.test -> bob@example\.test$/m);
    assert.match(dry, /^\+ setting smarthost: relay\.example\.test:587$/m);
    assert.match(dry, /^\+ route partner\.test: 192\.0\.2\.10:25$/m);
    assert.match(dry, /^dry run: 15 change\(s\) not made$/m);
    const fromStdin = await runCli(['config', 'apply', '-', '--dry-run', ...fresh], { input: text });
    assert.equal(fromStdin.stdout, dry, '- reads the file from stdin');
    const empty = parse(await cli(['config', 'export', '-', ...fresh])) as SiteFile;
    assert.deepEqual([empty.domains, empty.accounts, empty.settings], [[], [], {}]);

    const applied = await cli(['config', 'apply', file, ...fresh]);
    assert.equal(
      applied
        .split('\n')
        .filter((l) => /^[+~-] /.test(l))
        .join('\n'),
      dry
        .split('\n')
        .filter((l) => /^[+~-] /.test(l))
        .join('\n'),
    );
    assert.match(applied, /^ {2}password of alice@example\.test \(shown once\): \S{12,}$/m);
    assert.match(applied, /^15 change\(s\) made$/m);
    assert.equal(await cli(['config', 'export', '-', ...fresh]), text, 'round trip');
    assert.equal(await cli(['config', 'apply', file, ...fresh]), 'no changes: the site matches the file\n');

    // Password hashes carried over: accounts a site creates from the file get the same hashes;
    // accounts that exist keep theirs (a user's own change is never undone by the next apply).
    const withHashes = join(dir, 'hashes.yaml');
    await cli(['config', 'export', withHashes, '--password-hashes', ...a]);
    assert.equal(await cli(['config', 'apply', withHashes, ...fresh]), 'no changes: the site matches the file\n');
    const another = ['--data', tempDir()];
    assert.doesNotMatch(await cli(['config', 'apply', withHashes, ...another]), /shown once/);
    assert.equal(await cli(['config', 'export', '-', '--password-hashes', ...another]), readFileSync(withHashes, 'utf8'));
    assert.equal(await cli(['config', 'apply', withHashes, ...another]), 'no changes: the site matches the file\n');
  });

  it('refuses a bad file whole, with line numbers, and --prune removes what the file does not name', async () => {
    const site = await createSite();
    const a = site.args;
    await cli(['domain', 'add', 'other.test', '--dkim', 'none', ...a]);
    await cli(['user', 'add', 'carol@other.test', ...a]);
    await cli(['alias', 'add', 'team@example.test', 'alice@example.test', 'carol@other.test', ...a]);
    await cli(['setting', 'set', 'dnsbl', 'bl.example.test', ...a]);
    await cli(['route', 'add', 'partner.test', '192.0.2.10:25', ...a]);
    const before = await cli(['config', 'export', '-', ...a]);
    const dir = tempDir();

    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      `version: 1
domains:
  - name: new.test
accounts:
  - address: dave@new.test
    quota: plenty
settings:
  smarthost: relay
`,
    );
    const r1 = await runCli(['config', 'apply', bad, ...a]);
    assert.equal(r1.code, 1);
    assert.equal(
      r1.stderr,
      `tern: ${bad}:6: account quota: expected a size like 25M, 512k or 1048576, got "plenty"\n${bad}:8: setting smarthost: expected HOST:PORT, got "relay"\n`,
    );
    // A file that reads well but does not fit the site: checked before any change too.
    writeFileSync(bad, 'version: 1\ndomains: [new.test]\naccounts:\n  - address: eve@elsewhere.test\naliases:\n  x@new.test: [y@remote.test]\n');
    const r2 = await runCli(['config', 'apply', bad, ...a]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, new RegExp(`^tern: ${bad}:4: account eve@elsewhere\\.test: domain elsewhere\\.test is not hosted`));
    assert.match(r2.stderr, new RegExp(`\\n${bad}:6: alias x@new\\.test: target y@remote\\.test is not in a hosted domain\\n$`));
    assert.equal(await cli(['config', 'export', '-', ...a]), before, 'nothing was applied');

    // --prune: other.test and what is in it go, as do the setting and the route; alice's quota changes.
    const file = parse(before) as SiteFile;
    file.domains = file.domains.filter((d) => d.name !== 'other.test');
    file.accounts = file.accounts.filter((x) => x.address !== 'carol@other.test').map((x) => (x.address === 'alice@example.test' ? { ...x, quota: '1M' } : x));
    file.aliases['team@example.test'] = ['alice@example.test'];
    file.settings = {};
    file.routes = {};
    const pruned = join(dir, 'pruned.yaml');
    writeFileSync(pruned, stringify(file));
    const keep = await cli(['config', 'apply', pruned, '--dry-run', ...a]);
    assert.equal(
      keep,
      `~ account alice@example.test quota: unlimited -> 1048576\n- alias team@example.test -> carol@other.test\ndry run: 2 change(s) not made\n`,
    );
    const out = await cli(['config', 'apply', pruned, '--prune', ...a]);
    assert.deepEqual(out.trim().split('\n'), [
      '~ account alice@example.test quota: unlimited -> 1048576',
      '- alias team@example.test -> carol@other.test',
      '- setting dnsbl (was bl.example.test)',
      '- route partner.test (was 192.0.2.10:25)',
      '- account carol@other.test (with all its mail)',
      '- domain other.test (its API keys are revoked, its webhooks deleted)',
      '6 change(s) made',
    ]);
    const after = parse(await cli(['config', 'export', '-', ...a])) as SiteFile;
    assert.deepEqual(after.domains.map((d) => d.name).sort(), ['example.test', 'mx.example.test']);
    assert.deepEqual([after.settings, after.routes], [{}, {}]);
    assert.equal(await cli(['config', 'apply', pruned, '--prune', ...a]), 'no changes: the site matches the file\n');

    // A pruned domain that would keep an account is refused, and nothing changes.
    await cli(['domain', 'add', 'third.test', '--dkim', 'none', ...a]);
    await cli(['user', 'add', 'zed@third.test', ...a]);
    const partial = { version: 1, domains: file.domains };
    writeFileSync(pruned, stringify(partial));
    const r3 = await runCli(['config', 'apply', pruned, '--prune', ...a]);
    assert.match(r3.stderr, /domain third\.test is not in the file, but account zed@third\.test would stay in it/);
    assert.match((parse(await cli(['config', 'export', '-', ...a])) as SiteFile).domains.map((d) => d.name).join(','), /third\.test/);
  });
});
