/**
 * Maildir and mbox against Debian's Dovecot, each side read over IMAP:
 * (a) mail delivered by Dovecot's LMTP, flagged over Dovecot's IMAP, then
 *     `tern import-maildir`: Tern's IMAP shows the same messages, flags, keywords, uids and
 *     UIDVALIDITY;
 * (b) `tern export-maildir` of an account with folders, flags and keywords, served by
 *     Dovecot: every message, flag, keyword, uid and UIDVALIDITY intact;
 * (c) `tern export-mbox` and `tern import-mbox` round trip, with body lines starting
 *     "From " and ">From ";
 * (d) Maildir delivery mode: mail sent to Tern over SMTP and LMTP for a domain in that mode
 *     is read through Dovecot's IMAP, and Tern's own INBOX stays empty.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ImapFlow } from 'imapflow';
import { chownTree, hasDovecot, lmtpDeliver, startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { cli, createSite, freePort, runCli, startTern, tempDir, type Site, type TernServer } from '../helpers/tern.js';
import { imapflow } from '../imap/support.js';
import { mailer } from '../smtp/support.js';

const PASSWORD = 'password123';

interface Seen {
  uidValidity: number;
  uidNext: number;
  messages: Array<{ uid: number; flags: string[]; source: string }>;
}

/** A mailbox as an IMAP server shows it (sources with CRLF, flags sorted, \Recent left out). */
async function mailboxOf(client: ImapFlow, path: string): Promise<Seen> {
  const lock = await client.getMailboxLock(path);
  try {
    const mb = client.mailbox;
    assert.ok(mb);
    const messages = mb.exists === 0 ? [] : await client.fetchAll('1:*', { uid: true, flags: true, source: true });
    return {
      uidValidity: Number(mb.uidValidity),
      uidNext: mb.uidNext,
      messages: messages.map((m) => ({ uid: m.uid, flags: [...m.flags!].filter((f) => f !== '\\Recent').sort(), source: m.source!.toString('latin1') })),
    };
  } finally {
    lock.release();
  }
}

/** A message with CRLF line ends, as IMAP and LMTP carry them. */
const message = (n: number, extra = '') =>
  `From: Sender <sender@remote.test>\nTo: alice@example.test\nSubject: message ${n}\nMessage-ID: <m${n}@remote.test>\n\nBody of message ${n}.\n${extra}`.replace(
    /\n/g,
    '\r\n',
  );

