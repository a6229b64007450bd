/**
 * Trace headers (mail/trace-headers.ts): senders and recipients round-trip exactly into
 * Return-Path and "for <…>", quoted local parts included, and nothing a client sends can
 * end a header line early (the address parser refuses control characters; the header
 * writer replaces any that reach it anyway).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalizeAddress, normalizeSender } from '../../src/mail/address.js';
import { traceHeaders, type TraceInfo } from '../../src/mail/trace-headers.js';

function headers(overrides: Partial<TraceInfo>): string {
  return traceHeaders({
    envelopeFrom: 'sender@remote.test',
    helo: 'client.test',
    remoteAddress: '127.0.0.1',
    localHostname: 'mx.example.test',
    protocol: 'ESMTP',
    ternId: 'ID1',
    recipients: ['alice@example.test'],
    date: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
    ...overrides,
  }).toString('utf8');
}

const returnPath = (text: string) => /^Return-Path: (.*)\r\n/.exec(text)?.[1];

describe('traceHeaders', () => {
  const senders = [
    'sender@remote.test',
    '"a b\\"c"@r.test',
    '"john doe"@r.test',
    '"a>b"@r.test',
    '"(comment)"@r.test',
    '"back\\\\slash"@r.test',
    'müller@remote.test',
    '"x y"@[127.0.0.1]',
  ];
  for (const raw of senders) {
    it(`writes Return-Path <${raw}> exactly as the parsed sender`, () => {
      const from = normalizeSender(raw);
      assert.equal(from, raw);
      assert.equal(returnPath(headers({ envelopeFrom: from })), `<${raw}>`);
    });
  }

  it('writes the null sender as <>', () => {
    assert.equal(returnPath(headers({ envelopeFrom: '' })), '<>');
  });

  it('writes a quoted recipient exactly in the for clause', () => {
    const rcpt = normalizeAddress('"John Doe"@Example.TEST');
    assert.match(headers({ recipients: [rcpt] }), /\r\n\tfor <"john doe"@example\.test>;\r\n/);
  });

  it('the address parser refuses control characters in quoted local parts', () => {
    const bad = ['"a\rb"@r.test', '"a\nb"@r.test', '"a\r\nBcc: x@y"@r.test', '"a\x00"@r.test', '"a\\\x00"@r.test', '"a\x7f"@r.test', '"a\\\r"@r.test', 'a\tb@r.test'];
    for (const address of bad) {
      assert.throws(() => normalizeSender(address), /invalid/, JSON.stringify(address));
    }
  });

  it('never lets a line break or control character into a header, whatever it is given', () => {
    const text = headers({
      envelopeFrom: '"x\r\nBcc: victim@else.test\r\n"@r.test',
      helo: 'evil\r\nX-Injected: 1',
      recipients: ['a\u2028b\x00@example.test'],
    });
    const lines = text.split('\r\n');
    assert.equal(lines.pop(), '', 'ends with CRLF');
    assert.ok(lines[0]!.startsWith('Return-Path: '));
    assert.ok(lines[1]!.startsWith('Received: '));
    for (const line of lines.slice(2)) assert.ok(line.startsWith('\t'), `continuation line ${JSON.stringify(line)}`);
    assert.doesNotMatch(text.replace(/\r\n/g, ''), /[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]/);
  });
});
