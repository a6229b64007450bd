/**
 * Session-level fuzzing (issue 5): 5,000 seeded random and mutated SMTP and LMTP
 * conversations against a real `tern serve` (pipelining, DATA, BDAT, STARTTLS, resets;
 * see test/smtp/fuzz/). No crash, no hang, bounded memory, every reply a well-formed SMTP
 * reply, valid conversations answered as expected, and the store intact afterwards.
 * `npm run fuzz` runs the same with 100,000 cases and a fresh seed.
 *
 * The fuzzer's own oracle (reply syntax check, framing model) is tested first.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FramingModel } from './fuzz/framing.js';
import { assertFuzzRun, serverAlive, startFuzzServer } from '../fuzz/fuzz-server.js';
import { checkReplyLine, ReplyReader } from './fuzz/reply-check.js';
import { runFuzz } from './fuzz/runner.js';

const SEED = 'tern-session-fuzz-1';
const CASES = 5000;
const MAX_RSS_MB = 400;

describe('fuzz oracle: reply syntax', () => {
  it('accepts well-formed reply lines', () => {
    for (const line of ['250 2.0.0 OK\r\n', '250-PIPELINING\r\n', '250\r\n', '354 End data\r\n', '250 2.0.0 <ü@example.test> delivered\r\n']) {
      assert.deepEqual(checkReplyLine(Buffer.from(line)), [], line);
    }
  });

  it('rejects malformed ones: control characters, bad codes, bare LF, over 512 octets, wrong status class', () => {
    const bad = [
      '555 5.5.4 Unsupported MAIL parameter \u0000\r\n',
      '250 greets a\u001bb\r\n',
      '553 x\u007f\r\n',
      '553 x\u0085\r\n',
      '250 OK\n',
      '25 OK\r\n',
      '199 OK\r\n',
      '260 OK\r\n',
      '250_OK\r\n',
      `250 ${'x'.repeat(600)}\r\n`,
      '550 2.1.5 OK\r\n',
    ];
    for (const line of bad) assert.notDeepEqual(checkReplyLine(Buffer.from(line, 'utf8')), [], JSON.stringify(line));
    assert.notDeepEqual(checkReplyLine(Buffer.from([0x32, 0x35, 0x30, 0x20, 0xff, 0x0d, 0x0a])), [], 'invalid UTF-8');
  });

  it('reads multi-line replies and flags a change of code', () => {
    const reader = new ReplyReader();
    const replies = reader.push(Buffer.from('250-a\r\n250-b\r\n250 c\r\n220 x\r\n250-d\r\n251 e\r\n'));
    assert.deepEqual(
      replies.map((r) => [r.code, r.lines.length]),
      [
        [250, 3],
        [220, 1],
        [251, 2],
      ],
    );
    assert.equal(reader.problems.length, 1);
  });
});

describe('fuzz oracle: framing model', () => {
  const reply = (code: number) => ({ code, lines: ['x'] });
  /** Feeds `input` after a greeting and EHLO, answering each due unit with `codes` in turn; returns how many were due. */
  function dueUnits(mode: 'smtp' | 'lmtp', input: string, codes: number[]): number {
    const m = new FramingModel(mode, 4096);
    m.onReply(reply(220));
    m.feed(Buffer.from(input, 'latin1'));
    let n = 0;
    for (const code of codes) {
      if (!m.due()) break;
      m.onReply(reply(code));
      n++;
    }
    return n + (m.due() ? 1 : 0) * 1000; // a unit still due shows as +1000
  }

  it('ends DATA only at <CRLF>.<CRLF> not preceded by a bare LF', () => {
    const tx = 'MAIL FROM:<>\r\nRCPT TO:<a@b>\r\nDATA\r\n';
    const codes = [250, 250, 354, 250, 250];
    assert.equal(dueUnits('smtp', `${tx}x\r\n.\r\nNOOP\r\n`, codes), 5);
    assert.equal(dueUnits('smtp', `${tx}x\n.\r\n`, codes), 3, '<LF>.<CRLF> does not end the data');
    assert.equal(dueUnits('smtp', `${tx}x\r\n.\nmore\r\n.\r\n`, codes), 4, '<CRLF>.<LF> does not, the later terminator does');
    assert.equal(dueUnits('smtp', `${tx}.\r\n`, codes), 4, 'an empty message');
    assert.equal(dueUnits('smtp', `${tx}..\r\n`, codes), 3, 'a stuffed dot');
  });

  it('gives BDAT its chunk whatever the reply, and LMTP one reply per recipient', () => {
    assert.equal(dueUnits('smtp', 'BDAT 6\r\nNOOP\r\n', [503]), 1, 'the six bytes are the chunk, not a command');
    assert.equal(dueUnits('smtp', 'BDAT 6\r\nNOOP\r\nNOOP\r\n', [503, 250]), 2);
    assert.equal(dueUnits('smtp', 'BDAT 99\r\nNOOP\r\n', [503]), 0, 'nothing is due before the chunk is complete');
    const lmtp = 'MAIL FROM:<>\r\nRCPT TO:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\nBDAT 2 LAST\r\nhi';
    assert.equal(dueUnits('lmtp', lmtp, [250, 250, 550, 250, 250, 250]), 6, 'two accepted recipients: two replies');
    assert.equal(dueUnits('lmtp', lmtp, [250, 250, 550, 250, 250]), 1005, 'one still due');
  });
});

describe('SMTP/LMTP session fuzzing', () => {
  it(`${CASES} seeded cases: no crash, no hang, RSS under ${MAX_RSS_MB} MB, well-formed replies, store intact`, async (t) => {
    const server = await startFuzzServer();
    try {
      const summary = await runFuzz({
        seed: SEED,
        first: 0,
        cases: CASES,
        concurrency: 8,
        site: server.site,
        smtpPort: server.tern.smtpPort,
        lmtpPort: server.tern.lmtpPort,
        maxLineLength: server.site.limits.maxLineLength,
        timeoutMs: 10_000,
        pid: server.tern.proc.pid!,
        maxRssBytes: MAX_RSS_MB * 2 ** 20,
        serverAlive: () => serverAlive(server),
      });
      await assertFuzzRun(server, summary, { seed: SEED, cases: CASES, diagnostic: (line) => t.diagnostic(line) });
    } finally {
      await server.tern.stop('SIGKILL');
    }
  });
});
