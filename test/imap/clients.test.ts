/**
 * IMAP interoperability with real clients from Debian against `tern serve`:
 * - isync (mbsync) mirrors every mailbox into a Maildir tree byte for byte, changes nothing
 *   on a second run, pushes local additions, flags, deletions and new folders back, and a
 *   further run is again a no-op;
 * - mutt (on a pseudo-terminal) deletes a message, pipes one decoded and shows one in its pager;
 * - Python's imaplib: the everyday commands, IDLE, STARTTLS, implicit TLS, and parser edge
 *   cases (literals, escapes, nested lists, sequence sets, malformed commands) sent raw.
 * Each client works in its own account; every client run has a hard timeout.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { cli, tempDir } from '../helpers/tern.js';
import { deliver, PASSWORD } from '../pop3/support.js';
import { mailer, storedMessages } from '../smtp/support.js';
import {
  comparable,
  imaplib,
  mbsync,
  mbsyncCommands,
  MBSYNC,
  mbsyncVersion,
  MUTT,
  PYTHON,
  readMaildir,
  runOnPty,
  seqOf,
  writeMbsyncConfig,
  type ImaplibPlan,
  type MaildirFile,
} from './client-programs.js';
import { imapflow, serveImap } from './support.js';

const USERS = ['sync', 'mutt', 'py', 'idle', 'parser', 'tls'].map((u) => `${u}@example.test`);

/** What one mailbox holds, seen through imapflow: uid → X-Seq, flags (without \Recent) and the whole message. */
interface ServerMessage {
  uid: number;
  seq: string;
  flags: string[];
  source: Buffer;
}

async function serverMailbox(port: number, user: string, path: string): Promise<ServerMessage[]> {
  const client = await imapflow(port, user);
  try {
    const lock = await client.getMailboxLock(path);
    try {
      if (client.mailbox === false || client.mailbox.exists === 0) return [];
      const messages = await client.fetchAll('1:*', { uid: true, flags: true, source: true });
      return messages.map((m) => ({
        uid: m.uid,
        seq: seqOf(m.source!),
        flags: [...m.flags!].filter((f) => f !== '\\Recent').sort(),
        source: m.source!,
      }));
    } finally {
      lock.release();
    }
  } finally {
    await client.logout();
  }
}

const seqs = (list: Array<{ seq: string } | MaildirFile>) => list.map((m) => ('seq' in m ? m.seq : seqOf(m.data))).sort((a, b) => Number(a) - Number(b));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => String(from + i));

