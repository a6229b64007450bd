/**
 * IMAP with a real client (imapflow) against `tern serve`: login, LIST with special-use,
 * delivery over SMTP seen in INBOX, FETCH of envelope, bodystructure, sections and partial
 * ranges, \Seen set by BODY[] but not BODY.PEEK, APPEND with flags and APPENDUID, STORE,
 * SEARCH on headers and decoded body text, COPY/MOVE with COPYUID, EXPUNGE, mailbox
 * management (CREATE with parents, RENAME with children, INBOX rename, DELETE), STATUS,
 * QUOTA, CONDSTORE/QRESYNC, and two sessions seeing each other's changes and IDLE.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { cli } from '../helpers/tern.js';
import { mailer, sendSimple } from '../smtp/support.js';
import { imapflow, RawImap, serveImap } from './support.js';
import type { ImapFlow, StatusObject } from 'imapflow';

/** STATUS through imapflow, failing the test when it is refused. */
async function status(client: ImapFlow, path: string, query: Parameters<ImapFlow['status']>[1]): Promise<StatusObject> {
  const s = await client.status(path, query);
  assert.ok(s, `STATUS ${path}`);
  return s;
}

const MULTIPART = (subject: string) =>
  [
    'From: "Zoë Example" <zoe@remote.test>',
    'To: alice@example.test, "Bob" <bob@example.test>',
    `Subject: =?UTF-8?Q?${encodeURIComponent(subject).replace(/%/g, '=')}?=`,
    'Date: Tue, 24 Nov 2026 10:00:00 +0100',
    'Message-ID: <multi@remote.test>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    'Gr=C3=BC=C3=9Fe aus dem Testfall, caf=C3=A9 au lait.',
    '--b1',
    'Content-Type: application/octet-stream; name="data.bin"',
    'Content-Disposition: attachment; filename="data.bin"',
    'Content-Transfer-Encoding: base64',
    '',
    'AAECAwQFBgcICQ==',
    '--b1--',
    '',
  ].join('\r\n');

