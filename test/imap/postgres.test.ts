/**
 * The IMAP server on PostgreSQL: the same session code over the other backend — APPEND,
 * FETCH of envelopes, sections and bodies, conditional STORE, SEARCH filtered in SQL
 * (strpos on the lower-cased text), COPY/MOVE, EXPUNGE, RENAME and an IDLE push.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { freshPgDatabase, pgSkipReason, type TestDatabase } from '../helpers/pg.js';
import { sendSimple } from '../smtp/support.js';
import { RawImap, serveImap } from './support.js';

const skip = await pgSkipReason();
const LOGIN = 'LOGIN alice@example.test password123';

describe('IMAP on PostgreSQL', { skip }, () => {
  let db: TestDatabase | undefined;
  const suite = serveImap({
    db: async () => {
      db = await freshPgDatabase();
      return db.url;
    },
  });
  after(async () => {
    await db?.drop();
  });

  it('serves the whole mailbox life cycle', async () => {
    const raw = await RawImap.open(suite.imapPort);
    const idler = await RawImap.open(suite.imapPort);
    try {
      await raw.command('a', LOGIN);
      const msg = (n: number) =>
        `From: "Zoë" <zoe@remote.test>\r\nTo: alice@example.test\r\nSubject: pg ${n}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe number ${n}\r\n`;
      for (let n = 1; n <= 5; n++) assert.match(await raw.command(`b${n}`, `APPEND INBOX {${msg(n).length}+}\r\n${msg(n)}`), /OK \[APPENDUID/);
      const select = await raw.command('c', 'SELECT INBOX');
      assert.match(select, /\* 5 EXISTS/);
      const modseq = Number(/HIGHESTMODSEQ (\d+)/.exec(select)![1]);
      const envelopes = await raw.command('d', 'FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE)');
      assert.equal((envelopes.match(/ENVELOPE \(/g) ?? []).length, 5);
      assert.match(envelopes, /"pg 3"/);
      assert.match(envelopes, /BODYSTRUCTURE \("TEXT" "PLAIN" \("CHARSET" "utf-8"\) NIL NIL "QUOTED-PRINTABLE"/);
      assert.match(await raw.command('e', 'FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT]<0.6>)'), /Subject: pg 2\r\n\r\n[^]*<0> \{6\}\r\nGr=C3=/);
      assert.match(await raw.command('f', 'SEARCH BODY "grüße number 4"'), /\* SEARCH 4\r\n/);
      assert.match(await raw.command('g', 'SEARCH FROM zoë SUBJECT "PG 5"'), /\* SEARCH 5\r\n/);
      assert.match(await raw.command('h', `STORE 1 (UNCHANGEDSINCE ${modseq}) +FLAGS (\\Answered)`), /^h OK/m);
      assert.match(await raw.command('i', `STORE 1 (UNCHANGEDSINCE ${modseq}) +FLAGS (\\Flagged)`), /^i OK \[MODIFIED 1\]/m);
      assert.match(await raw.command('j', 'MOVE 2 Archive'), /\* OK \[COPYUID \d+ \d+ 1\][^]*\* 2 EXPUNGE/);
      assert.match(await raw.command('k', 'COPY 1 Archive'), /^k OK \[COPYUID \d+ \d+ 2\]/m);

      await idler.command('a', LOGIN);
      await idler.command('b', 'SELECT INBOX');
      idler.write('c IDLE\r\n');
      await idler.until(/^\+ /m);
      await sendSimple(suite.tern.smtpPort, 'alice@example.test', { subject: 'pushed' });
      assert.match(await idler.until(/\* 5 EXISTS/, 5000), /\* 5 EXISTS/);
      idler.write('DONE\r\n');
      await idler.until(/^c OK/m);

      await raw.command('l', 'STORE 1:2 +FLAGS.SILENT (\\Deleted)');
      assert.match(await raw.command('m', 'EXPUNGE'), /\* 2 EXPUNGE\r\n\* 1 EXPUNGE/);
      assert.match(await raw.command('n', 'RENAME Archive Old/Archive'), /^n OK/m);
      assert.match(await raw.command('o', 'STATUS Old/Archive (MESSAGES)'), /MESSAGES 2/);
    } finally {
      raw.close();
      idler.close();
    }
  });
});