describe('IMAP with real clients', () => {
  const suite = serveImap({
    setup: async (site) => {
      for (const user of USERS) await cli(['user', 'add', user, '--password-stdin', ...site.args], `${PASSWORD}\n`);
    },
  });
  before(() => {
    for (const program of [MBSYNC, MUTT, PYTHON])
      if (!existsSync(program)) throw new Error(`${program} is missing: these tests need Debian's isync, mutt and python3 packages`);
  });

  describe('isync (mbsync)', () => {
    const user = 'sync@example.test';
    const work = tempDir('tern-mbsync-');
    const maildir = join(work, 'mail');
    const config = join(work, 'mbsyncrc');
    const big = randomBytes(1_500_000);

    /** Twenty varied messages: composed by nodemailer (text, alternative, attachments, one of 2 MB) and exact 8-bit ones. */
    async function deliverTwenty(): Promise<void> {
      const transport = mailer(suite.tern.smtpPort);
      try {
        const envelope = { from: 'sender@remote.test', to: [user] };
        for (let i = 1; i <= 12; i++) {
          const headers = { 'X-Seq': String(i) };
          const base = { envelope, from: '"Zoë Sender" <sender@remote.test>', to: user, headers, subject: `Sync ${i} — Grüße`, text: `Text ${i}\n` };
          if (i <= 6) await transport.sendMail({ ...base, text: `Plain ${i}: ${'lorem ipsum '.repeat(i * 20)}\n.dot line\nFrom the start\n` });
          else if (i <= 9) await transport.sendMail({ ...base, html: `<p>Message <b>${i}</b> — café</p>` });
          else if (i <= 11) await transport.sendMail({ ...base, attachments: [{ filename: `data-${i}.bin`, content: randomBytes(5000 * i) }] });
          else await transport.sendMail({ ...base, subject: 'Sync 12 — large', attachments: [{ filename: 'large.bin', content: big }] });
        }
      } finally {
        transport.close();
      }
      const eightBit = (i: number, body: Buffer) =>
        Buffer.concat([
          Buffer.from(`From: sender@remote.test\r\nTo: ${user}\r\nSubject: Sync ${i} 8bit\r\nX-Seq: ${i}\r\nMIME-Version: 1.0\r\n`, 'latin1'),
          body,
        ]);
      const utf8 = (i: number) =>
        eightBit(i, Buffer.from(`Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln ${i} — ✓ ünïcödé\r\n`));
      const latin1 = (i: number) =>
        eightBit(
          i,
          Buffer.from(`Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9 cr\xe8me ${i} \xff\r\n`, 'latin1'),
        );
      const mixed = (i: number) =>
        eightBit(
          i,
          Buffer.from(
            [
              'Content-Type: multipart/mixed; boundary="outer"',
              '',
              '--outer',
              'Content-Type: multipart/alternative; boundary="inner"',
              '',
              '--inner',
              'Content-Type: text/plain; charset=utf-8',
              'Content-Transfer-Encoding: 8bit',
              '',
              `Zoë ${i} plain`,
              '--inner',
              'Content-Type: text/html; charset=utf-8',
              'Content-Transfer-Encoding: 8bit',
              '',
              `<p>Zoë ${i} html</p>`,
              '--inner--',
              '--outer',
              'Content-Type: text/plain; charset=utf-8; name="notes.txt"',
              'Content-Disposition: attachment; filename="notes.txt"',
              'Content-Transfer-Encoding: 8bit',
              '',
              'Notizen: Größe, Maß',
              '--outer--',
              '',
            ].join('\r\n'),
          ),
        );
      const raw = [utf8(13), utf8(14), latin1(15), latin1(16), mixed(17), mixed(18), eightBit(19, Buffer.from('\r\n')), utf8(20)];
      for (const m of raw) await deliver(suite.tern.smtpPort, user, m);
    }

    const localInbox = () => readMaildir(join(maildir, 'INBOX'));
    const names = () =>
      ['INBOX', 'Projects', 'Projects/2026']
        .filter((f) => existsSync(join(maildir, f, 'cur')))
        .flatMap((f) => readMaildir(join(maildir, f)).map((m) => `${f}/${m.path}`))
        .sort();
    const transcript = (r: { code: number | null; stdout: string; stderr: string }) => `exit ${r.code}\n${r.stdout.slice(-6000)}\n${r.stderr.slice(-3000)}`;
    /** Commands that would change either side (CLOSE only expunges what is marked \Deleted). */
    const changing = (commands: string[]) =>
      commands.filter((c) => /^(APPEND|CREATE|DELETE|RENAME|(UID )?STORE|(UID )?EXPUNGE|UID FETCH .*BODY\.PEEK\[\])/.test(c));

    /** Every local message has a server twin (same UID) with the same bytes; returns the server side. */
    async function assertMirrored(folder: string): Promise<ServerMessage[]> {
      const server = await serverMailbox(suite.imapPort, user, folder);
      const local = readMaildir(join(maildir, folder));
      assert.equal(local.length, server.length, `${folder}: as many messages on both sides`);
      const byUid = new Map(server.map((m) => [m.uid, m]));
      for (const file of local) {
        assert.ok(file.uid !== null, `${folder}/${file.path} carries its UID`);
        const twin = byUid.get(file.uid);
        assert.ok(twin, `${folder}/${file.path}: UID ${file.uid} is on the server`);
        assert.equal(comparable(file.data), comparable(twin.source), `${folder}/${file.path} has the bytes IMAP serves`);
      }
      return server;
    }

    it('mirrors twenty messages (8-bit, multipart, 2 MB) into a Maildir, byte for byte, without marking them \\Seen', async () => {
      await deliverTwenty();
      writeMbsyncConfig(config, { port: suite.imapPort, user, password: PASSWORD, maildir, version: await mbsyncVersion() });
      mkdirSync(maildir);
      const run = await mbsync(config);
      assert.equal(run.code, 0, transcript(run));
      const fetched = mbsyncCommands(run).filter((c) => /^UID FETCH \d+ \(BODY\.PEEK\[\]\)$/.test(c));
      assert.equal(fetched.length, 20, transcript(run));

      const server = await assertMirrored('INBOX');
      assert.deepEqual(seqs(server), range(1, 20));
      assert.deepEqual(seqs(localInbox()), range(1, 20));
      const large = server.find((m) => m.seq === '12')!;
      assert.ok(large.source.length > 2_000_000, `the large message has ${large.source.length} bytes`);
      assert.ok(comparable(large.source).includes(big.toString('base64').slice(0, 76)), 'the attachment arrived');
      for (const m of server) assert.ok(!m.flags.includes('\\Seen'), `message ${m.seq} still unseen on the server`);
      for (const m of localInbox()) assert.ok(m.path.startsWith('new/') && !m.flags.includes('S'), `${m.path} is new locally`);
      for (const folder of ['Archive', 'Drafts', 'Junk', 'Sent', 'Trash']) assert.ok(existsSync(join(maildir, folder, 'cur')), `${folder} created locally`);
    });

    it('changes nothing on a second run', async () => {
      const before = names();
      const serverBefore = await serverMailbox(suite.imapPort, user, 'INBOX');
      const run = await mbsync(config);
      assert.equal(run.code, 0, transcript(run));
      assert.deepEqual(changing(mbsyncCommands(run)), [], transcript(run));
      assert.match(run.stdout, /far side: 20 messages/);
      assert.match(run.stdout, /near side: 20 messages/);
      assert.deepEqual(names(), before, 'the same files with the same names');
      const serverAfter = await serverMailbox(suite.imapPort, user, 'INBOX');
      assert.deepEqual(
        serverAfter.map((m) => [m.uid, m.flags]),
        serverBefore.map((m) => [m.uid, m.flags]),
      );
    });

    it('pushes local changes: new messages, a new folder tree, flags and a deletion; a third run is a no-op', async () => {
      const inbox = join(maildir, 'INBOX');
      const local = localInbox();
      const three = local.find((m) => seqOf(m.data) === '3')!;
      const five = local.find((m) => seqOf(m.data) === '5')!;
      renameSync(join(inbox, three.path), join(inbox, 'cur', `${three.path.slice(4).replace(/:2,.*$/, '')}:2,FS`));
      unlinkSync(join(inbox, five.path));
      const message = (seq: number, subject: string, body: string) =>
        Buffer.from(`From: sync@example.test\nTo: sync@example.test\nSubject: ${subject}\nX-Seq: ${seq}\nMIME-Version: 1.0\n${body}`);
      writeFileSync(join(inbox, 'new', '1700000000.local101.client'), message(101, 'written locally', '\nunread local message\n'));
      writeFileSync(
        join(inbox, 'cur', '1700000001.local102.client:2,S'),
        message(102, 'written locally, 8-bit', 'Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nGrüße ✓\n'),
      );
      for (const folder of ['Projects', 'Projects/2026']) for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(maildir, folder, sub), { recursive: true });
      writeFileSync(join(maildir, 'Projects', 'cur', '1700000002.local201.client:2,F'), message(201, 'project plan', '\nflagged\n'));
      writeFileSync(join(maildir, 'Projects/2026', 'new', '1700000003.local202.client'), message(202, 'project 2026', '\nnested folder\n'));

      const run = await mbsync(config);
      assert.equal(run.code, 0, transcript(run));
      const commands = mbsyncCommands(run);
      assert.ok(commands.includes('CREATE "Projects"') && commands.includes('CREATE "Projects/2026"'), transcript(run));
      assert.equal(commands.filter((c) => c.startsWith('APPEND ')).length, 4, transcript(run));
      assert.ok(commands.includes(`UID STORE ${three.uid} +FLAGS.SILENT (\\Flagged \\Seen)`), transcript(run));
      assert.ok(commands.includes(`UID STORE ${five.uid} +FLAGS.SILENT (\\Deleted)`), transcript(run));

      const server = await assertMirrored('INBOX');
      assert.deepEqual(seqs(server), [...range(1, 4), ...range(6, 20), '101', '102'], 'nothing lost, nothing twice, 5 expunged');
      const flagsOf = (seq: string) => server.find((m) => m.seq === seq)!.flags;
      assert.deepEqual(flagsOf('3'), ['\\Flagged', '\\Seen']);
      assert.deepEqual(flagsOf('101'), []);
      assert.deepEqual(flagsOf('102'), ['\\Seen']);
      assert.ok(!server.some((m) => m.uid === five.uid));
      const projects = await assertMirrored('Projects');
      assert.deepEqual(
        projects.map((m) => [m.seq, m.flags]),
        [['201', ['\\Flagged']]],
      );
      assert.deepEqual(seqs(await assertMirrored('Projects/2026')), ['202']);
      const client = await imapflow(suite.imapPort, user);
      try {
        const listed = (await client.list()).map((b) => b.path);
        assert.ok(listed.includes('Projects') && listed.includes('Projects/2026'), listed.join(', '));
      } finally {
        await client.logout();
      }

      const before = names();
      const serverBefore = (await Promise.all(['INBOX', 'Projects', 'Projects/2026'].map((f) => serverMailbox(suite.imapPort, user, f)))).map((ms) =>
        ms.map((m) => [m.uid, m.flags]),
      );
      const again = await mbsync(config);
      assert.equal(again.code, 0, transcript(again));
      assert.deepEqual(changing(mbsyncCommands(again)), [], transcript(again));
      assert.match(again.stdout, /far side: 21 messages/);
      assert.match(again.stdout, /near side: 21 messages/);
      assert.deepEqual(names(), before);
      const serverAfter = (await Promise.all(['INBOX', 'Projects', 'Projects/2026'].map((f) => serverMailbox(suite.imapPort, user, f)))).map((ms) =>
        ms.map((m) => [m.uid, m.flags]),
      );
      assert.deepEqual(serverAfter, serverBefore);
    });
  });

  describe('mutt', () => {
    const user = 'mutt@example.test';
    const home = tempDir('tern-mutt-');
    const muttrc = join(home, 'muttrc');
    const env = () => ({ HOME: home, TERM: 'vt100', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', PATH: process.env.PATH ?? '/usr/bin:/bin' });
    const mutt = (push: string, steps: Array<{ wait: string; keys: string }> = []) =>
      runOnPty([MUTT, '-n', '-F', muttrc, '-d', '2', '-f', `imap://mutt%40example.test@127.0.0.1:${suite.imapPort}/INBOX`, '-e', `push ${push}`], {
        cwd: home,
        env: env(),
        steps,
      });
    const debugLog = () => (existsSync(join(home, '.muttdebug0')) ? readFileSync(join(home, '.muttdebug0'), 'utf8').slice(-5000) : '(no debug log)');

    before(async () => {
      writeFileSync(
        muttrc,
        [
          `set imap_user="${user}"`,
          `set imap_pass="${PASSWORD}"`,
          'set ssl_starttls=no',
          'set ssl_force_tls=no',
          `set folder="imap://127.0.0.1:${suite.imapPort}/"`,
          'set spoolfile="+INBOX"',
          'set header_cache=""',
          'set message_cachedir=""',
          'set record=""',
          'set postponed=""',
          'set sort=mailbox-order',
          'set delete=yes',
          'set quit=yes',
          'set move=no',
          'set mark_old=no',
          'set wait_key=no',
          'set pipe_decode=yes',
          'set charset="utf-8"',
          'set timeout=5',
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      const message = (seq: number, headers: string, body: string) =>
        `From: "Mutt Sender" <sender@remote.test>\r\nTo: ${user}\r\nX-Seq: ${seq}\r\nMIME-Version: 1.0\r\n${headers}\r\n${body}`;
      await deliver(suite.tern.smtpPort, user, message(1, 'Subject: mutt one\r\n', 'first body\r\n'));
      await deliver(
        suite.tern.smtpPort,
        user,
        message(
          2,
          'Subject: mutt two\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n',
          'Gr=C3=BC=C3=9Fe aus K=C3=B6ln, second body\r\n',
        ),
      );
      await deliver(suite.tern.smtpPort, user, message(3, 'Subject: mutt three\r\n', 'third body, shown in the pager\r\n'));
    });

    it('deletes the first message and syncs: it is expunged on the server, the others stay', async () => {
      const before = await serverMailbox(suite.imapPort, user, 'INBOX');
      assert.deepEqual(seqs(before), ['1', '2', '3']);
      const r = await mutt('<first-entry><delete-message><sync-mailbox><quit>');
      assert.equal(r.status, 0, `${r.screen}\n${debugLog()}`);
      const after = await serverMailbox(suite.imapPort, user, 'INBOX');
      assert.deepEqual(
        after.map((m) => [m.uid, m.seq]),
        before.slice(1).map((m) => [m.uid, m.seq]),
        `${r.screen}\n${debugLog()}`,
      );
      for (const m of after) assert.ok(!m.flags.includes('\\Deleted'));
    });

    it('pipes a message decoded (quoted-printable UTF-8) to a command', async () => {
      const file = join(home, 'piped.txt');
      const r = await mutt(`<first-entry><pipe-message>cat<space>>${file}<enter><quit>`);
      assert.equal(r.status, 0, `${r.screen}\n${debugLog()}`);
      const piped = readFileSync(file, 'utf8');
      assert.match(piped, /^Subject: mutt two$/m);
      assert.match(piped, /^Grüße aus Köln, second body$/m);
      assert.doesNotMatch(piped, /=C3=BC/);
    });

    it('shows a message in its pager, and marks it \\Seen on the server', async () => {
      const r = await mutt('<last-entry><display-message>', [
        { wait: 'third body, shown in the pager', keys: 'q' },
        { wait: 'Mutt: =INBOX', keys: 'q' },
      ]);
      assert.equal(r.status, 0, `${r.screen}\n${debugLog()}`);
      assert.equal(r.stepsLeft, 0);
      assert.match(r.screen, /Subject: mutt three/);
      const flags = new Map((await serverMailbox(suite.imapPort, user, 'INBOX')).map((m) => [m.seq, m.flags]));
      assert.deepEqual(flags.get('3'), ['\\Seen']);
      assert.deepEqual(flags.get('2'), []);
    });
  });

  describe('Python imaplib', () => {
    const plan = (user: string, steps: ImaplibPlan['steps'], more: Partial<ImaplibPlan> = {}): ImaplibPlan => ({
      port: suite.imapPort,
      mode: 'plain',
      user,
      password: PASSWORD,
      steps,
      ...more,
    });
    const login = (user: string): ImaplibPlan['steps'][number] => ['login', user, PASSWORD];
    const simple = (user: string, seq: number, subject: string, body: string) =>
      `From: py@remote.test\r\nTo: ${user}\r\nSubject: ${subject}\r\nX-Seq: ${seq}\r\n\r\n${body}\r\n`;
    /** A raw step's text, failing on an error step. */
    const rawText = (step: unknown): string => {
      assert.equal(typeof step, 'string', JSON.stringify(step));
      return step as string;
    };

    it('LOGIN, CAPABILITY, LIST, SELECT, SEARCH (UTF-8 literal), FETCH, STORE, COPY, EXPUNGE, APPEND', async () => {
      const user = 'py@example.test';
      const subjects = ['py alpha', '=?UTF-8?Q?Gr=C3=BC=C3=9Fe_py_beta?=', 'py gamma', 'py delta'];
      for (const [i, s] of subjects.entries()) await deliver(suite.tern.smtpPort, user, simple(user, i + 1, s, `body ${i + 1}`));
      const stored = await storedMessages(suite.site, user);
      const appended = `From: py@example.test\r\nSubject: appended\r\nX-Seq: 5\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGrüße — appended by imaplib\r\n`;
      const r = await imaplib(
        plan(user, [
          ['capability'],
          login(user),
          ['capability'],
          ['list'],
          ['select', 'INBOX'],
          ['literal', 'Grüße'],
          ['search', 'UTF-8', 'SUBJECT'],
          ['fetch', '1:*', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])'],
          ['fetch', '1', '(BODY.PEEK[]<0.100>)'],
          ['fetch', '1', '(FLAGS)'],
          ['store', '1', '+FLAGS', '(\\Flagged \\Seen)'],
          ['copy', '1:2', 'Archive'],
          ['store', '3', '+FLAGS.SILENT', '(\\Deleted)'],
          ['expunge'],
          ['append', 'INBOX', '(\\Seen)', appended],
          ['fetch', '4', '(UID FLAGS BODY.PEEK[])'],
          ['search', null, 'ALL'],
          ['status', 'Archive', '(MESSAGES UIDNEXT)'],
          ['logout'],
        ]),
      );
      assert.equal(r.error, undefined, JSON.stringify(r));
      const [capa, loginAnswer, capaAfter, list, select, , search, headers, partial, flags, store, copy, , expunge, append, fetched, all, status, bye] =
        r.steps as Array<[string, unknown[]]>;
      assert.match(r.welcome!, /^\* OK .*IMAP4rev1/);
      const capaBefore = String(capa![1][0]).split(' ');
      for (const c of ['IMAP4rev1', 'STARTTLS', 'AUTH=PLAIN', 'LITERAL+', 'IDLE', 'UIDPLUS']) assert.ok(capaBefore.includes(c), c);
      assert.equal(loginAnswer![0], 'OK');
      assert.ok(!String(capaAfter![1].at(-1)).split(' ').includes('STARTTLS'));
      assert.ok(list![1].includes('(\\HasNoChildren) "/" INBOX'), JSON.stringify(list));
      assert.ok(list![1].includes('(\\HasNoChildren \\Sent) "/" Sent'), JSON.stringify(list));
      assert.deepEqual(select, ['OK', ['4']]);
      assert.deepEqual(search, ['OK', ['2']]);
      assert.deepEqual(
        headers![1],
        subjects.flatMap((subject, i) => {
          const field = `Subject: ${subject}\r\n\r\n`;
          return [[`${i + 1} (BODY[HEADER.FIELDS (SUBJECT)] {${field.length}}`, field], ')'];
        }),
      );
      assert.deepEqual(partial![1], [['1 (BODY[]<0> {100}', stored[0]!.raw.subarray(0, 100).toString('latin1')], ')']);
      assert.deepEqual(flags, ['OK', ['1 (FLAGS (\\Recent))']], 'BODY.PEEK does not set \\Seen; this first session sees \\Recent');
      assert.match(String(store![1][0]), /^1 \(FLAGS \((?=[^)]*\\Seen)(?=[^)]*\\Flagged)[^)]*\)\)$/);
      assert.match(String(copy![1][0]), /^\[COPYUID \d+ 1:2 1:2\] /);
      assert.deepEqual(expunge, ['OK', ['3']]);
      assert.match(String(append![1][0]), /^\[APPENDUID \d+ 5\] /);
      const [fetchLine, fetchedBytes] = fetched![1][0] as [string, string];
      assert.match(fetchLine, /^4 \(UID 5 FLAGS \(\\Seen \\Recent\) BODY\[\] \{\d+\}$/);
      assert.equal(fetchedBytes, Buffer.from(appended).toString('latin1'), 'the appended literal comes back byte for byte');
      assert.deepEqual(all, ['OK', ['1 2 3 4']]);
      assert.deepEqual(status, ['OK', ['Archive (MESSAGES 2 UIDNEXT 3)']]);
      assert.equal(bye![0], 'BYE');

      const inbox = await serverMailbox(suite.imapPort, user, 'INBOX');
      assert.deepEqual(
        inbox.map((m) => [m.seq, m.flags]),
        [
          ['1', ['\\Flagged', '\\Seen']],
          ['2', []],
          ['4', []],
          ['5', ['\\Seen']],
        ],
      );
      const archive = await serverMailbox(suite.imapPort, user, 'Archive');
      assert.deepEqual(
        archive.map((m) => [m.seq, m.flags]),
        [
          ['1', ['\\Flagged', '\\Seen']],
          ['2', []],
        ],
      );
      assert.ok(archive[1]!.source.equals(stored[1]!.raw), 'COPY keeps the bytes');
    });

    it('IDLE announces a message appended by another connection, and DONE ends it', async () => {
      const user = 'idle@example.test';
      await deliver(suite.tern.smtpPort, user, simple(user, 1, 'before idle', 'x'));
      const r = await imaplib(plan(user, [login(user), ['select', 'INBOX'], ['idle', 'INBOX', simple(user, 2, 'during idle', 'y')], ['noop'], ['logout']]));
      assert.equal(r.error, undefined, JSON.stringify(r));
      const [continuation, announced, rest, appended] = r.steps[2] as [string, string, string, [string, string[]]];
      assert.match(continuation, /^\+ /);
      assert.equal(announced, '* 2 EXISTS\r\n');
      assert.match(rest, /^[A-Z]+\d+ OK /m);
      assert.match(appended[1][0]!, /^\[APPENDUID \d+ 2\]/);
      assert.equal((r.steps[3] as [string])[0], 'OK');
      assert.deepEqual(seqs(await serverMailbox(suite.imapPort, user, 'INBOX')), ['1', '2']);
    });

    it('parses literals, escapes, nested lists and sequence sets; answers malformed commands BAD and keeps going', async () => {
      const user = 'parser@example.test';
      const subjects = ['alpha', 'beta', 'gamma', 'He said "hi" \\o/', '=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= parser'];
      for (const [i, s] of subjects.entries()) await deliver(suite.tern.smtpPort, user, simple(user, i + 1, s, `body number ${i + 1}`));
      const quotedName = 'quo"te\\d';
      const toAppend = 'Subject: into a quoted mailbox\r\nX-Seq: 6\r\n\r\nhi\r\n';
      const malformed: Array<[string, string]> = [
        ['b1', 'FETCH'],
        ['b2', 'FETCH 1 (UID (FLAGS)'],
        ['b3', 'FETCH 1 FLAGS)'],
        ['b4', 'FROBNICATE'],
        ['b5', 'FETCH 0 (FLAGS)'],
        ['b6', 'FETCH 1:x (FLAGS)'],
        ['b7', 'FETCH 1,,2 (FLAGS)'],
        ['b8', 'SEARCH SUBJECT "unterminated'],
        ['b9', 'SELECT'],
        ['c1', 'STORE 1 +FLAGS (\\Seen'],
        ['c2', 'FETCH 1 (BODY[]<5.x>)'],
        ['c3', 'FETCH 99 (FLAGS)'],
        ['c4', 'UID FETCH (FLAGS)'],
        ['c5', ''],
      ];
      const raw = (tag: string, ...chunks: string[]): ImaplibPlan['steps'][number] => ['raw', tag, chunks];
      const r = await imaplib(
        plan(user, [
          raw('l1', `l1 LOGIN {${Buffer.byteLength(user)}}\r\n`, `${user} {${PASSWORD.length}+}\r\n${PASSWORD}\r\n`),
          raw('s1', 's1 SELECT {5}\r\n', 'INBOX\r\n'),
          raw('l2', 'l2 LIST "" {1+}\r\n*\r\n'),
          raw('l3', 'l3 LIST {0}\r\n', ' INBOX\r\n'),
          raw('q1', 'q1 CREATE "quo\\"te\\\\d"\r\n'),
          raw('q2', 'q2 LIST "" "quo*"\r\n'),
          raw('q3', `q3 APPEND "quo\\"te\\\\d" (\\Flagged) {${toAppend.length}+}\r\n${toAppend}\r\n`),
          raw('q4', `q4 STATUS {${quotedName.length}+}\r\n${quotedName} (MESSAGES)\r\n`),
          raw('q5', 'q5 SEARCH SUBJECT "said \\"hi\\" \\\\o/"\r\n'),
          raw('u1', 'u1 SEARCH CHARSET UTF-8 SUBJECT {7+}\r\nGrüße\r\n'),
          raw('u2', 'u2 SEARCH CHARSET UTF-8 BODY {6}\r\n', 'NUMBER\r\n'),
          raw('n1', 'n1 FETCH 2 (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT X-SEQ)] BODY.PEEK[TEXT]<0.4> BODYSTRUCTURE)\r\n'),
          raw('n2', 'n2 SEARCH (OR (SUBJECT alpha) (FROM nobody)) NOT (DELETED)\r\n'),
          raw('n3', 'n3 SEARCH OR (SUBJECT alpha) (OR SUBJECT beta (SUBJECT gamma))\r\n'),
          raw('r1', 'r1 FETCH 1:* (UID)\r\n'),
          raw('r2', 'r2 FETCH *:1 (UID)\r\n'),
          raw('r3', 'r3 FETCH 2,4:* (UID)\r\n'),
          raw('r4', 'r4 UID FETCH 999:* (UID)\r\n'),
          raw('r5', 'r5 SEARCH 2,4:*\r\n'),
          raw('r6', 'r6 UID SEARCH UID *:4\r\n'),
          ...malformed.flatMap(([tag, command], i) => [raw(tag, `${tag}${command ? ` ${command}` : ''}\r\n`), raw(`k${i}`, `k${i} NOOP\r\n`)]),
          raw('z1', 'z1 FETCH 1 (FLAGS BODY.PEEK[TEXT])\r\n'),
          ['logout'],
        ]),
      );
      assert.equal(r.error, undefined, JSON.stringify(r));
      // Each raw answer ends with its tagged line.
      const answers = new Map(r.steps.filter((s) => typeof s === 'string').map((s) => [/([a-z]\d+) [A-Z]+[^\r\n]*\r\n$/.exec(s)?.[1], s]));
      const answer = (tag: string) => rawText(answers.get(tag));

      assert.match(answer('l1'), /^\+ [^\r\n]*\r\nl1 OK /);
      assert.match(answer('s1'), /^\+ [^]*\* 5 EXISTS\r\n[^]*s1 OK \[READ-WRITE\]/);
      assert.match(answer('l2'), /^\* LIST \(\\HasNoChildren\) "\/" INBOX\r\n/m);
      assert.match(answer('l2'), /^\* LIST \(\\HasNoChildren \\Trash\) "\/" Trash\r\n/m);
      assert.equal(answer('l3').match(/^\* LIST/gm)?.length, 1, answer('l3'));
      assert.match(answer('l3'), /^\* LIST \(\\HasNoChildren\) "\/" INBOX\r\n/m);
      assert.match(answer('q1'), /^q1 OK /m);
      assert.match(answer('q2'), /^\* LIST \(\\HasNoChildren\) "\/" "quo\\"te\\\\d"\r\nq2 OK /);
      assert.match(answer('q3'), /^q3 OK \[APPENDUID \d+ 1\]/);
      assert.match(answer('q4'), /^\* STATUS "quo\\"te\\\\d" \(MESSAGES 1\)\r\nq4 OK /);
      assert.match(answer('q5'), /^\* SEARCH 4\r\nq5 OK /);
      assert.match(answer('u1'), /^\* SEARCH 5\r\nu1 OK /);
      assert.match(answer('u2'), /^\+ [^\r\n]*\r\n\* SEARCH 1 2 3 4 5\r\nu2 OK /);
      const n1 = answer('n1');
      assert.match(
        n1,
        /^\* 2 FETCH \(UID 2 FLAGS \(\\Recent\) BODY\[HEADER\.FIELDS \(SUBJECT X-SEQ\)\] \{27\}\r\nSubject: beta\r\nX-Seq: 2\r\n\r\n BODY\[TEXT\]<0> \{4\}\r\nbody BODYSTRUCTURE \("TEXT" "PLAIN" /,
      );
      assert.match(n1, /\)\)\r\nn1 OK /);
      assert.match(answer('n2'), /^\* SEARCH 1\r\n/);
      assert.match(answer('n3'), /^\* SEARCH 1 2 3\r\n/);
      const fetchUids = (text: string) => [...text.matchAll(/^\* (\d+) FETCH \(UID (\d+)\)/gm)].map((m) => `${m[1]}:${m[2]}`);
      assert.deepEqual(fetchUids(answer('r1')), ['1:1', '2:2', '3:3', '4:4', '5:5']);
      assert.deepEqual(fetchUids(answer('r2')), ['1:1', '2:2', '3:3', '4:4', '5:5']);
      assert.deepEqual(fetchUids(answer('r3')), ['2:2', '4:4', '5:5']);
      assert.deepEqual(fetchUids(answer('r4')), ['5:5'], 'UID 999:* is 5:999, so it names the last message (RFC 3501 6.4.8)');
      assert.match(answer('r5'), /^\* SEARCH 2 4 5\r\n/);
      assert.match(answer('r6'), /^\* SEARCH 4 5\r\n/);
      for (const [i, [tag, command]] of malformed.entries()) {
        assert.match(answer(tag), new RegExp(`^${tag} BAD [^\\r\\n]+\\r\\n$`), `${command} → ${answer(tag)}`);
        assert.match(answer(`k${i}`), new RegExp(`^k${i} OK `), `the session goes on after ${command}`);
      }
      assert.match(answer('z1'), /^\* 1 FETCH \(FLAGS \(\\Recent\) BODY\[TEXT\] \{15\}\r\nbody number 1\r\n\)\r\nz1 OK /);
      assert.equal((r.steps.at(-1) as [string])[0], 'BYE');
      const quoted = await serverMailbox(suite.imapPort, user, quotedName);
      assert.deepEqual(
        quoted.map((m) => [m.seq, m.flags]),
        [['6', ['\\Flagged']]],
      );
    });

    it('STARTTLS, then LOGIN and FETCH over TLS; a second STARTTLS is refused', async () => {
      const user = 'tls@example.test';
      await deliver(suite.tern.smtpPort, user, simple(user, 1, 'over tls', 'secret body'));
      const stored = await storedMessages(suite.site, user);
      const r = await imaplib(
        plan(user, [
          ['capability'],
          ['starttls'],
          ['capability'],
          login(user),
          ['select', 'INBOX'],
          ['fetch', '1', '(BODY.PEEK[])'],
          ['raw', 's2', ['s2 STARTTLS\r\n']],
          ['logout'],
        ]),
      );
      assert.equal(r.error, undefined, JSON.stringify(r));
      const [before, starttls, after, loginAnswer, , fetched, again] = r.steps as Array<[string, unknown[]]>;
      assert.ok(String(before![1][0]).split(' ').includes('STARTTLS'));
      assert.equal(starttls![0], 'OK');
      const capaAfter = String(after![1][0]).split(' ');
      assert.ok(!capaAfter.includes('STARTTLS') && capaAfter.includes('AUTH=PLAIN'), capaAfter.join(' '));
      assert.equal(loginAnswer![0], 'OK');
      assert.equal((fetched![1][0] as string[])[1], stored[0]!.raw.toString('latin1'));
      assert.match(again as unknown as string, /^s2 (BAD|NO) /);
    });

    it('serves implicit TLS on the imaps port (IMAP4_SSL)', async () => {
      const user = 'tls@example.test';
      const stored = await storedMessages(suite.site, user);
      const r = await imaplib(
        plan(user, [['capability'], login(user), ['select', 'INBOX'], ['fetch', '1', '(BODY.PEEK[])'], ['raw', 's1', ['s1 STARTTLS\r\n']], ['logout']], {
          mode: 'ssl',
          port: suite.imapsPort,
        }),
      );
      assert.equal(r.error, undefined, JSON.stringify(r));
      assert.doesNotMatch(r.welcome!, /STARTTLS/);
      const [capa, loginAnswer, select, fetched, starttls] = r.steps as Array<[string, unknown[]]>;
      assert.ok(!String(capa![1][0]).split(' ').includes('STARTTLS'));
      assert.equal(loginAnswer![0], 'OK');
      assert.deepEqual(select, ['OK', ['1']]);
      assert.equal((fetched![1][0] as string[])[1], stored[0]!.raw.toString('latin1'));
      assert.match(starttls as unknown as string, /^s1 (BAD|NO) /);
    });
  });
});
