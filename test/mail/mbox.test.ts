/** mboxrd writing and reading (mail/mbox.ts): From_ lines, quoting of `>*From ` lines, and what is not an mbox file. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UserError } from '../../src/errors.js';
import { asctime, mboxEntry, mboxFlags, parseFromLine, readMbox, type MboxMessage } from '../../src/mail/mbox.js';

async function read(text: string, chunkSize = 7): Promise<MboxMessage[]> {
  const bytes = Buffer.from(text, 'latin1');
  const out: MboxMessage[] = [];
  for await (const m of readMbox(
    (async function* () {
      for (let i = 0; i < bytes.length; i += chunkSize) yield bytes.subarray(i, i + chunkSize);
    })(),
  ))
    out.push(m);
  return out;
}

describe('mbox', () => {
  it('writes From_ lines with the sender and an asctime date in UTC', () => {
    const date = new Date(Date.UTC(2024, 0, 5, 3, 4, 5));
    assert.equal(asctime(date), 'Fri Jan  5 03:04:05 2024');
    assert.deepEqual(parseFromLine('From alice@example.org Fri Jan  5 03:04:05 2024'), { sender: 'alice@example.org', date });
    assert.deepEqual(parseFromLine('From MAILER-DAEMON Fri Jan  5 03:04:05 2024\n'), { sender: '', date });
    assert.equal(parseFromLine('From here to there'), null);
  });

  it('round-trips messages whose lines start with From, >From and >>From', async () => {
    const bodies = [
      'Subject: a\r\n\r\nFrom the start\r\n>From quoted\r\n>>From twice\r\nFromage\r\n',
      'Subject: b\r\n\r\n\r\nFrom here after an empty line\r\n\r\n',
      'Subject: c\r\n\r\nno newline at the end',
    ];
    const date = new Date(Date.UTC(2023, 11, 31, 23, 59, 59));
    const file = Buffer.concat(bodies.map((b, i) => mboxEntry(i === 1 ? '' : `s${i}@example.org`, date, Buffer.from(b)))).toString('latin1');
    assert.match(file, /\n>From the start\n>>From quoted\n>>>From twice\nFromage\n/);
    for (const size of [1, 7, 4096]) {
      const messages = await read(file, size);
      assert.deepEqual(
        messages.map((m) => m.data.toString()),
        [bodies[0], bodies[1], 'Subject: c\r\n\r\nno newline at the end\r\n'],
      );
      assert.deepEqual(
        messages.map((m) => m.sender),
        ['s0@example.org', '', 's2@example.org'],
      );
      assert.ok(messages.every((m) => m.date?.getTime() === date.getTime()));
    }
  });

  it('reads mboxo and mboxcl2 as well as it can: From_ lines split, Content-Length is not trusted', async () => {
    const messages = await read(
      'From a@x Mon Jan  1 00:00:00 2024\nContent-Length: 5\nSubject: one\n\nhello\nFrom inside the body\n\nFrom b@x Mon Jan  1 00:00:01 2024\nSubject: two\n\nbye\n',
    );
    assert.deepEqual(
      messages.map((m) => m.data.toString()),
      ['Content-Length: 5\r\nSubject: one\r\n\r\nhello\r\nFrom inside the body\r\n', 'Subject: two\r\n\r\nbye\r\n'],
    );
  });

  it('refuses what is not an mbox file', async () => {
    await assert.rejects(read('Subject: hi\n\nno From_ line\n'), (err: Error) => err instanceof UserError && /not an mbox file/.test(err.message));
    await assert.rejects(read(''), UserError);
    await assert.rejects(read('\x89PNG\r\n\x1a\n'), UserError);
  });

  it('reads flags from the Status: and X-Status: fields mail readers write, in the header only', () => {
    assert.deepEqual(mboxFlags(Buffer.from('Subject: x\r\nStatus: RO\r\nX-Status: AF\r\n\r\nStatus: D\r\n')).sort(), ['\\Answered', '\\Flagged', '\\Seen']);
    assert.deepEqual(mboxFlags(Buffer.from('Status: O\r\nX-Status: DT\r\n\r\n')).sort(), ['\\Deleted', '\\Draft']);
    assert.deepEqual(mboxFlags(Buffer.from('Subject: none\r\n\r\nX-Status: F\r\n')), []);
  });
});