async function waitFor(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('IMAP with imapflow', () => {
  const suite = serveImap();

  it('logs in, lists the default mailboxes with special-use flags, and refuses a wrong password', async () => {
    const client = await imapflow(suite.imapPort);
    try {
      const boxes = await client.list();
      const byPath = new Map(boxes.map((b) => [b.path, b]));
      for (const name of ['INBOX', 'Drafts', 'Sent', 'Trash', 'Junk', 'Archive']) assert.ok(byPath.has(name), `${name} listed`);
      assert.equal(byPath.get('Sent')!.specialUse, '\\Sent');
      assert.equal(byPath.get('Trash')!.specialUse, '\\Trash');
      assert.ok(client.capabilities.has('IDLE') && client.capabilities.has('UIDPLUS') && client.capabilities.has('CONDSTORE'));
    } finally {
      await client.logout();
    }
    await assert.rejects(imapflow(suite.imapPort, 'alice@example.test', { pass: 'wrong' }), 'a wrong password is refused');
    await waitFor(() => /login failed/.test(suite.tern.output()), 'the failed login is logged');
    assert.match(suite.tern.output(), /"ip":"127\.0\.0\.1"[^\n]*login failed|login failed[^\n]*"ip":"127\.0\.0\.1"/);
  });

  it('shows delivered mail: envelope, bodystructure, sections, partial ranges and \\Seen handling', async () => {
    const subject = `Grüße ${randomUUID().slice(0, 8)}`;
    await mailer(suite.tern.smtpPort).sendMail({
      envelope: { from: 'zoe@remote.test', to: ['alice@example.test'] },
      raw: MULTIPART(subject),
    });
    const client = await imapflow(suite.imapPort);
    try {
      const lock = await client.getMailboxLock('INBOX');
      try {
        const found = await client.search({ subject });
        assert.ok(found && found.length === 1, 'found by decoded subject');
        const seq = found[0]!;
        const msg = await client.fetchOne(String(seq), { envelope: true, bodyStructure: true, flags: true, uid: true, size: true, source: true }, {});
        assert.ok(msg);
        assert.equal(msg.envelope!.subject, subject);
        assert.equal(msg.envelope!.from![0]!.address, 'zoe@remote.test');
        assert.equal(msg.envelope!.from![0]!.name, 'Zoë Example');
        assert.equal(msg.envelope!.to!.length, 2);
        assert.equal(msg.envelope!.messageId, '<multi@remote.test>');
        assert.equal(msg.bodyStructure!.type, 'multipart/mixed');
        assert.equal(msg.bodyStructure!.childNodes![0]!.type, 'text/plain');
        assert.equal(msg.bodyStructure!.childNodes![1]!.disposition, 'attachment');
        assert.equal(msg.bodyStructure!.childNodes![1]!.dispositionParameters!.filename, 'data.bin');
        assert.equal(msg.size, msg.source!.length);
        assert.ok(msg.source!.toString().includes('Return-Path: <zoe@remote.test>'), 'trace headers are part of the message');
        // source: fetched with BODY.PEEK by imapflow, so still unseen
        assert.ok(!msg.flags!.has('\\Seen'));

        const part = await client.download(String(seq), '2', {});
        const bytes: Buffer[] = [];
        for await (const c of part.content!) bytes.push(c as Buffer);
        assert.deepEqual(Buffer.concat(bytes), Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), 'part 2 decoded by the client');

        const headers = await client.fetchOne(String(seq), { headers: ['subject', 'message-id'] });
        assert.ok(headers);
        const text = headers.headers!.toString();
        assert.match(text, /^Subject: /m);
        assert.match(text, /^Message-ID: <multi@remote.test>/m);
        assert.doesNotMatch(text, /^From:/m);

        const body = await client.fetchOne(String(seq), { bodyParts: ['1'] });
        assert.ok(body);
        assert.match(body.bodyParts!.get('1')!.toString(), /Gr=C3=BC=C3=9Fe/);

        // SEARCH BODY matches the decoded text
        assert.deepEqual(await client.search({ body: 'grüße aus dem' }), [seq]);
        assert.deepEqual(await client.search({ body: 'café au lait' }), [seq]);
        assert.deepEqual(await client.search({ body: 'not in any message' }), []);
      } finally {
        lock.release();
      }
    } finally {
      await client.logout();
    }

    const raw = await RawImap.open(suite.imapPort);
    try {
      await raw.command('a', 'LOGIN alice@example.test password123');
      await raw.command('b', 'SELECT INBOX');
      const search = await raw.command('c', 'UID SEARCH HEADER Message-ID <multi@remote.test>');
      const uid = /\* SEARCH (\d+)/.exec(search)![1]!;
      const partial = await raw.command('d', `UID FETCH ${uid} (BODY.PEEK[1]<0.5> BODY.PEEK[2.MIME] FLAGS)`);
      assert.match(partial, /BODY\[1\]<0> \{5\}\r\nGr=C3/);
      assert.match(partial, /BODY\[2\.MIME\] \{\d+\}\r\nContent-Type: application\/octet-stream/);
      assert.doesNotMatch(partial, /\\Seen/);
      const full = await raw.command('e', `UID FETCH ${uid} (BODY[TEXT])`);
      assert.match(full, /FLAGS \([^)]*\\Seen/, 'BODY[] sets \\Seen and reports the flags');
      const flags = await raw.command('f', `UID FETCH ${uid} FLAGS`);
      assert.match(flags, /\\Seen/);
      const peekRange = await raw.command('g', `UID FETCH ${uid} BODY.PEEK[]<0.10>`);
      assert.match(peekRange, /BODY\[\]<0> \{10\}\r\nReturn-Pat/);
    } finally {
      raw.close();
    }
  });

  it('appends with flags and date, answers APPENDUID, and stores, searches, copies, moves and expunges', async () => {
    const client = await imapflow(suite.imapPort, 'bob@example.test');
    try {
      const message = `From: alice@example.test\r\nTo: bob@example.test\r\nSubject: appended\r\nDate: Mon, 2 Feb 2026 08:00:00 +0000\r\n\r\nAppended body text\r\n`;
      const appended = await client.append('Drafts', message, ['\\Draft', '$Label1'], new Date('2026-02-02T08:00:00Z'));
      assert.ok(appended && appended.uid && appended.uidValidity, 'APPENDUID');
      const lock = await client.getMailboxLock('Drafts');
      try {
        const msg = await client.fetchOne(String(appended.uid), { flags: true, internalDate: true, source: true }, { uid: true });
        assert.ok(msg);
        assert.ok(msg.flags!.has('\\Draft') && msg.flags!.has('$Label1'));
        assert.equal(new Date(msg.internalDate!).toISOString(), '2026-02-02T08:00:00.000Z');
        assert.equal(msg.source!.toString(), message);

        await client.messageFlagsAdd(String(appended.uid), ['\\Flagged'], { uid: true });
        await client.messageFlagsRemove(String(appended.uid), ['$Label1'], { uid: true });
        const after = await client.fetchOne(String(appended.uid), { flags: true }, { uid: true });
        assert.ok(after);
        assert.deepEqual([...after.flags!].filter((f) => f !== '\\Recent').sort(), ['\\Draft', '\\Flagged']);
        assert.deepEqual(await client.search({ flagged: true }, { uid: true }), [appended.uid]);
        assert.deepEqual(await client.search({ keyword: '$Label1' }, { uid: true }), []);
        assert.deepEqual(await client.search({ sentOn: new Date('2026-02-02') }, { uid: true }), [appended.uid]);
        assert.deepEqual(await client.search({ larger: 10_000 }, { uid: true }), []);

        const copied = await client.messageCopy(String(appended.uid), 'Archive', { uid: true });
        assert.ok(copied && copied.uidMap && copied.uidMap.size === 1, 'COPYUID');
        const moved = await client.messageMove(String(appended.uid), 'Trash', { uid: true });
        assert.ok(moved && moved.uidMap && moved.uidMap.size === 1, 'MOVE answers COPYUID');
        assert.equal((await status(client, 'Drafts', { messages: true })).messages, 0);
        assert.equal((await status(client, 'Trash', { messages: true })).messages, 1);
      } finally {
        lock.release();
      }
      const trash = await client.getMailboxLock('Trash');
      try {
        await client.messageDelete('1:*');
        assert.equal((await status(client, 'Trash', { messages: true })).messages, 0);
      } finally {
        trash.release();
      }
    } finally {
      await client.logout();
    }
  });

  it('creates, renames and deletes mailboxes with hierarchy, renames INBOX, and reports STATUS and QUOTA', async () => {
    await cli(['user', 'add', 'carol@example.test', '--password-stdin', '--quota', '1M', ...suite.site.args], 'password123\n');
    await sendSimple(suite.tern.smtpPort, 'carol@example.test', { subject: 'before rename' });
    const client = await imapflow(suite.imapPort, 'carol@example.test');
    try {
      await client.mailboxCreate('Projects/2026/Q4');
      let paths = (await client.list()).map((b) => b.path);
      assert.ok(paths.includes('Projects') && paths.includes('Projects/2026') && paths.includes('Projects/2026/Q4'), 'parents created');
      await client.mailboxRename('Projects', 'Work');
      paths = (await client.list()).map((b) => b.path);
      assert.ok(paths.includes('Work/2026/Q4') && !paths.some((p) => p.startsWith('Projects')), `children renamed: ${paths.join(', ')}`);
      await client.mailboxDelete('Work/2026/Q4');
      await assert.rejects(client.mailboxDelete('INBOX'));
      assert.equal((await client.mailboxCreate('Work')).created, false, 'an existing name is refused (ALREADYEXISTS)');

      const before = await status(client, 'INBOX', { messages: true, unseen: true, uidNext: true, uidValidity: true, highestModseq: true });
      assert.equal(before.messages, 1);
      assert.equal(before.unseen, 1);
      assert.ok(before.highestModseq! > 0);
      await client.mailboxRename('INBOX', 'Old mail');
      assert.equal((await status(client, 'INBOX', { messages: true })).messages, 0, 'INBOX stays, empty');
      assert.equal((await status(client, 'Old mail', { messages: true })).messages, 1, 'its messages moved');

      const quota = await client.getQuota('INBOX');
      assert.ok(quota && quota.storage, 'GETQUOTAROOT answers the STORAGE resource');
      assert.ok(quota.storage.usage! > 0, 'usage counted');
      assert.equal(quota.storage.limit, 1024 * 1024, 'limit (sent in KiB, imapflow reports bytes)');
    } finally {
      await client.logout();
    }
  });

  it('shows one session the flags and expunges of another, and pushes new mail to an idling client within a second', async () => {
    const subject = `idle ${randomUUID()}`;
    await sendSimple(suite.tern.smtpPort, 'bob@example.test', { subject: `first ${subject}` });
    const watcher = await imapflow(suite.imapPort, 'bob@example.test');
    const actor = await imapflow(suite.imapPort, 'bob@example.test');
    try {
      await watcher.mailboxOpen('INBOX');
      await actor.mailboxOpen('INBOX');
      const exists = watcher.mailbox && typeof watcher.mailbox === 'object' ? watcher.mailbox.exists : 0;
      const flagEvents: unknown[] = [];
      const expungeEvents: unknown[] = [];
      watcher.on('flags', (e) => flagEvents.push(e));
      watcher.on('expunge', (e) => expungeEvents.push(e));
      await actor.messageFlagsAdd('1', ['\\Flagged']);
      await watcher.noop();
      assert.ok(flagEvents.length >= 1, 'flag change seen at NOOP');

      const existsSeen = new Promise<number>((resolve) => watcher.on('exists', (e: { count: number }) => resolve(e.count)));
      const idle = watcher.idle();
      await new Promise((r) => setTimeout(r, 200));
      const sentAt = Date.now();
      await sendSimple(suite.tern.smtpPort, 'bob@example.test', { subject });
      const count = await existsSeen;
      assert.ok(Date.now() - sentAt < 1000, `EXISTS within a second (took ${Date.now() - sentAt} ms)`);
      assert.equal(count, exists + 1);
      await actor.messageDelete('1');
      await new Promise((r) => setTimeout(r, 300));
      await watcher.noop();
      await idle.catch(() => undefined);
      assert.ok(expungeEvents.length >= 1, 'expunge pushed');
    } finally {
      await watcher.logout();
      await actor.logout();
    }
  });

  it('supports CONDSTORE and QRESYNC: CHANGEDSINCE, UNCHANGEDSINCE and VANISHED', async () => {
    await sendSimple(suite.tern.smtpPort, 'alice@example.test', { subject: 'condstore one' });
    await sendSimple(suite.tern.smtpPort, 'alice@example.test', { subject: 'condstore two' });
    const raw = await RawImap.open(suite.imapPort);
    try {
      await raw.command('a', 'LOGIN alice@example.test password123');
      assert.match(await raw.command('b', 'ENABLE QRESYNC'), /\* ENABLED CONDSTORE QRESYNC/);
      const select = await raw.command('c', 'SELECT INBOX');
      const validity = /UIDVALIDITY (\d+)/.exec(select)![1]!;
      const modseq = Number(/HIGHESTMODSEQ (\d+)/.exec(select)![1]!);
      const uids = [...(await raw.command('d', 'UID SEARCH ALL')).matchAll(/ (\d+)/g)].map((m) => Number(m[1]));
      const [u1, u2] = uids.slice(-2) as [number, number];
      const stored = await raw.command('e', `UID STORE ${u1} (UNCHANGEDSINCE ${modseq}) +FLAGS (\\Answered)`);
      assert.match(stored, /FETCH \(FLAGS \([^)]*\\Answered[^)]*\) UID \d+ MODSEQ \(\d+\)\)/);
      const conflict = await raw.command('f', `UID STORE ${u1} (UNCHANGEDSINCE ${modseq}) +FLAGS (\\Flagged)`);
      assert.match(conflict, new RegExp(`f OK \\[MODIFIED ${u1}\\]`));
      const changed = await raw.command('g', `UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${modseq})`);
      assert.match(changed, new RegExp(`UID ${u1} FLAGS`));
      assert.doesNotMatch(changed, new RegExp(`UID ${u2} FLAGS`));
      await raw.command('h', `UID STORE ${u2} +FLAGS.SILENT (\\Deleted)`);
      const expunged = await raw.command('i', `UID EXPUNGE ${u2}`);
      assert.match(expunged, new RegExp(`\\* VANISHED ${u2}`));
      await raw.command('j', 'UNSELECT');
      const resync = await raw.command('k', `SELECT INBOX (QRESYNC (${validity} ${modseq}))`);
      assert.match(resync, new RegExp(`\\* VANISHED \\(EARLIER\\) ${u2}`));
      assert.match(resync, new RegExp(`FETCH \\(UID ${u1} FLAGS \\([^)]*\\\\Answered`));
    } finally {
      raw.close();
    }
  });
});
