/**
 * IMAP protocol details over raw sockets: STARTTLS and implicit TLS, the plaintext rule,
 * literals (synchronizing, LITERAL+, streamed APPEND, too large), BAD for malformed
 * commands with the connection surviving, state checks, \Recent, LIST-EXTENDED and
 * LIST-STATUS, STATUS, ID, NAMESPACE, UNSELECT vs CLOSE, sequence numbers vs uids, and a
 * FETCH of a large mailbox streamed to a client that reads slowly.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mayUsePlaintext } from '../../src/auth/authenticate.js';
import { cli } from '../helpers/tern.js';
import { RawImap, serveImap } from './support.js';

const LOGIN = 'LOGIN alice@example.test password123';

function message(subject: string, body = 'Hello.\r\n'): string {
  return `From: bob@example.test\r\nTo: alice@example.test\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@test>\r\n\r\n${body}`;
}

describe('IMAP protocol over raw sockets', () => {
  const suite = serveImap({
    args: ['--max-message-size', '2M'],
    setup: async (site) => {
      await cli(['user', 'add', 'quota@example.test', '--password-stdin', '--quota', '50K', ...site.args], 'password123\n');
    },
  });

  it('refuses passwords in clear from non-loopback clients unless TLS or --insecure-auth', () => {
    assert.equal(mayUsePlaintext({ secure: false, remoteAddress: '192.0.2.7', insecureAuth: false }), false);
    assert.equal(mayUsePlaintext({ secure: true, remoteAddress: '192.0.2.7', insecureAuth: false }), true);
    assert.equal(mayUsePlaintext({ secure: false, remoteAddress: '192.0.2.7', insecureAuth: true }), true);
    assert.equal(mayUsePlaintext({ secure: false, remoteAddress: '::ffff:127.0.0.1', insecureAuth: false }), true);
  });

  it('upgrades with STARTTLS (input pipelined behind it is dropped) and serves implicit TLS', async () => {
    const raw = await RawImap.open(suite.imapPort);
    try {
      assert.match(await raw.command('a', 'CAPABILITY'), /STARTTLS/);
      raw.write('b STARTTLS\r\nc LOGIN injected attempt\r\n');
      await raw.until(/^b OK/m);
      await raw.startTls();
      const caps = await raw.command('d', 'CAPABILITY');
      assert.doesNotMatch(caps, /STARTTLS/);
      assert.doesNotMatch(caps, /^c /m, 'the pipelined command after STARTTLS was not run');
      assert.match(await raw.command('e', LOGIN), /^e OK \[CAPABILITY /m);
      assert.match(await raw.command('f', 'STARTTLS'), /^f BAD/m);
    } finally {
      raw.close();
    }
    const tls = await RawImap.open(suite.imapsPort, true);
    try {
      assert.doesNotMatch(await tls.command('a', 'CAPABILITY'), /STARTTLS/);
      assert.match(await tls.command('b', 'AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABwYXNzd29yZDEyMw=='), /^b OK/m);
    } finally {
      tls.close();
    }
  });

  it('answers BAD to malformed commands and keeps the connection; checks states', async () => {
    const raw = await RawImap.open(suite.imapPort);
    try {
      assert.match(await raw.command('a', 'SELECT INBOX'), /^a BAD .*before login/m);
      assert.match(await raw.command('b', 'FROBNICATE'), /^b BAD Unknown command/m);
      raw.write('* NOOP\r\n');
      assert.match(await raw.until(/^\* BAD/m), /Invalid tag/);
      assert.match(await raw.command('c', 'LOGIN "unterminated'), /^c BAD/m);
      assert.match(await raw.command('d', LOGIN), /^d OK/m);
      assert.match(await raw.command('e', 'FETCH 1 FLAGS'), /^e BAD .*without a selected mailbox/m);
      assert.match(await raw.command('f', 'SELECT INBOX'), /^f OK \[READ-WRITE\]/m);
      assert.match(await raw.command('g', 'FETCH 0:1 FLAGS'), /^g BAD/m);
      assert.match(await raw.command('h', 'FETCH 1 (FLAGS'), /^h BAD/m);
      assert.match(await raw.command('i', 'FETCH 1 BODY[9.MIME'), /^i BAD/m);
      assert.match(await raw.command('j', 'SEARCH FROB'), /^j BAD/m);
      assert.match(await raw.command('k', 'SEARCH CHARSET KOI8-R ALL'), /^k NO \[BADCHARSET/m);
      assert.match(await raw.command('l', 'STORE 1 +FLAGS (\\Seen'), /^l BAD/m);
      assert.match(await raw.command('m', 'UID FROB 1'), /^m BAD/m);
      assert.match(await raw.command('n', 'NOOP'), /^n OK/m, 'still alive');
    } finally {
      raw.close();
    }
    const guesser = await RawImap.open(suite.imapPort);
    try {
      for (const tag of ['a', 'b'])
        assert.match(await guesser.command(tag, 'LOGIN alice@example.test wrong'), new RegExp(`^${tag} NO \\[AUTHENTICATIONFAILED\\]`, 'm'));
      guesser.write('c LOGIN alice@example.test wrong\r\n');
      assert.match(await guesser.until(/^\* BYE/m), /c NO \[AUTHENTICATIONFAILED\][^]*\* BYE Too many failed logins/);
    } finally {
      guesser.close();
    }
  });

  it('takes synchronizing and non-synchronizing literals, streams APPEND bodies and refuses one too large', async () => {
    const raw = await RawImap.open(suite.imapPort);
    try {
      raw.write('a LOGIN {18}\r\n');
      await raw.until(/^\+ /m);
      raw.write('alice@example.test {11+}\r\npassword123\r\n');
      assert.match(await raw.until(/^a (OK|NO|BAD)/m), /^a OK/m);

      const body = message('literal', `${'x'.repeat(200_000)}\r\n`);
      raw.write(`b APPEND INBOX (\\Flagged) "24-Nov-2026 10:00:00 +0100" {${Buffer.byteLength(body)}}\r\n`);
      await raw.until(/^\+ /m);
      raw.write(`${body}\r\n`);
      const appended = await raw.until(/^b (OK|NO|BAD)[^\r]*\r\n/m);
      assert.match(appended, /^b OK \[APPENDUID \d+ \d+\]/m);
      const uid = /APPENDUID \d+ (\d+)/.exec(appended)![1]!;

      const small = message('plus');
      assert.match(await raw.command('c', `APPEND INBOX {${small.length}+}\r\n${small}`), /^c OK \[APPENDUID/m);

      raw.write('d APPEND INBOX {3000000}\r\n');
      assert.match(await raw.until(/^d (OK|NO|BAD)[^\r]*\r\n/m), /^d NO \[TOOBIG\]/m);
      raw.write(`e APPEND INBOX {3000000+}\r\n${'y'.repeat(3_000_000)}\r\n`);
      assert.match(await raw.until(/^e (OK|NO|BAD)[^\r]*\r\n/m), /^e NO \[TOOBIG\]/m);
      assert.match(await raw.command('f', 'APPEND Nowhere {5+}\r\nhello'), /^f NO \[TRYCREATE\]/m);

      await raw.command('g', 'SELECT INBOX');
      const fetched = await raw.command('h', `UID FETCH ${uid} (FLAGS INTERNALDATE RFC822.SIZE)`);
      assert.match(fetched, /FLAGS \(\\Flagged \\Recent\)/);
      assert.match(fetched, /INTERNALDATE "24-Nov-2026 09:00:00 \+0000"/);
      assert.match(fetched, new RegExp(`RFC822.SIZE ${Buffer.byteLength(body)}`));
    } finally {
      raw.close();
    }
  });

  it('keeps \\Recent for the first session only, and maps sequence numbers and uids after expunges', async () => {
    const first = await RawImap.open(suite.imapPort);
    const second = await RawImap.open(suite.imapPort);
    try {
      await first.command('a', LOGIN);
      await first.command('b', 'CREATE Recent/Test');
      for (const s of ['one', 'two', 'three']) await first.command('c', `APPEND Recent/Test {${message(s).length}+}\r\n${message(s)}`);
      assert.match(await first.command('d', 'SELECT Recent/Test'), /\* 3 RECENT/);
      await second.command('a', LOGIN);
      assert.match(await second.command('b', 'SELECT Recent/Test'), /\* 0 RECENT/);
      assert.match(await second.command('c', 'EXAMINE Recent/Test'), /^c OK \[READ-ONLY\]/m);
      assert.match(await second.command('c2', 'STORE 1 +FLAGS (\\Seen)'), /^c2 NO \[READ-ONLY\]/m);
      await second.command('c3', 'SELECT Recent/Test');

      assert.match(await first.command('e', 'STORE 2 +FLAGS.SILENT (\\Deleted)'), /^e OK/m);
      const expunged = await first.command('f', 'EXPUNGE');
      assert.match(expunged, /\* 2 EXPUNGE/);
      assert.match(await first.command('g', 'FETCH 2 (UID)'), /\* 2 FETCH \(UID 3\)/);
      // The other session learns of the expunge at NOOP, not during FETCH.
      const during = await second.command('h', 'FETCH 1:* (UID)');
      assert.doesNotMatch(during, /EXPUNGE/);
      assert.match(during, /\* 3 FETCH \(UID 3\)/);
      const noop = await second.command('i', 'NOOP');
      assert.match(noop, /\* 2 EXPUNGE/);
      assert.match(await second.command('j', 'FETCH 2 (UID)'), /\* 2 FETCH \(UID 3\)/);
      assert.match(await first.command('k', 'UNSELECT'), /^k OK/m);
      assert.match(await first.command('l', 'FETCH 1 UID'), /^l BAD/m);
    } finally {
      first.close();
      second.close();
    }
  });

  it('tells a new mailbox from a deleted one that had its id (UIDVALIDITY keys the shared state)', async () => {
    const a = await RawImap.open(suite.imapPort);
    const b = await RawImap.open(suite.imapPort);
    try {
      const m = message('reuse');
      await a.command('a', LOGIN);
      await a.command('b', 'CREATE Reuse/Old');
      await a.command('c', `APPEND Reuse/Old {${m.length}+}\r\n${m}`);
      await a.command('d', 'SELECT Reuse/Old');
      await a.command('e', `APPEND Reuse/Old {${m.length}+}\r\n${m}`);
      await a.command('f', 'DELETE Reuse/Old');
      await b.command('a', LOGIN);
      await b.command('b', 'CREATE Reuse/New');
      await b.command('c', `APPEND Reuse/New {${m.length}+}\r\n${m}`);
      const selected = await b.command('d', 'SELECT Reuse/New');
      assert.match(selected, /\* 1 EXISTS\r\n\* 1 RECENT/);
      const appended = await b.command('e', `APPEND Reuse/New {${m.length}+}\r\n${m}`);
      assert.match(appended, /\* 2 EXISTS\r\n\* 2 RECENT/);
    } finally {
      a.close();
      b.close();
    }
  });

  it('answers LIST-EXTENDED, LIST-STATUS, LSUB, STATUS, NAMESPACE and ID', async () => {
    const raw = await RawImap.open(suite.imapPort);
    try {
      await raw.command('a', LOGIN);
      assert.match(await raw.command('a2', 'ENABLE CONDSTORE X-UNKNOWN'), /\* ENABLED CONDSTORE\r\n/);
      assert.match(await raw.command('a3', 'ENABLE CONDSTORE'), /\* ENABLED\r\n/, 'only newly enabled ones are listed');
      await raw.command('b', 'CREATE Lists/Child');
      await raw.command('c', 'UNSUBSCRIBE Lists');
      assert.match(await raw.command('d', 'LIST "" ""'), /\* LIST \(\\Noselect\) "\/" ""/);
      const top = await raw.command('e', 'LIST "" %');
      assert.match(top, /\* LIST \(\\HasNoChildren\) "\/" INBOX/);
      assert.match(top, /\* LIST \(\\HasChildren\) "\/" Lists/);
      assert.doesNotMatch(top, /Lists\/Child/);
      assert.match(await raw.command('f', 'LIST "" Lists/%'), /\* LIST \(\\HasNoChildren\) "\/" Lists\/Child/);
      assert.match(await raw.command('f2', 'LIST "" inbox'), /\* LIST \(\\HasNoChildren\) "\/" INBOX/);
      const special = await raw.command('g', 'LIST (SPECIAL-USE) "" *');
      assert.match(special, /\\Sent\) "\/" Sent/);
      assert.doesNotMatch(special, /"\/" INBOX/);
      const subscribed = await raw.command('h', 'LIST (SUBSCRIBED) "" * RETURN (CHILDREN)');
      assert.match(subscribed, /\\Subscribed\) "\/" Lists\/Child/);
      assert.doesNotMatch(subscribed, /"\/" Lists\r\n/);
      const status = await raw.command('i', 'LIST "" (INBOX Sent) RETURN (STATUS (MESSAGES UIDNEXT SIZE))');
      assert.match(status, /\* STATUS INBOX \(MESSAGES \d+ UIDNEXT \d+ SIZE \d+\)/);
      assert.match(status, /\* STATUS Sent \(MESSAGES 0 UIDNEXT 1 SIZE 0\)/);
      assert.match(await raw.command('j', 'LSUB "" Lists*'), /\* LSUB \(\) "\/" Lists\/Child/);
      assert.match(
        await raw.command('k', 'STATUS Lists/Child (MESSAGES RECENT UNSEEN UIDVALIDITY HIGHESTMODSEQ)'),
        /\* STATUS Lists\/Child \(MESSAGES 0 RECENT 0 UNSEEN 0 UIDVALIDITY \d+ HIGHESTMODSEQ \d+\)/,
      );
      assert.match(await raw.command('l', 'STATUS Nowhere (MESSAGES)'), /^l NO \[NONEXISTENT\]/m);
      assert.match(await raw.command('m', 'NAMESPACE'), /\* NAMESPACE \(\("" "\/"\)\) NIL NIL/);
      assert.match(await raw.command('n', 'ID ("name" "test")'), /\* ID \("name" "Tern"/);
    } finally {
      raw.close();
    }
  });

  it('evaluates every SEARCH key', async () => {
    const raw = await RawImap.open(suite.imapPort);
    try {
      await raw.command('a', LOGIN);
      await raw.command('b', 'CREATE Search');
      const msgs = [
        'From: Zoë <zoe@one.test>\r\nTo: alice@example.test\r\nCc: carl@cc.test\r\nSubject: =?ISO-8859-1?Q?caf=E9?= order\r\nDate: Mon, 2 Feb 2026 08:00:00 +0000\r\nX-Tag: red\r\n\r\nPlain body about apples.\r\n',
        'From: max@two.test\r\nTo: alice@example.test\r\nBcc: hidden@bcc.test\r\nSubject: invoice\r\nDate: Tue, 10 Mar 2026 08:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
          Buffer.from('Bananen und Äpfel\r\n').toString('base64') +
          '\r\n',
        `From: zoe@one.test\r\nTo: bob@example.test\r\nSubject: big\r\nDate: Wed, 1 Apr 2026 08:00:00 +0000\r\n\r\n${'z'.repeat(5000)}\r\n`,
      ];
      const dates = ['"01-Feb-2026 12:00:00 +0000"', '"10-Mar-2026 12:00:00 +0000"', '"02-Apr-2026 12:00:00 +0000"'];
      for (const [i, m] of msgs.entries())
        await raw.command(
          `c${i}`,
          `APPEND Search (${i === 0 ? '\\Seen \\Answered $Work' : i === 1 ? '\\Flagged \\Draft' : '\\Deleted'}) ${dates[i]} {${Buffer.byteLength(m)}+}\r\n${m}`,
        );
      await raw.command('d', 'SELECT Search');
      const cases: Array<[string, string]> = [
        ['ALL', '1 2 3'],
        ['ANSWERED', '1'],
        ['UNANSWERED', '2 3'],
        ['DELETED', '3'],
        ['UNDELETED', '1 2'],
        ['DRAFT', '2'],
        ['UNDRAFT', '1 3'],
        ['FLAGGED', '2'],
        ['UNFLAGGED', '1 3'],
        ['SEEN', '1'],
        ['UNSEEN', '2 3'],
        ['KEYWORD $Work', '1'],
        ['UNKEYWORD $Work', '2 3'],
        ['RECENT', '1 2 3'],
        ['NEW', '2 3'],
        ['OLD', ''],
        ['BEFORE 10-Mar-2026', '1'],
        ['ON 10-Mar-2026', '2'],
        ['SINCE 10-Mar-2026', '2 3'],
        ['SENTBEFORE 2-Feb-2026', ''],
        ['SENTON 2-Feb-2026', '1'],
        ['SENTSINCE 10-Mar-2026', '2 3'],
        ['FROM zoe@one', '1 3'],
        ['FROM "Zoë"', '1'],
        ['TO bob', '3'],
        ['CC carl', '1'],
        ['BCC hidden', '2'],
        ['SUBJECT café', '1'],
        ['SUBJECT INVOICE', '2'],
        ['HEADER X-Tag red', '1'],
        ['HEADER X-Tag ""', '1'],
        ['HEADER Delivered-To ""', ''],
        ['BODY apples', '1'],
        ['BODY "äpfel"', '2'],
        ['BODY invoice', ''],
        ['TEXT invoice', '2'],
        ['TEXT apples', '1'],
        ['LARGER 4000', '3'],
        ['SMALLER 4000', '1 2'],
        ['NOT SEEN', '2 3'],
        ['OR SEEN FLAGGED', '1 2'],
        ['(OR DELETED FLAGGED) NOT DRAFT', '3'],
        ['UID 1:*', '1 2 3'],
        ['2:*', '2 3'],
        ['*', '3'],
        ['1,3', '1 3'],
        ['CHARSET UTF-8 BODY {6+}\r\näpfel', '2'],
      ];
      for (const [i, [criteria, expected]] of cases.entries()) {
        const answer = await raw.command(`s${i}`, `SEARCH ${criteria}`);
        assert.match(answer, new RegExp(`\\* SEARCH${expected ? ` ${expected}` : ''}\r\n`), `SEARCH ${criteria}: ${answer}`);
      }
      const modseq = await raw.command('m', 'SEARCH MODSEQ 1');
      assert.match(modseq, /\* SEARCH 1 2 3 \(MODSEQ \d+\)/);
      assert.match(await raw.command('u', 'UID SEARCH SUBJECT big'), /\* SEARCH \d+\r\n/);
    } finally {
      raw.close();
    }
  });

  it('refuses an APPEND and a COPY past the quota with OVERQUOTA', async () => {
    const raw = await RawImap.open(suite.imapPort);
    try {
      await raw.command('a', 'LOGIN quota@example.test password123');
      const m = message('quota', `${'q'.repeat(40_000)}\r\n`);
      assert.match(await raw.command('b', `APPEND INBOX {${m.length}+}\r\n${m}`), /^b OK/m);
      assert.match(await raw.command('c', `APPEND INBOX {${m.length}+}\r\n${m}`), /^c NO \[OVERQUOTA\]/m);
      await raw.command('d', 'SELECT INBOX');
      assert.match(await raw.command('e', 'COPY 1 Archive'), /^e NO \[OVERQUOTA\]/m);
      assert.match(await raw.command('f', 'GETQUOTAROOT INBOX'), /\* QUOTA "" \(STORAGE \d+ 50\)/);
    } finally {
      raw.close();
    }
  });

  it('streams FETCH of many messages to a client that reads slowly', async () => {
    const raw = await RawImap.open(suite.imapPort);
    try {
      await raw.command('a', LOGIN);
      await raw.command('b', 'CREATE Bulk');
      const body = message('bulk', `${'z'.repeat(20_000)}\r\n`);
      const n = 600;
      let pipeline = '';
      for (let i = 0; i < n; i++) pipeline += `p${i} APPEND Bulk {${Buffer.byteLength(body)}+}\r\n${body}\r\n`;
      raw.write(pipeline);
      await raw.until(new RegExp(`^p${n - 1} OK`, 'm'), 60_000);
      await raw.command('c', 'SELECT Bulk');
      raw.socket.pause();
      raw.write('d FETCH 1:* BODY.PEEK[]\r\n');
      await new Promise((r) => setTimeout(r, 1000));
      raw.socket.resume();
      const all = await raw.until(/^d (OK|NO|BAD)[^\r]*\r\n/m, 60_000);
      assert.match(all, /^d OK/m);
      assert.equal((all.match(/^\* \d+ FETCH/gm) ?? []).length, n);
    } finally {
      raw.close();
    }
  });
});
