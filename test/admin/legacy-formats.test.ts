/**
 * The files of a Dovecot/Postfix host that `tern import-users` reads: Dovecot's
 * passwd-file and Postfix's virtual map, well-formed and not.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePasswdFile } from '../../src/admin/dovecot-passwd.js';
import { parseVirtualMap } from '../../src/admin/postfix-virtual.js';
import { UserError } from '../../src/errors.js';

/** A UserError whose message (the line the CLI prints) matches. */
const userError = (re: RegExp) => (err: unknown) => err instanceof UserError && re.test(err.message);

describe('Dovecot passwd-file', () => {
  const file = [
    '# users of the old host',
    '',
    'Alice@Example.ORG:{SHA512-CRYPT}$6$salt$hash:5000:5000:Alice A.:/home/vmail/example.org/alice::userdb_quota_rule=*:storage=1G',
    'bob:{SSHA}abc=:5000:5000::/home/bob:/bin/false:userdb_mail=maildir:~/mail/inbox:LAYOUT=fs  nopassword',
    '   # an indented comment',
    'carol@example.org:$2y$05$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234:::::: userdb_mail=maildir:/srv/mail/%d/%n userdb_quota_rule=*:storage=+10%',
    'dave@example.org:{PLAIN}x',
    'erin@example.org::::::: userdb_mail=mdbox:~/mdbox',
  ].join('\n');

  it('reads users, their hashes, homes, Maildirs and quotas', () => {
    const entries = parsePasswdFile(file, { fileName: 'users', defaultDomain: 'Example.COM' });
    assert.deepEqual(
      entries.map((e) => [e.line, e.address, e.password, e.home, e.maildir, e.quotaBytes]),
      [
        [3, 'alice@example.org', '{SHA512-CRYPT}$6$salt$hash', '/home/vmail/example.org/alice', '/home/vmail/example.org/alice/Maildir', 1024 ** 3],
        [4, 'bob@example.com', '{SSHA}abc=', '/home/bob', '/home/bob/mail/inbox', null],
        [6, 'carol@example.org', '$2y$05$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234', '', '/srv/mail/example.org/carol', null],
        [7, 'dave@example.org', '{PLAIN}x', '', null, null],
        [8, 'erin@example.org', '', '', null, null],
      ],
    );
    assert.equal(entries[0]!.uid, '5000');
    assert.deepEqual(entries[1]!.extra, { userdb_mail: 'maildir:~/mail/inbox:LAYOUT=fs', nopassword: '' });
    assert.match(entries[2]!.notes[0]!, /quota rule "\*:storage=\+10%" not carried over/);
  });

  it('names the file and line of every mistake', () => {
    const cases: Array<[string, RegExp]> = [
      ['alice@example.org', /^users:1: expected user:password/],
      ['# c\n:{PLAIN}x', /^users:2: the user name is empty/],
      ['al ice@example.org:{PLAIN}x', /^users:1: the user name "al ice@example\.org" contains white space/],
      ['bob:{PLAIN}x', /^users:1: user "bob" has no domain; give the default domain \(--domain\)/],
      ['bob@bad..domain:{PLAIN}x', /^users:1: invalid domain name/],
      ['a@example.org:{PLAIN}x:1:1::relative/home', /^users:1: the home directory "relative\/home" is not an absolute path/],
      ['a@example.org:{PLAIN}x\n\nA@example.org:{PLAIN}y', /^users:3: a@example\.org is listed twice \(first at line 1\)/],
    ];
    for (const [text, error] of cases) assert.throws(() => parsePasswdFile(text, { fileName: 'users' }), userError(error), text);
  });
});

describe('Postfix virtual map', () => {
  it('reads entries, continuation lines and comments; sets regexp lines aside', () => {
    const map = parseVirtualMap(
      [
        '# virtual',
        'example.org        anything',
        'Team@Example.org   alice@example.org,bob@example.org',
        '\tcarol@example.org ,',
        '  dave@example.org',
        '@example.org       catchall@example.org',
        '',
        '  # comment inside',
        'postmaster         root',
        '/^old-(.*)@example\\.org$/   ${1}@example.org',
        'if !/^owner-/',
        'endif',
        'team@example.org   other@example.org',
      ].join('\r\n'),
      { fileName: 'virtual' },
    );
    assert.deepEqual(map.entries, [
      { line: 2, key: 'example.org', kind: 'domain', targets: ['anything'] },
      { line: 3, key: 'team@example.org', kind: 'address', targets: ['alice@example.org', 'bob@example.org', 'carol@example.org', 'dave@example.org'] },
      { line: 6, key: '@example.org', kind: 'catch-all', targets: ['catchall@example.org'] },
      { line: 9, key: 'postmaster', kind: 'bare-user', targets: ['root'] },
    ]);
    assert.deepEqual(
      map.skipped.map((s) => [s.line, s.reason.replace(/:.*/, '')]),
      [
        [10, 'a regexp/pcre table entry'],
        [11, 'a regexp/pcre table entry'],
        [12, 'a regexp/pcre table entry'],
        [13, 'team@example.org is listed again (first at line 3); postmap uses the first'],
      ],
    );
  });

  it('names the file and line of every mistake', () => {
    assert.throws(() => parseVirtualMap('  alice@example.org', { fileName: 'virtual' }), userError(/^virtual:1: a continuation line/));
    assert.throws(() => parseVirtualMap('# x\nalice@example.org', { fileName: 'virtual' }), userError(/^virtual:2: expected "pattern target\[, target…\]"/));
    assert.throws(() => parseVirtualMap('alice@example.org ,,', { fileName: 'virtual' }), userError(/^virtual:1: alice@example\.org has no target/));
  });
});
