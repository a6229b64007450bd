/**
 * IMAP session fuzzing: 5,000 seeded random and mutated IMAP conversations against a real
 * `tern serve` (logins, mailboxes, APPEND with every kind of literal, FETCH, STORE, SEARCH,
 * COPY/MOVE, EXPUNGE, IDLE, STARTTLS, pipelining, split writes; see test/imap/fuzz/). No
 * crash, no hang, bounded memory, every response well formed and every command answered in
 * order, valid conversations answered as expected, no error logged, and the store intact
 * afterwards. `npm run fuzz` runs the same with 100,000 cases and a fresh seed.
 *
 * The fuzzer's own oracle (response syntax check, framing model) is tested first.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertFuzzRun, FUZZ_ACCOUNTS, FUZZ_PASSWORD, serverAlive, startFuzzServer } from '../fuzz/fuzz-server.js';
import { MAX_LINE } from './fuzz/cases.js';
import { ImapFramingModel } from './fuzz/framing.js';
import { ResponseReader, type ImapResponse } from './fuzz/response-check.js';
import { fillInboxes, listedNames, runImapFuzz } from './fuzz/runner.js';

const SEED = 'tern-imap-session-fuzz-1';
const CASES = 5000;
const MAX_RSS_MB = 400;

function read(text: string): { responses: ImapResponse[]; problems: string[] } {
  const reader = new ResponseReader();
  const responses = reader.push(Buffer.from(text, 'latin1'));
  return { responses, problems: reader.problems };
}

describe('fuzz oracle: IMAP response syntax', () => {
  it('accepts well-formed responses, literals included', () => {
    const good = [
      '* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n',
      '+ Ready for literal data\r\n',
      '+ \r\n',
      'a}1 OK [READ-WRITE] SELECT completed\r\n',
      '* 3 FETCH (UID 7 BODY[HEADER.FIELDS (FROM TO)] {12}\r\nFrom: a\r\n\r\n FLAGS (\\Seen))\r\n',
      '* LIST (\\HasNoChildren) "/" {5}\r\nc1/\xc3\xbc\r\n',
      '* STATUS "a \\"b\\"" (MESSAGES 1)\r\n',
      '* SEARCH\r\n',
      'x NO [BADCHARSET (UTF-8 US-ASCII)] Charset KOI8 is not supported\r\n',
    ];
    for (const text of good) assert.deepEqual(read(text).problems, [], JSON.stringify(text));
    assert.equal(read(good[4]!).responses.length, 1, 'a literal does not end the response');
  });

  it('rejects echoed control and 8-bit bytes, bare LF, bad tags, unbalanced data and literals in status text', () => {
    const bad = [
      'a1 NO Mailbox c1/\x1b[31m does not exist\r\n',
      'a1 NO Mailbox c1/\xc3\xbc does not exist\r\n',
      'a1 NO Mailbox x\n',
      'a1 NO x\ry\r\n',
      'a(1 OK done\r\n',
      'a1 MAYBE done\r\n',
      'a1 OK\r\n',
      '* 0 FETCH (UID 1)\r\n',
      '* 1 FETCH (UID 1\r\n',
      '* LIST () "/" "a\\b"\r\n',
      '* XYZZY 1\r\n',
      'a1 BAD Invalid date {5}\r\nabcde\r\n',
      '* OK [PERMANENTFLAGS (\\Seen] x\r\n',
    ];
    for (const text of bad) assert.notDeepEqual(read(text).problems, [], JSON.stringify(text));
  });
});

describe('fuzz oracle: IMAP framing model', () => {
  const tagged = (tag: string, status: 'OK' | 'NO' | 'BAD' = 'OK'): ImapResponse => ({ kind: 'tagged', tag, status, text: 'x', show: `${tag} ${status}` });
  const plus: ImapResponse = { kind: 'continuation', show: '+' };
  const untaggedBad: ImapResponse = { kind: 'untagged', keyword: 'BAD', number: null, text: 'x', show: '* BAD x' };
  function model(input: string): ImapFramingModel {
    const m = new ImapFramingModel(MAX_LINE);
    m.onResponse({ kind: 'untagged', keyword: 'OK', number: null, text: 'hi', show: '* OK hi' });
    m.feed(Buffer.from(input, 'latin1'));
    return m;
  }
  const dueTag = (m: ImapFramingModel) => {
    const d = m.due();
    return d === null || d === 'greeting' ? d : d.tag;
  };

  it('frames lines, skips empty ones, and wants answers in order', () => {
    const m = model('a NOOP\r\n\r\nb NOOP\nc NOOP\r\n');
    assert.equal(dueTag(m), 'a');
    assert.notDeepEqual(m.onResponse(tagged('b')), [], 'b answered before a');
    const n = model('a NOOP\r\n\r\nb NOOP\nc NOOP\r\n');
    for (const t of ['a', 'b', 'c']) assert.deepEqual(n.onResponse(tagged(t)), [], t);
    assert.equal(n.due(), null);
    assert.notDeepEqual(n.onResponse(tagged('d')), [], 'nothing was due');
  });

  it('reads a synchronizing literal only after "+", and not at all after a refusal', () => {
    const m = model('a LOGIN {5}\r\nb NOO pw\r\nc NOOP\r\n');
    assert.equal(dueTag(m), 'a', '"+" or an answer is due at once');
    assert.deepEqual(m.onResponse(plus), []);
    assert.equal(dueTag(m), 'a', 'the literal "b NOO" and " pw" complete command a');
    assert.deepEqual(m.onResponse(tagged('a')), []);
    assert.equal(dueTag(m), 'c');
    const refused = model('a APPEND x {5}\r\nb NOOP\r\n');
    assert.deepEqual(refused.onResponse(tagged('a', 'NO')), []);
    assert.equal(dueTag(refused), 'b', 'after a refusal the bytes are commands again');
  });

  it('reads LITERAL+ literals whatever the answer, including further literals of a refused command', () => {
    const m = model('a APPEND x {3+}\r\nabc {20+}\r\ninj CREATE injected\r\n\r\nb NOOP\r\n');
    assert.equal(dueTag(m), 'a');
    assert.deepEqual(m.onResponse(tagged('a', 'NO')), []);
    assert.equal(dueTag(m), 'b');
    assert.notDeepEqual(model('a APPEND x {3+}\r\nabc {20+}\r\ninj CREATE injected\r\n\r\n').onResponse(tagged('inj')), []);
  });

  it('gives the line after "+" to IDLE and AUTHENTICATE, and lets only untaggable lines get "* BAD"', () => {
    const m = model('a IDLE\r\nDONE\r\nb NOOP\r\n');
    assert.deepEqual(m.onResponse(plus), []);
    assert.deepEqual(m.onResponse(tagged('a')), []);
    assert.equal(dueTag(m), 'b');
    assert.deepEqual(model('(x NOOP\r\n').onResponse(untaggedBad), []);
    assert.notDeepEqual(model('a}1 NOOP\r\n').onResponse(untaggedBad), [], '"}" is a valid tag character');
    assert.deepEqual(model(`a NOOP ${'x'.repeat(MAX_LINE)}\r\n`).onResponse(untaggedBad), [], 'over-long lines may be answered untagged');
  });

  it('owes nothing after BYE or an OK to LOGOUT, and notices bytes pipelined after STARTTLS', () => {
    const m = model('a LOGOUT\r\nb NOOP\r\n');
    m.onResponse({ kind: 'untagged', keyword: 'BYE', number: null, text: 'bye', show: '* BYE bye' });
    assert.equal(m.due(), null);
    const t = model('a STARTTLS\r\nb NOOP\r\n');
    t.onResponse(tagged('a'));
    assert.equal(t.phase, 'tls');
    assert.equal(t.tainted, true);
  });

  it('reads mailbox names from LIST answers for housekeeping', () => {
    const text = '* LIST (\\HasNoChildren) "/" c1\r\n* LIST () "/" "c2/a \\"b\\""\r\n* LIST () "/" {5}\r\nc3/\xc3\xbc\r\n';
    assert.deepEqual(listedNames(text), ['c1', 'c2/a "b"', 'c3/\xc3\xbc']);
  });
});

describe('IMAP session fuzzing', () => {
  it(`${CASES} seeded cases: no crash, no hang, RSS under ${MAX_RSS_MB} MB, well-formed answers in order, store intact`, async (t) => {
    const server = await startFuzzServer({ imap: true });
    try {
      const site = { accounts: FUZZ_ACCOUNTS, password: FUZZ_PASSWORD, maxMessageSize: server.site.limits.maxMessageSize };
      await fillInboxes(server.imapPort, site, SEED);
      const summary = await runImapFuzz({
        seed: SEED,
        first: 0,
        cases: CASES,
        concurrency: 8,
        site,
        imapPort: server.imapPort,
        maxLine: MAX_LINE,
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
