/**
 * findPart: RFC 3501 6.4.5 section numbers over stored structures.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findPart, type MimePart } from '../../src/mail/mime/index.js';
import { digest, forwarded, mixed, nested, simple } from '../fixtures/mime-messages.js';
import { bytesOf, msg, parse } from './mime-support.js';

/** What a section names, as `type/subtype: first body bytes`, or null. */
function named(input: Buffer, section: number[]): string | null {
  const part: MimePart | null = findPart(parse(input), section);
  return part && `${part.type}/${part.subtype}: ${bytesOf(input, part).body.slice(0, 12)}`;
}

const messageInMessage = msg(['Content-Type: message/rfc822', '', 'Subject: level 1', 'Content-Type: message/rfc822', '', 'Subject: level 2', '', 'deepest']);

describe('findPart (RFC 3501 6.4.5)', () => {
  const cases: Array<[string, Buffer, number[], string | null]> = [
    ['[] is the whole message', simple, [], 'text/plain: Hi Bob,\r\nhow'],
    ['part 1 of a non-multipart message is its body', simple, [1], 'text/plain: Hi Bob,\r\nhow'],
    ['a non-multipart message has no part 2', simple, [2], null],
    ['nor part 1.1', simple, [1, 1], null],
    ['multipart: part 1', mixed, [1], 'text/plain: See the atta'],
    ['multipart: part 2', mixed, [2], 'application/pdf: JVBERi0xLjQg'],
    ['multipart: no part 3', mixed, [3], null],
    ['multipart: no part 0', mixed, [0], null],
    ['a leaf has no subparts', mixed, [1, 1], null],
    ['nested multipart: 1.2', nested, [1, 2], 'text/html: <html><head>'],
    ['nested multipart: 1 is the inner multipart', nested, [1], 'multipart/alternative: --inner\r\nCon'],
    ['message/rfc822: 2 is the attachment itself', forwarded, [2], 'message/rfc822: From: Inner '],
    ['message/rfc822: 2.1 is the enclosed message part 1', forwarded, [2, 1], 'text/plain: inner text'],
    ['message/rfc822: 2.2', forwarded, [2, 2], 'text/html: <b>inner</b>'],
    ['message/rfc822: 2.1.1 does not exist', forwarded, [2, 1, 1], null],
    ['digest: 1.1 is the body of the enclosed non-multipart message', digest, [1, 1], 'text/plain: first body'],
    ['digest: 1.2 does not exist', digest, [1, 2], null],
    ['top-level message/rfc822: 1 is its body', messageInMessage, [1], 'message/rfc822: Subject: lev'],
    ['top-level message/rfc822: 1.1 is the enclosed body, itself message/rfc822', messageInMessage, [1, 1], 'message/rfc822: Subject: lev'],
    ['top-level message/rfc822: 1.1.1', messageInMessage, [1, 1, 1], 'text/plain: deepest'],
    ['top-level message/rfc822: 1.2 does not exist', messageInMessage, [1, 2], null],
  ];
  for (const [name, input, section, expected] of cases) {
    it(`${name} (${section.join('.') || '[]'})`, () => assert.equal(named(input, section), expected));
  }

  it('1.1 of a top-level message/rfc822 is the enclosed root, one level down', () => {
    const s = parse(messageInMessage);
    assert.equal(findPart(s, [1]), s.root);
    assert.equal(findPart(s, [1, 1]), s.root.message!.root);
    assert.equal(findPart(s, [1, 1, 1]), s.root.message!.root.message!.root);
  });

  it('a multipart without parts has no part 1', () => {
    assert.equal(findPart(parse(msg(['Content-Type: multipart/mixed', '', 'x'])), [1]), null);
  });
});
