/**
 * The MIME parser on real message shapes: part trees and their bytes, default types,
 * ENVELOPE, decoded headers and text, malformed input, and chunking that never changes
 * the result.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import iconv from 'iconv-lite';
import { findPart, parseStoredStructure, serializeStructure, type MessageStructure } from '../../src/mail/mime/index.js';
import { digest, forwarded, mixed, nested, simple } from '../fixtures/mime-messages.js';
import { bytesOf, checkInvariants, msg, parse } from './mime-support.js';

describe('MIME parser: message shapes', () => {
  it('a simple text message: one part, its body, envelope, headers and text', () => {
    const s = parse(simple);
    checkInvariants(s, simple.length);
    assert.equal(s.root.type, 'text');
    assert.equal(s.root.subtype, 'plain');
    assert.deepEqual(s.root.params, [['charset', 'us-ascii']], 'RFC 2045 default');
    assert.equal(s.root.encoding, '7BIT');
    assert.equal(s.root.children, undefined);
    assert.equal(bytesOf(simple, s.root).body, 'Hi Bob,\r\nhow are you?\r\n');
    assert.ok(bytesOf(simple, s.root).header.endsWith('<1@example.org>\r\n\r\n'));
    assert.equal(s.root.lines, 2);
    assert.equal(s.envelope.subject, 'Hello');
    assert.equal(s.envelope.date, 'Tue, 2 Jan 2024 03:04:05 +0000');
    assert.deepEqual(s.envelope.from, [{ name: 'Alice Example', adl: null, mailbox: 'alice', host: 'example.org' }]);
    assert.deepEqual(s.envelope.to, [{ name: null, adl: null, mailbox: 'bob', host: 'example.net' }]);
    assert.equal(s.envelope.sender, null);
    assert.equal(s.envelope.cc, null);
    assert.equal(s.envelope.messageId, '<1@example.org>');
    assert.deepEqual(
      s.headers.map(([n]) => n),
      ['date', 'from', 'to', 'subject', 'message-id'],
    );
    assert.equal(s.text, 'Hi Bob,\r\nhow are you?\r\n');
  });

  it('multipart/mixed with an attachment: parts, their bytes and fields', () => {
    const s = parse(mixed);
    checkInvariants(s, mixed.length);
    assert.equal(s.root.type, 'multipart');
    assert.equal(s.root.subtype, 'mixed');
    assert.deepEqual(s.root.params, [['boundary', '=_outer']]);
    const [text, pdf] = s.root.children!;
    assert.equal(s.root.children!.length, 2);
    assert.equal(bytesOf(mixed, text!).body, 'See the attachment.');
    assert.equal(bytesOf(mixed, text!).header, 'Content-Type: text/plain; charset=utf-8\r\n\r\n');
    assert.equal(text!.lines, 1);
    assert.equal(pdf!.type, 'application');
    assert.equal(pdf!.subtype, 'pdf');
    assert.deepEqual(pdf!.params, [['name', 'report.pdf']]);
    assert.equal(pdf!.encoding, 'BASE64');
    assert.equal(pdf!.id, '<pdf@example.org>');
    assert.equal(pdf!.description, 'The report');
    assert.deepEqual(pdf!.disposition, { type: 'attachment', params: [['filename', 'report.pdf']] });
    assert.equal(Buffer.from(bytesOf(mixed, pdf!).body, 'base64').toString(), '%PDF-1.4 fake');
    assert.equal(s.text, 'See the attachment.', 'only text parts are searchable text');
  });

  it('multipart/alternative inside multipart/mixed', () => {
    const s = parse(nested);
    checkInvariants(s, nested.length);
    const alt = findPart(s, [1])!;
    assert.equal(alt.subtype, 'alternative');
    assert.equal(findPart(s, [1, 1])!.subtype, 'plain');
    assert.equal(bytesOf(nested, findPart(s, [1, 1])!).body, 'plain version');
    assert.equal(findPart(s, [1, 2])!.subtype, 'html');
    assert.equal(findPart(s, [2])!.type, 'image');
    assert.equal(bytesOf(nested, findPart(s, [2])!).body, 'iVBORw0KGgo=');
    assert.equal(findPart(s, [1, 3]), null);
    assert.equal(findPart(s, [3]), null);
    assert.match(s.text, /plain version/);
    assert.match(s.text, /html & version/);
    assert.doesNotMatch(s.text, /color:red|<p>/, 'HTML reduced to its text');
  });

  it('a message/rfc822 attachment: its envelope and parts, numbered on from the attachment', () => {
    const s = parse(forwarded);
    checkInvariants(s, forwarded.length);
    const first = findPart(s, [1])!;
    assert.equal(first.type, 'text', 'a part with an empty header is text/plain');
    assert.equal(bytesOf(forwarded, first).body, 'see below');
    const attached = findPart(s, [2])!;
    assert.equal(attached.type, 'message');
    assert.equal(attached.subtype, 'rfc822');
    assert.ok(attached.message);
    assert.equal(attached.message.envelope.subject, 'inner subject');
    assert.deepEqual(attached.message.envelope.from, [{ name: 'Inner Sender', adl: null, mailbox: 'inner', host: 'example.com' }]);
    assert.equal(attached.lines, 13);
    assert.ok(bytesOf(forwarded, attached).body.startsWith('From: Inner Sender'));
    assert.ok(bytesOf(forwarded, attached).body.endsWith('--b2--'));
    assert.equal(findPart(s, [2, 1])!.subtype, 'plain');
    assert.equal(bytesOf(forwarded, findPart(s, [2, 1])!).body, 'inner text');
    assert.equal(bytesOf(forwarded, findPart(s, [2, 2])!).body, '<b>inner</b> html');
    assert.equal(findPart(s, [2, 3]), null);
    assert.equal(s.envelope.subject, 'Fwd: inner', 'the top envelope is the outer message');
    assert.match(s.text, /inner text/);
  });

  it('multipart/digest: parts are message/rfc822 unless they say otherwise', () => {
    const s = parse(digest);
    checkInvariants(s, digest.length);
    const [one, two, three] = s.root.children!;
    assert.equal(`${one!.type}/${one!.subtype}`, 'message/rfc822');
    assert.deepEqual(one!.params, []);
    assert.equal(one!.message!.envelope.subject, 'first');
    assert.equal(bytesOf(digest, one!.message!.root).body, 'first body');
    assert.equal(`${two!.type}/${two!.subtype}`, 'message/rfc822');
    assert.equal(two!.message!.envelope.subject, 'second');
    assert.equal(`${three!.type}/${three!.subtype}`, 'text/plain');
    assert.equal(findPart(s, [1, 1]), one!.message!.root, 'part 1 of a non-multipart enclosed message is its body');
  });
});

describe('MIME parser: header decoding', () => {
  const sjis = iconv.encode('日本語の件名', 'Shift_JIS').toString('base64');
  const cases: Array<[string, string, string]> = [
    ['ISO-8859-1 Q', '=?ISO-8859-1?Q?Caf=E9_cr=E8me?=', 'Café crème'],
    ['Windows-1252 Q (euro sign)', '=?windows-1252?Q?Price_=80_5?=', 'Price € 5'],
    ['UTF-8 B', `=?UTF-8?B?${Buffer.from('Grüße aus Köln ✓').toString('base64')}?=`, 'Grüße aus Köln ✓'],
    ['UTF-8 Q split over two words', '=?utf-8?q?caf=C3?= =?utf-8?q?=A9?=', 'café'],
    ['Shift_JIS B', `=?Shift_JIS?B?${sjis}?=`, '日本語の件名'],
    ['mixed with plain words', 'Re: =?iso-8859-1?q?=C4rger?= again', 'Re: Ärger again'],
    ['unknown charset', '=?x-unknown?Q?abc?=', 'abc'],
  ];
  for (const [name, raw, decoded] of cases) {
    it(`RFC 2047 subject, ${name}`, () => {
      const input = msg([`Subject: ${raw}`, '', 'x']);
      const s = parse(input);
      assert.equal(s.envelope.subject, raw, 'ENVELOPE keeps the raw value');
      assert.deepEqual(s.headers, [['subject', decoded]]);
    });
  }

  it('unfolds folded fields', () => {
    const s = parse(msg(['Subject: a long', '\tsubject', '  continued', 'To: x@y', '', '']));
    assert.equal(s.envelope.subject, 'a long\tsubject  continued');
  });

  it('reads 8-bit header bytes as UTF-8, or as Windows-1252 when they are not UTF-8', () => {
    const input = Buffer.concat([Buffer.from('Subject: caf\xc3\xa9\r\nX-Latin: caf', 'latin1'), Buffer.from([0xe9]), Buffer.from('\r\n\r\nbody')]);
    const s = parse(input);
    assert.equal(s.envelope.subject, 'café');
    assert.deepEqual(s.headers[1], ['x-latin', 'café']);
  });

  it('RFC 2231 parameters: continuations and charsets', () => {
    const input = msg([
      'Content-Type: multipart/mixed; boundary=x',
      '',
      '--x',
      "Content-Type: application/octet-stream; name*=iso-8859-1'fr'r%E9sum%E9.txt",
      'Content-Disposition: attachment;',
      " filename*0*=UTF-8''%E2%82%AC%20rates;",
      ' filename*1=" for 2024.txt"',
      '',
      'data',
      '--x--',
    ]);
    const part = parse(input).root.children![0]!;
    assert.deepEqual(part.params, [['name', 'résumé.txt']]);
    assert.deepEqual(part.disposition, { type: 'attachment', params: [['filename', '€ rates for 2024.txt']] });
  });

  it('Content-Language, Content-Location, Content-MD5', () => {
    const s = parse(msg(['Content-Language: en, de-CH', 'Content-Location: http://example.org/x', 'Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==', '', 'x']));
    assert.deepEqual(s.root.language, ['en', 'de-CH']);
    assert.equal(s.root.location, 'http://example.org/x');
    assert.equal(s.root.md5, 'Q2hlY2sgSW50ZWdyaXR5IQ==');
  });
});

describe('MIME parser: decoded text', () => {
  it('quoted-printable, in the part charset', () => {
    const s = parse(msg(['Content-Type: text/plain; charset=iso-8859-1', 'Content-Transfer-Encoding: Quoted-Printable', '', 'caf=E9 soft=', 'break =3D ok']));
    assert.equal(s.root.encoding, 'QUOTED-PRINTABLE');
    assert.equal(s.text, 'café softbreak = ok');
  });

  it('base64, in the part charset', () => {
    const encoded = iconv.encode('Ünïcödé text in windows-1252 €', 'win1252').toString('base64');
    const lines = encoded.match(/.{1,8}/g)!;
    const s = parse(msg(['Content-Type: text/plain; charset="windows-1252"', 'Content-Transfer-Encoding: base64', '', ...lines]));
    assert.equal(s.text, 'Ünïcödé text in windows-1252 €');
  });

  it('ISO-2022-JP (not in iconv-lite) through libmime', () => {
    const s = parse(Buffer.concat([Buffer.from('Content-Type: text/plain; charset=ISO-2022-JP\r\n\r\n'), Buffer.from('1b2442467c4b5c386c1b2842', 'hex')]));
    assert.equal(s.text, '日本語');
  });

  it('truncated base64 and quoted-printable, unknown charsets: no throw, best text', () => {
    assert.equal(parse(msg(['Content-Transfer-Encoding: base64', '', 'aGVsbG8gd29y'])).text, 'hello wor');
    assert.equal(parse(msg(['Content-Transfer-Encoding: base64', '', 'aGVsbG8gd2'])).text, 'hello w');
    assert.equal(parse(msg(['Content-Transfer-Encoding: quoted-printable', '', 'end =4'])).text, 'end =4');
    assert.equal(parse(msg(['Content-Type: text/plain; charset=x-klingon', '', 'plain'])).text, 'plain');
  });

  it('NUL characters are left out of the text', () => {
    const s = parse(msg(['Content-Type: text/plain; charset=utf-16le', '', 'A\0B\0\0\0']));
    assert.equal(s.text, 'AB');
  });

  it('text is capped at TEXT_CAP bytes', () => {
    const s = parse(msg(['Content-Type: text/plain; charset=utf-8', '', 'é'.repeat(200_000)]));
    assert.ok(Buffer.byteLength(s.text) <= 256 * 1024);
    assert.ok(Buffer.byteLength(s.text) > 256 * 1024 - 4);
    assert.ok(!s.text.includes('\uFFFD'), 'not cut inside a character');
  });
});

describe('MIME parser: ENVELOPE addresses', () => {
  const cases: Array<[string, string, Array<[string | null, string | null, string | null, string | null]> | null]> = [
    ['plain', 'a@b.c', [[null, null, 'a', 'b.c']]],
    ['display name', 'Joe Q. Public <john.q.public@example.com>', [['Joe Q. Public', null, 'john.q.public', 'example.com']]],
    [
      'quoted display name with a comma',
      '"Doe, John" <j@x.org>, k@y.org',
      [
        ['Doe, John', null, 'j', 'x.org'],
        [null, null, 'k', 'y.org'],
      ],
    ],
    ['encoded words stay raw', '=?utf-8?q?J=C3=B6rg?= <j@x>', [['=?utf-8?q?J=C3=B6rg?=', null, 'j', 'x']]],
    ['comment as name', 'j@x.org (John Doe)', [['John Doe', null, 'j', 'x.org']]],
    ['source route', '<@r1.example,@r2.example:j@x.org>', [[null, '@r1.example,@r2.example', 'j', 'x.org']]],
    [
      'group',
      'Team: a@x.org, "B" <b@y.org>; c@z.org',
      [
        [null, null, 'Team', null],
        [null, null, 'a', 'x.org'],
        ['B', null, 'b', 'y.org'],
        [null, null, null, null],
        [null, null, 'c', 'z.org'],
      ],
    ],
    [
      'empty group',
      'undisclosed-recipients:;',
      [
        [null, null, 'undisclosed-recipients', null],
        [null, null, null, null],
      ],
    ],
    ['quoted local part', '"john doe"@example.org', [[null, null, 'john doe', 'example.org']]],
    ['no domain', 'postmaster', [[null, null, 'postmaster', 'MISSING_DOMAIN']]],
    ['empty', '', null],
    ['only commas', ' , ,', null],
  ];
  for (const [name, value, expected] of cases) {
    it(name, () => {
      const s = parse(msg([`To: ${value}`, '', '']));
      assert.deepEqual(s.envelope.to?.map((a) => [a.name, a.adl, a.mailbox, a.host]) ?? null, expected);
    });
  }

  it('missing headers are null; the first of repeated fields counts', () => {
    const s = parse(msg(['Subject: one', 'Subject: two', '', 'body']));
    assert.equal(s.envelope.subject, 'one');
    for (const k of ['date', 'from', 'sender', 'replyTo', 'to', 'cc', 'bcc', 'inReplyTo', 'messageId'] as const) assert.equal(s.envelope[k], null, k);
  });
});

describe('MIME parser: malformed input', () => {
  it('no header at all', () => {
    const input = msg(['', 'just a body']);
    const s = parse(input);
    checkInvariants(s, input.length);
    assert.equal(s.root.bodyStart, 2);
    assert.equal(s.envelope.subject, null);
    assert.equal(s.text, 'just a body');
  });

  it('no blank line: all of it is header', () => {
    const input = msg(['Subject: only a header', 'From: a@b']);
    const s = parse(input);
    checkInvariants(s, input.length);
    assert.equal(s.root.bodyStart, input.length);
    assert.equal(s.envelope.subject, 'only a header');
    assert.deepEqual(s.envelope.from, [{ name: null, adl: null, mailbox: 'a', host: 'b' }]);
  });

  it('an empty input', () => {
    const s = parse(Buffer.alloc(0));
    checkInvariants(s, 0);
    assert.equal(s.text, '');
  });

  it('a multipart without a boundary, or whose boundary never appears, has no parts', () => {
    for (const input of [msg(['Content-Type: multipart/mixed', '', 'text']), msg(['Content-Type: multipart/mixed; boundary=zz', '', 'no delimiter here'])]) {
      const s = parse(input);
      checkInvariants(s, input.length);
      assert.deepEqual(s.root.children, []);
    }
  });

  it('missing close delimiter: the last part runs to the end', () => {
    const input = msg(['Content-Type: multipart/mixed; boundary=b', '', '--b', '', 'one', '--b', '', 'two', '']);
    const s = parse(input);
    checkInvariants(s, input.length);
    assert.equal(bytesOf(input, s.root.children![1]!).body, 'two\r\n');
  });

  it('an outer delimiter ends inner parts left open', () => {
    const input = msg([
      'Content-Type: multipart/mixed; boundary=outer',
      '',
      '--outer',
      'Content-Type: multipart/alternative; boundary=inner',
      '',
      '--inner',
      '',
      'never closed',
      '--outer',
      '',
      'second',
      '--outer--',
    ]);
    const s = parse(input);
    checkInvariants(s, input.length);
    assert.equal(bytesOf(input, findPart(s, [1, 1])!).body, 'never closed');
    assert.equal(bytesOf(input, findPart(s, [2])!).body, 'second');
  });

  it('a part whose header is cut by a delimiter, and a part that is only a delimiter away', () => {
    const input = msg(['Content-Type: multipart/mixed; boundary=b', '', '--b', 'Content-Type: text/html', '--b', '--b', '', 'x', '--b--']);
    const s = parse(input);
    checkInvariants(s, input.length);
    assert.equal(s.root.children!.length, 3);
    assert.equal(s.root.children![0]!.subtype, 'html');
    assert.equal(s.root.children![0]!.bodyEnd - s.root.children![0]!.bodyStart, 0);
  });

  it('a part without a header (first line is no header field)', () => {
    const input = msg(['Content-Type: multipart/mixed; boundary=b', '', '--b', 'plain text straight away', '--b--']);
    const s = parse(input);
    const part = s.root.children![0]!;
    assert.equal(part.headerStart, part.bodyStart);
    assert.equal(bytesOf(input, part).body, 'plain text straight away');
  });

  it('bare LF line ends give the same structure as CRLF', () => {
    for (const lines of [
      ['Subject: x', 'Content-Type: multipart/mixed; boundary=q', '', '--q', 'Content-Type: text/plain', '', 'a', 'b', '--q', '', 'c', '--q--', ''],
      ['From: a@b', '', 'one', 'two'],
    ]) {
      const crlf = parse(msg(lines));
      const lf = parse(msg(lines, true));
      checkInvariants(lf, msg(lines, true).length);
      const shape = (s: MessageStructure) =>
        JSON.stringify(s.root, (k, v: unknown) => (['headerStart', 'bodyStart', 'bodyEnd'].includes(k) ? undefined : v)) + s.text.replace(/\r/g, '');
      assert.equal(shape(lf), shape(crlf));
      assert.deepEqual(lf.envelope, crlf.envelope);
    }
  });

  it('a header block beyond 64 KiB is counted but not all kept', () => {
    const input = msg([
      'Subject: big',
      ...Array.from({ length: 2000 }, (_, i) => `X-Filler-${i}: ${'y'.repeat(60)}`),
      'Content-Type: text/html',
      '',
      '<p>b</p>',
    ]);
    const s = parse(input);
    checkInvariants(s, input.length);
    assert.equal(s.envelope.subject, 'big');
    assert.equal(s.root.subtype, 'plain', 'the Content-Type past the cap is not seen');
    assert.equal(input.toString('latin1', s.root.bodyStart), '<p>b</p>');
  });

  it('nesting deeper than MAX_DEPTH is opaque, not a crash', () => {
    const depth = 80;
    const lines: string[] = [];
    for (let i = 0; i < depth; i++) lines.push(`Content-Type: multipart/mixed; boundary=b${i}`, '', `--b${i}`);
    lines.push('', 'deep text');
    for (let i = depth - 1; i >= 0; i--) lines.push(`--b${i}--`);
    const input = msg(lines);
    const s = parse(input);
    checkInvariants(s, input.length);
    let levels = 0;
    for (let p = s.root; p.children && p.children.length > 0; p = p.children[0]!) levels++;
    assert.equal(levels, 50);
  });

  it('more than MAX_PARTS parts: the rest are bytes of the last part', () => {
    const lines = ['Content-Type: multipart/mixed; boundary=b', ''];
    for (let i = 0; i < 2500; i++) lines.push('--b', '', `part ${i}`);
    lines.push('--b--');
    const input = msg(lines);
    const s = parse(input);
    checkInvariants(s, input.length);
    assert.equal(s.root.children!.length, 1999);
    assert.match(bytesOf(input, s.root.children![1998]!).body, /part 1998\r\n--b\r\n\r\npart 1999/);
  });

  it('encoded message/rfc822 is not parsed as a message', () => {
    const input = msg(['Content-Type: message/rfc822', 'Content-Transfer-Encoding: base64', '', 'U3ViamVjdDogeA0KDQp5']);
    const s = parse(input);
    assert.equal(s.root.message, undefined);
  });
});

describe('MIME parser: chunking never changes the result', () => {
  it('one byte at a time, and split at every position, equals the whole input', () => {
    for (const input of [mixed, nested, forwarded, digest, msg(['Content-Transfer-Encoding: quoted-printable', '', 'a=\r', 'b=C3=A9'])]) {
      const whole = parse(input);
      assert.deepEqual(parse(input, [1]), whole);
      for (let at = 1; at < input.length; at++) {
        const p = parse(input, [at, input.length]);
        assert.deepEqual(p, whole, `split at ${at}`);
      }
    }
  });
});

describe('stored structures', () => {
  it('serializeStructure leaves out the text; parseStoredStructure reads it back', () => {
    const s = parse(forwarded);
    const json = serializeStructure(s);
    assert.ok(!json.includes('inner text'), 'no search text in the structure');
    assert.deepEqual(parseStoredStructure(json), { ...s, text: '' });
    assert.ok(!json.includes('\n'), 'compact');
  });

  it('parseStoredStructure refuses what is not a stored structure', () => {
    for (const bad of ['', '{}', 'null', '{"version":2,"root":{},"envelope":{},"headers":[]}', '[1]']) assert.throws(() => parseStoredStructure(bad));
  });
});
