/**
 * `tern import-maildir TREE --users PASSWD-FILE`: a legacy Dovecot host moved in one
 * command. Its users come with their password hashes (from doveadm pw), each user's
 * Maildir is found in the copied tree (at the passwd-file's mail location, under the tree,
 * or in the usual layouts) and imported with its folders and flags; a user without one is
 * reported. Then each user logs in over IMAP with the old password and sees the mail.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import { maildirCandidates } from '../../src/admin/legacy-host.js';
import { cli, createSite, freePort, runCli, startTern, tempDir } from '../helpers/tern.js';

const doveadm = (scheme: string, password: string) => execFileSync('doveadm', ['pw', '-s', scheme, '-p', password], { encoding: 'utf8' }).trim();

/** One message file in a Maildir folder: `cur/` with its flag letters, or `new/`. */
function put(maildir: string, folder: string, name: string, subject: string, flags: string | null): void {
  const dir = join(maildir, folder);
  for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(dir, sub), { recursive: true });
  const body = `From: someone@old.test\nTo: user@example.test\nSubject: ${subject}\nMessage-ID: <${name}@old.test>\n\n${subject} body\n`;
  writeFileSync(join(dir, flags === null ? 'new' : 'cur', flags === null ? name : `${name}:2,${flags}`), body);
}

describe('tern import-maildir --users', () => {
  it('finds where a Maildir may be in a copied tree', () => {
    assert.deepEqual(maildirCandidates('/copy', { address: 'a@x.test', maildir: '/var/vmail/x.test/a/Maildir' }), [
      '/var/vmail/x.test/a/Maildir',
      '/copy/var/vmail/x.test/a/Maildir',
      '/copy/vmail/x.test/a/Maildir',
      '/copy/x.test/a/Maildir',
      '/copy/a/Maildir',
      '/copy/x.test/a',
      '/copy/a@x.test/Maildir',
    ]);
    // Nothing outside the tree but the given location itself, and never a bare TREE/Maildir.
    assert.deepEqual(maildirCandidates('/copy', { address: 'b@y.test', maildir: '../../etc/b/Maildir' }), [
      '/copy/etc/b/Maildir',
      '/copy/b/Maildir',
      '/copy/y.test/b/Maildir',
      '/copy/y.test/b',
      '/copy/b@y.test/Maildir',
    ]);
  });

  it('moves a Dovecot host: users with their passwords, each Maildir with folders and flags', async () => {
    const site = await createSite();
    const dir = tempDir('tern-legacy-host-');
    const tree = join(dir, 'vmail');
    // carol's mail location names the old host's path; dave's Maildir is in the usual layout; erin has none.
    put(join(tree, 'example.test', 'carol', 'Maildir'), '', '1000.a', 'first', 'S');
    put(join(tree, 'example.test', 'carol', 'Maildir'), '', '1001.b', 'second', null);
    put(join(tree, 'example.test', 'carol', 'Maildir'), '.Sent', '1002.c', 'sent one', 'SR');
    put(join(tree, 'example.test', 'dave', 'Maildir'), '', '1003.d', 'for dave', 'F');
    const passwd = join(dir, 'users');
    writeFileSync(
      passwd,
      [
        `carol@example.test:${doveadm('SHA512-CRYPT', 'carol-old-pw')}:5000:5000::/var/vmail/example.test/carol::userdb_mail=maildir:/var/vmail/%d/%n/Maildir`,
        `dave:${doveadm('SSHA256', 'dave-old-pw')}:5000:5000::/home/dave::`,
        `erin:${doveadm('BLF-CRYPT', 'erin-old-pw')}:5000:5000::/home/erin::`,
        '',
      ].join('\n'),
    );
    const args = [tree, '--users', passwd, '--domain', 'example.test', ...site.args];
    const dry = await cli(['import-maildir', ...args, '--dry-run']);
    assert.match(dry, /carol@example\.test: would import .*example\.test\/carol\/Maildir/);
    assert.match(dry, /erin@example\.test: no Maildir found/);
    assert.match(await cli(['user', 'list', ...site.args]), /^(?![\s\S]*carol)/, 'a dry run writes nothing');

    const result = JSON.parse(await cli(['import-maildir', ...args, '--json'])) as {
      users: { counts: { created: number } };
      mail: Array<{ address: string; maildir: string | null; summary?: { messages: number } }>;
    };
    assert.equal(result.users.counts.created, 3);
    assert.deepEqual(
      result.mail.map((m) => [m.address, m.summary?.messages ?? null]),
      [
        ['carol@example.test', 3],
        ['dave@example.test', 1],
        ['erin@example.test', null],
      ],
    );
    const again = JSON.parse(await cli(['import-maildir', ...args, '--json'])) as typeof result;
    assert.deepEqual(
      again.mail.map((m) => [m.address, m.summary?.messages ?? null]),
      [
        ['carol@example.test', null],
        ['dave@example.test', null],
        ['erin@example.test', null],
      ],
      'running it again imports no mail twice',
    );
    const bad = await runCli(['import-maildir', tree, '--to', 'carol@example.test', '--domain', 'x.test', ...site.args]);
    assert.match(bad.stderr, /go with --users/);

    const imapPort = await freePort();
    const server = await startTern(site, ['--imap-port', String(imapPort)]);
    try {
      const client = new ImapFlow({
        host: '127.0.0.1',
        port: imapPort,
        secure: false,
        auth: { user: 'carol@example.test', pass: 'carol-old-pw' },
        logger: false,
        tls: { rejectUnauthorized: false },
        disableAutoIdle: true,
      });
      await client.connect();
      const seen = async (mailbox: string) => {
        await client.mailboxOpen(mailbox);
        const out: string[] = [];
        for await (const m of client.fetch('1:*', { envelope: true, flags: true }))
          out.push(
            `${m.envelope?.subject}:${[...(m.flags ?? [])]
              .filter((f) => f !== '\\Recent')
              .sort()
              .join(' ')}`,
          );
        return out.sort();
      };
      assert.deepEqual(await seen('INBOX'), ['first:\\Seen', 'second:']);
      assert.deepEqual(await seen('Sent'), ['sent one:\\Answered \\Seen']);
      await client.logout();
    } finally {
      await server.stop();
    }
  });
});
