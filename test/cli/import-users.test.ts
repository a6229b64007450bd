/**
 * `tern import-users` end to end: a Dovecot passwd-file with hashes of several schemes
 * (made by Debian's doveadm pw and mkpasswd) and a Postfix virtual map are imported; each
 * user then logs in over IMAP with imapflow with the old password, a wrong one fails, and
 * the stored hash has become Tern's scrypt. Mistakes stop the import before any write.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import type { AliasesImport, UsersImport } from '../../src/admin/legacy-users.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { cli, createSite, freePort, runCli, startTern, tempDir, type Site } from '../helpers/tern.js';

const doveadm = (scheme: string, password: string) => execFileSync('doveadm', ['pw', '-s', scheme, '-p', password], { encoding: 'utf8' }).trim();
const mkpasswd = (method: string, password: string) => execFileSync('mkpasswd', ['-m', method, '--stdin'], { input: `${password}\n`, encoding: 'utf8' }).trim();

async function imapLogin(port: number, user: string, pass: string): Promise<boolean> {
  const client = new ImapFlow({
    host: '127.0.0.1',
    port,
    secure: false,
    auth: { user, pass },
    logger: false,
    tls: { rejectUnauthorized: false },
    disableAutoIdle: true,
  });
  try {
    await client.connect();
  } catch (err) {
    if ((err as { authenticationFailed?: boolean }).authenticationFailed) return false;
    throw err;
  }
  const inbox = await client.mailboxOpen('INBOX');
  assert.equal(inbox.exists, 0);
  await client.logout();
  return true;
}

async function storedHash(site: Site, address: string, store?: Store): Promise<string | null> {
  if (store) return store.directory.getPasswordHash(address);
  const opened = await openStore({ dataDir: site.dataDir });
  try {
    return await opened.directory.getPasswordHash(address);
  } finally {
    await opened.close();
  }
}

async function addresses(site: Site): Promise<string[]> {
  return (JSON.parse(await cli(['user', 'list', '--json', ...site.args])) as Array<{ address: string }>).map((u) => u.address);
}

describe('tern import-users', () => {
  it('keeps the users of a Dovecot host with their passwords, which IMAP logins upgrade', async () => {
    const site = await createSite();
    const dir = tempDir('tern-legacy-');
    const users: Array<{ address: string; password: string; field: string }> = [
      { address: 'ann@legacy.test', password: 'ann old pass', field: doveadm('SHA512-CRYPT', 'ann old pass') },
      { address: 'ben@legacy.test', password: 'ben old pass', field: mkpasswd('bcrypt', 'ben old pass') },
      { address: 'cid@legacy.test', password: 'cid old pass', field: doveadm('ARGON2ID', 'cid old pass') },
      { address: 'dee@legacy.test', password: 'dee old pass', field: doveadm('SSHA512', 'dee old pass') },
      { address: 'eli@legacy.test', password: 'eli old pass', field: doveadm('PLAIN-MD5', 'eli old pass') },
      { address: 'fay@example.test', password: 'fay old pass', field: mkpasswd('sha-256', 'fay old pass') },
      { address: 'gil@legacy.test', password: 'gil old pass', field: doveadm('BLF-CRYPT', 'gil old pass') },
    ];
    const passwd = join(dir, 'users');
    writeFileSync(
      passwd,
      [
        '# exported from the old host',
        ...users.map((u) => {
          const user = u.address === 'ben@legacy.test' ? 'ben' : u.address; // a bare name: --domain
          return `${user}:${u.field}:5000:5000::/var/vmail/${u.address}::`;
        }),
        `gus@legacy.test:${doveadm('CRAM-MD5', 'gus old pass')}:5000:5000::/var/vmail/gus::`,
        'alice@example.test:{PLAIN}not her password:5000:5000::/var/vmail/alice::',
        '',
      ].join('\n'),
    );
    const virtual = join(dir, 'virtual');
    writeFileSync(
      virtual,
      [
        'legacy.test             anything',
        'team@legacy.test        ann@legacy.test,',
        '                        ben@legacy.test',
        '@legacy.test            ann@legacy.test',
        'out@legacy.test         someone@remote.test',
        '/^(.*)-old@legacy.test$/  ${1}@legacy.test',
        '',
      ].join('\n'),
    );
    const args = [passwd, '--domain', 'legacy.test', '--virtual', virtual, ...site.args];
    const before = await addresses(site);

    // A missing domain and a malformed line each stop the import before anything is written.
    let r = await runCli(['import-users', ...args]);
    assert.notEqual(r.code, 0);
    assert.equal(r.stderr, 'tern: not hosted here: legacy.test; add them with tern domain add, or pass --create-domains\n');
    const bad = join(dir, 'bad-virtual');
    writeFileSync(bad, 'team@legacy.test ann@legacy.test\nlonely@legacy.test\n');
    r = await runCli(['import-users', passwd, '--domain', 'legacy.test', '--virtual', bad, '--create-domains', ...site.args]);
    assert.equal(r.stderr, `tern: ${bad}:2: expected "pattern target[, target…]", got only "lonely@legacy.test"\n`);
    r = await runCli(['import-users', passwd, ...site.args]);
    assert.equal(r.stderr, `tern: ${passwd}:3: user "ben" has no domain; give the default domain (--domain)\n`);
    assert.deepEqual(await addresses(site), before);

    // A dry run says what would happen.
    const dry = JSON.parse(await cli(['import-users', ...args, '--create-domains', '--dry-run', '--json'])) as { users: UsersImport; aliases: AliasesImport };
    assert.equal(dry.users.dryRun, true);
    assert.deepEqual(dry.users.domainsCreated, ['legacy.test']);
    assert.deepEqual(dry.users.counts, { created: 8, updated: 0, kept: 1, refused: 0, passwordUnusable: 1 });
    assert.deepEqual(dry.aliases.counts, { created: 2, exists: 0, skipped: 1, refused: 1 });
    assert.deepEqual(await addresses(site), before);

    const done = JSON.parse(await cli(['import-users', ...args, '--create-domains', '--json'])) as { users: UsersImport; aliases: AliasesImport };
    assert.deepEqual(done.users.counts, { created: 8, updated: 0, kept: 1, refused: 0, passwordUnusable: 1 });
    const ann = done.users.users.find((u) => u.address === 'ann@legacy.test')!;
    assert.deepEqual(
      [ann.action, ann.scheme, ann.home, ann.maildir],
      ['created', 'SHA512-CRYPT', '/var/vmail/ann@legacy.test', '/var/vmail/ann@legacy.test/Maildir'],
    );
    const gus = done.users.users.find((u) => u.address === 'gus@legacy.test')!;
    assert.equal(gus.passwordUsable, false);
    assert.match(gus.reason!, /\{CRAM-MD5\} is not supported; set a password with tern user passwd/);
    assert.equal(done.users.users.find((u) => u.address === 'alice@example.test')!.action, 'kept');
    assert.deepEqual(
      done.aliases.aliases.map((a) => [a.line, a.action]),
      [
        [1, 'skipped'],
        [2, 'created'],
        [4, 'created'],
        [5, 'refused'],
      ],
    );
    assert.deepEqual(
      done.aliases.skippedLines.map((s) => s.line),
      [6],
    );
    const aliases = JSON.parse(await cli(['alias', 'list', '--json', ...site.args])) as Array<{ address: string; target: string }>;
    assert.deepEqual(
      aliases.filter((a) => a.address.endsWith('legacy.test')).map((a) => `${a.address} ${a.target}`),
      ['@legacy.test ann@legacy.test', 'team@legacy.test ann@legacy.test', 'team@legacy.test ben@legacy.test'],
    );

    // Logins over IMAP: the old password works, a wrong one does not, and the hash becomes scrypt.
    const imapPort = await freePort();
    const tern = await startTern(site, ['--imap-port', String(imapPort)]);
    const store = await openStore({ dataDir: site.dataDir }); // beside the server's, as another node would
    try {
      for (const u of users) {
        assert.match((await storedHash(site, u.address, store))!, /^\{/, `${u.address} keeps its old hash until it logs in`);
        assert.equal(await imapLogin(imapPort, u.address, `${u.password}!`), false, `${u.address}: wrong password`);
        assert.match((await storedHash(site, u.address, store))!, /^\{/, `${u.address}: a failed login changes nothing`);
        assert.equal(await imapLogin(imapPort, u.address, u.password), true, `${u.address}: old password`);
        assert.match((await storedHash(site, u.address, store))!, /^\$scrypt\$/, `${u.address}: upgraded`);
        assert.equal(await imapLogin(imapPort, u.address, u.password), true, `${u.address}: old password, now against scrypt`);
        assert.equal(await imapLogin(imapPort, u.address, `${u.password}!`), false);
      }
      assert.equal(await imapLogin(imapPort, 'gus@legacy.test', 'gus old pass'), false);
      assert.equal(await imapLogin(imapPort, 'alice@example.test', 'password123'), true, 'an account that was kept keeps its password');
    } finally {
      await store.close();
      await tern.stop();
    }

    // Re-running changes nothing; --update-passwords puts the file's hashes back.
    const again = JSON.parse(await cli(['import-users', ...args, '--json'])) as { users: UsersImport; aliases: AliasesImport };
    assert.deepEqual(again.users.counts, { created: 0, updated: 0, kept: 9, refused: 0, passwordUnusable: 1 });
    assert.deepEqual(again.aliases.counts, { created: 0, exists: 2, skipped: 1, refused: 1 });
    const text = await cli(['import-users', ...args, '--update-passwords']);
    assert.match(text, /^updated {2}ann@legacy\.test \{SHA512-CRYPT\}; exists: its password hash was replaced by the file’s$/m);
    assert.match(text, /^kept {5}gus@legacy\.test \{CRAM-MD5\} .*exists with this hash already$/m);
    assert.match(text, /^users: 0 created, 8 updated, 1 kept, 0 refused; 1 without a password Tern can check/m);
    assert.match(text, /^alias refused  line 5: out@legacy\.test -> someone@remote\.test \(forwards to addresses outside this server/m);
    assert.match((await storedHash(site, 'ann@legacy.test'))!, /^\{SHA512-CRYPT\}\$6\$/);
  });
});