describe('Maildir and mbox with Dovecot', { skip: hasDovecot() ? false : 'dovecot is not installed', timeout: 60_000 }, () => {
  let dovecot: Dovecot;
  let site: Site;
  let tern: TernServer | undefined;
  let ternImap = 0;
  let fromDovecot: Record<string, Seen> = {};

  before(async () => {
    dovecot = await startDovecot(['alice@example.test', 'carol@example.test', 'dave@example.test'], PASSWORD);
    site = await createSite();
  });
  after(async () => {
    await tern?.stop();
    await dovecot?.stop();
  });

  it('(a) imports a Maildir Dovecot delivered and flagged: messages, flags, keywords, uids and UIDVALIDITY', async () => {
    await lmtpDeliver(dovecot.lmtpPort, 'alice@example.test', [message(1), message(2, 'From the start of a line\n>From quoted\n'), message(3), message(4)]);
    const client = await imapflow(dovecot.imapPort, 'alice@example.test');
    try {
      await client.mailboxCreate('Projects');
      await client.mailboxOpen('INBOX');
      await client.messageFlagsAdd('1', ['\\Seen', '\\Flagged'], { uid: true });
      await client.messageFlagsAdd('2', ['\\Answered', 'work', '$Label1'], { uid: true });
      await client.messageFlagsAdd('3', ['\\Seen', '\\Deleted'], { uid: true });
      await client.messageCopy('4', 'Projects', { uid: true });
      await client.messageFlagsAdd('4', ['\\Draft'], { uid: true });
      await client.mailboxOpen('Projects');
      await client.messageFlagsAdd('1', ['\\Seen', 'work'], { uid: true });
      fromDovecot = { INBOX: await mailboxOf(client, 'INBOX'), Projects: await mailboxOf(client, 'Projects') };
    } finally {
      await client.logout();
    }
    assert.equal(fromDovecot.INBOX!.messages.length, 4);

    const imported = JSON.parse(await cli(['import-maildir', dovecot.maildir('alice@example.test'), '--to', 'alice@example.test', '--json', ...site.args])) as {
      messages: number;
      mailboxes: Array<{ name: string; keptUids: boolean }>;
    };
    assert.equal(imported.messages, 5);
    assert.ok(imported.mailboxes.every((m) => m.keptUids));

    ternImap = await freePort();
    tern = await startTern(site, ['--imap-port', String(ternImap)]);
    const ours = await imapflow(ternImap, 'alice@example.test');
    try {
      for (const name of ['INBOX', 'Projects']) {
        const seen = await mailboxOf(ours, name);
        const theirs = fromDovecot[name]!;
        assert.equal(seen.uidValidity, theirs.uidValidity, `${name} UIDVALIDITY`);
        assert.ok(seen.uidNext >= theirs.uidNext, `${name} UIDNEXT ${seen.uidNext} >= ${theirs.uidNext}`);
        assert.deepEqual(seen.messages, theirs.messages, `${name} messages`);
      }
    } finally {
      await ours.logout();
    }
  });

  it('(b) exports an account with folders, flags and keywords that Dovecot serves intact', async () => {
    const ours = await imapflow(ternImap, 'alice@example.test');
    const expected: Record<string, Seen> = {};
    try {
      await ours.mailboxCreate('Archive/2024');
      await ours.append('Archive/2024', message(10), ['\\Seen', 'old'], new Date('2024-03-04T05:06:07Z'));
      await ours.append('Archive/2024', message(11), ['\\Flagged', '$Forwarded']);
      await ours.append('Sent', message(12), ['\\Seen']);
      for (const name of ['INBOX', 'Projects', 'Archive/2024', 'Sent', 'Drafts']) expected[name] = await mailboxOf(ours, name);
    } finally {
      await ours.logout();
    }
    const dir = dovecot.maildir('carol@example.test');
    const exported = JSON.parse(await cli(['export-maildir', 'alice@example.test', dir, '--json', ...site.args])) as { messages: number };
    assert.equal(exported.messages, 8);
    chownTree(dir);
    const theirs = await imapflow(dovecot.imapPort, 'carol@example.test');
    try {
      const list = await theirs.list();
      const listed = list.map((m) => m.path.split(m.delimiter).join('/'));
      for (const name of Object.keys(expected)) assert.ok(listed.includes(name), `Dovecot lists ${name}: ${listed.join(', ')}`);
      const subscribed = list.filter((m) => m.subscribed).map((m) => m.path.split(m.delimiter).join('/'));
      for (const name of ['Projects', 'Archive/2024', 'Sent']) assert.ok(subscribed.includes(name), `${name} subscribed: ${subscribed.join(', ')}`);
      for (const [name, seen] of Object.entries(expected)) {
        const path = name.split('/').join('.');
        const served = await mailboxOf(theirs, path);
        assert.equal(served.uidValidity, seen.uidValidity, `${name} UIDVALIDITY`);
        assert.equal(served.uidNext, seen.uidNext, `${name} UIDNEXT`);
        assert.deepEqual(served.messages, seen.messages, `${name} messages`);
      }
      const lock = await theirs.getMailboxLock('Archive.2024');
      try {
        const [first] = await theirs.fetchAll('1', { internalDate: true });
        assert.equal(new Date(first!.internalDate!).toISOString(), '2024-03-04T05:06:07.000Z');
      } finally {
        lock.release();
      }
    } finally {
      await theirs.logout();
    }
  });

  it('(c) round-trips a mailbox through an mbox file, "From " and ">From " body lines included', async () => {
    const file = join(tempDir(), 'inbox.mbox');
    await cli(['export-mbox', 'alice@example.test', 'INBOX', file, ...site.args]);
    await cli(['import-mbox', file, '--to', 'bob@example.test', '--mailbox', 'Old mail', ...site.args]);
    const alice = await imapflow(ternImap, 'alice@example.test');
    const bob = await imapflow(ternImap, 'bob@example.test');
    try {
      const original = await mailboxOf(alice, 'INBOX');
      const copy = await mailboxOf(bob, 'Old mail');
      assert.deepEqual(
        copy.messages.map((m) => m.source),
        original.messages.map((m) => m.source),
      );
      assert.ok(copy.messages.some((m) => m.source.includes('\r\nFrom the start of a line\r\n>From quoted\r\n')));
    } finally {
      await alice.logout();
      await bob.logout();
    }
    const bad = await runCli(['import-mbox', join(dovecot.root, 'dovecot.conf'), '--to', 'bob@example.test', ...site.args]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^tern: .*not an mbox file/);
    const exists = await runCli(['export-mbox', 'alice@example.test', 'INBOX', file, ...site.args]);
    assert.match(exists.stderr, /the file exists/);
  });

  it('(d) writes SMTP and LMTP deliveries for a Maildir-mode domain where Dovecot serves them', async () => {
    await cli(['user', 'add', 'dave@example.test', '--password-stdin', ...site.args], `${PASSWORD}\n`);
    await cli(['domain', 'add', 'other.test', '--dkim', 'none', ...site.args]);
    await cli(['user', 'add', 'erin@other.test', '--password-stdin', ...site.args], `${PASSWORD}\n`);
    assert.match(await cli(['domain', 'maildir', 'example.test', dovecot.homes, ...site.args]), /Maildir delivery under/);
    await new Promise((r) => setTimeout(r, 5100)); // a running server rereads the setting within 5 s
    const transport = mailer(tern!.smtpPort);
    try {
      // dave's copy goes to his Maildir, erin's (same message; her domain is not in Maildir mode) to Tern's INBOX.
      await transport.sendMail({ envelope: { from: 'sender@remote.test', to: ['dave@example.test', 'erin@other.test'] }, raw: message(20) });
    } finally {
      transport.close();
    }
    await lmtpDeliver(tern!.lmtpPort, 'dave@example.test', [message(21)]);
    const theirs = await imapflow(dovecot.imapPort, 'dave@example.test');
    try {
      const inbox = await mailboxOf(theirs, 'INBOX');
      assert.equal(inbox.messages.length, 2);
      assert.match(inbox.messages[0]!.source, /^Return-Path: <sender@remote\.test>\r\nDelivered-To: dave@example\.test\r\n/);
      assert.ok(inbox.messages[0]!.source.endsWith(message(20)));
      assert.ok(inbox.messages[1]!.source.endsWith(message(21)));
      await theirs.mailboxOpen('INBOX');
      await theirs.messageFlagsAdd('1:*', ['\\Seen'], { uid: true }); // Dovecot may change what Tern wrote
    } finally {
      await theirs.logout();
    }
    const ours = await imapflow(ternImap, 'dave@example.test');
    const erin = await imapflow(ternImap, 'erin@other.test');
    try {
      assert.equal((await mailboxOf(ours, 'INBOX')).messages.length, 0);
      const erins = await mailboxOf(erin, 'INBOX');
      assert.equal(erins.messages.length, 1);
      assert.match(erins.messages[0]!.source, /^Return-Path: <sender@remote\.test>\r\nDelivered-To: erin@other\.test\r\n/);
      assert.ok(erins.messages[0]!.source.endsWith(message(20)));
    } finally {
      await ours.logout();
      await erin.logout();
    }
    await cli(['domain', 'maildir', 'example.test', 'off', ...site.args]);
  });

  it('says in one line what is wrong: a missing dir, no Maildir, an unknown account, a non-empty export dir', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['import-maildir', join(dovecot.root, 'nothing'), '--to', 'bob@example.test'], /no such directory/],
      [['import-maildir', dovecot.root, '--to', 'bob@example.test'], /is not a Maildir/],
      [['import-maildir', dovecot.maildir('alice@example.test'), '--to', 'nobody@example.test'], /account nobody@example\.test does not exist/],
      [['export-maildir', 'alice@example.test', dovecot.root], /is not empty/],
      [['import-mbox', join(dovecot.root, 'none.mbox'), '--to', 'bob@example.test'], /no such file/],
      [['export-mbox', 'alice@example.test', 'Nope', join(tempDir(), 'x.mbox')], /mailbox Nope of alice@example\.test does not exist/],
    ];
    for (const [args, pattern] of cases) {
      const r = await runCli([...args, ...site.args]);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, /^tern: /);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });
});
