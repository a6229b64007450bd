/** Maildir names, `:2,` flags, dovecot-uidlist and dovecot-keywords, folder names, subscriptions and line-end conversion (mail/maildir.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  crlfToLf,
  flagsFromLetters,
  folderOfMailbox,
  formatKeywords,
  formatSubscriptions,
  formatUidList,
  lettersFromFlags,
  lfToCrlf,
  mailboxOfFolder,
  parseKeywords,
  parseMaildirName,
  parseSubscriptions,
  parseUidList,
  uidOf,
  uniqueName,
} from '../../src/mail/maildir.js';

describe('Maildir names and flags', () => {
  it('parses base, sizes and info letters', () => {
    assert.deepEqual(parseMaildirName('1700000000.M1P2.host,S=1355,W=1390:2,FRSa'), {
      base: '1700000000.M1P2.host,S=1355,W=1390',
      size: 1355,
      vsize: 1390,
      letters: 'FRSa',
    });
    assert.deepEqual(parseMaildirName('1700000000.M1P2.host'), { base: '1700000000.M1P2.host', size: null, vsize: null, letters: '' });
    assert.equal(parseMaildirName('x:1,experimental').letters, '');
  });

  it('maps letters to flags through dovecot-keywords, and back in ASCII order', () => {
    const keywords = parseKeywords('0 work\n1 $Label1\n3 late\n');
    assert.deepEqual([keywords[0], keywords[1], keywords[2], keywords[3]], ['work', '$Label1', undefined, 'late']);
    assert.deepEqual(flagsFromLetters('DFPRSTabcd', keywords), {
      flags: ['\\Draft', '\\Flagged', '$Forwarded', '\\Answered', '\\Seen', '\\Deleted', 'work', '$Label1', 'late'],
      unknown: ['c'],
    });
    const index = new Map([
      ['work', 0],
      ['$Label1', 1],
    ]);
    assert.deepEqual(lettersFromFlags(['\\Seen', '$Label1', '\\Answered', 'work', '\\Recent', 'other'], index), { letters: 'RSab', leftOut: ['other'] });
    assert.equal(formatKeywords(['work', '$Label1']), '0 work\n1 $Label1\n');
  });

  it('makes unique names without the separators Maildir gives meaning to', () => {
    const names = new Set(Array.from({ length: 1000 }, () => uniqueName()));
    assert.equal(names.size, 1000);
    for (const n of names) assert.doesNotMatch(n, /[/:]/);
  });
});

describe('dovecot-uidlist', () => {
  it('reads version 3 with extension fields, and version 1', () => {
    const list = parseUidList('3 V1700000001 N9 G0123456789abcdef0123456789abcdef\n1 :a.M1.h,S=10\n5 W120 G00 :b.M2.h,S=20,W=22\n7 :c.M3.h:2,S\n')!;
    assert.deepEqual([list.uidValidity, list.nextUid, list.guid], [1700000001, 9, '0123456789abcdef0123456789abcdef']);
    assert.equal(uidOf(list, 'a.M1.h,S=10'), 1);
    assert.equal(uidOf(list, 'b.M2.h,S=20,W=22'), 5);
    assert.equal(uidOf(list, 'c.M3.h'), 7);
    assert.equal(uidOf(list, 'a.M1.h'), undefined);
    const v1 = parseUidList('1 42 3\n1 a.M1.h\n2 b.M2.h\n')!;
    assert.deepEqual([v1.uidValidity, v1.nextUid, v1.uids.get('b.M2.h')], [42, 3, 2]);
    assert.equal(parseUidList('garbage'), null);
    assert.equal(parseUidList(''), null);
  });

  it('writes what it reads', () => {
    const text = formatUidList({
      uidValidity: 77,
      nextUid: 12,
      guid: 'ab'.repeat(16),
      entries: [
        { uid: 11, base: 'y,S=1,W=2' },
        { uid: 3, base: 'x,S=1,W=2' },
      ],
    });
    assert.equal(text, `3 V77 N12 G${'ab'.repeat(16)}\n3 :x,S=1,W=2\n11 :y,S=1,W=2\n`);
    const list = parseUidList(text)!;
    assert.deepEqual(
      [...list.uids],
      [
        ['x,S=1,W=2', 3],
        ['y,S=1,W=2', 11],
      ],
    );
  });
});

describe('Maildir++ folders and subscriptions', () => {
  it('maps folder directories to mailbox names and back', () => {
    assert.equal(mailboxOfFolder('.Sent'), 'Sent');
    assert.equal(mailboxOfFolder('.Archive.2024'), 'Archive/2024');
    assert.equal(mailboxOfFolder('.Entw&APw-rfe'), 'Entw&APw-rfe');
    assert.equal(mailboxOfFolder('.inbox'), 'INBOX');
    for (const no of ['cur', '.', '..', '.a..b']) assert.equal(mailboxOfFolder(no), null);
    assert.equal(folderOfMailbox('Archive/2024'), '.Archive.2024');
    assert.equal(folderOfMailbox('INBOX'), null);
  });

  it('reads both subscription file formats and writes version 2', () => {
    assert.deepEqual(parseSubscriptions('V\t2\n\nSent\nArchive\t2024\n'), ['Sent', 'Archive/2024']);
    assert.deepEqual(parseSubscriptions('Sent\nArchive.2024\n'), ['Sent', 'Archive/2024']);
    assert.deepEqual(parseSubscriptions(formatSubscriptions(['Sent', 'Archive/2024'])), ['Sent', 'Archive/2024']);
  });
});

describe('line ends', () => {
  const run = (convert: (c: Buffer) => Buffer, pieces: string[]) => Buffer.concat(pieces.map((p) => convert(Buffer.from(p)))).toString();
  it('turns bare LF into CRLF across chunk edges, leaving CRLF alone', () => {
    assert.equal(run(lfToCrlf(), ['a\nb\r', '\nc\n', '\n']), 'a\r\nb\r\nc\r\n\r\n');
  });
  it('turns CRLF into LF across chunk edges, keeping a lone CR', () => {
    const c = crlfToLf();
    assert.equal(run((b) => c.convert(b), ['a\r', '\nb\rc\r\n', 'd\r']) + c.end().toString(), 'a\nb\rc\nd\r');
  });
});
