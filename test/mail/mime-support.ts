/**
 * Helpers for the MIME parser tests: messages from lines, parsing in chunks, and the
 * invariants every structure must keep (offsets within the input and nested, parts in
 * order, the text within its cap).
 */
import assert from 'node:assert/strict';
import { MimeParser, TEXT_CAP, type MessageStructure, type MimePart } from '../../src/mail/mime/index.js';

/** A message from its lines, CRLF line ends (or bare LF with `lf`). */
export const msg = (lines: string[], lf = false): Buffer => Buffer.from(lines.join(lf ? '\n' : '\r\n'));

/**
 * Parses `input` fed in pieces of `sizes` (cycled); the whole input at once when none are
 * given. `lineByLine` turns off the parser's fast path for runs of body lines.
 */
export function parse(input: Buffer, sizes: number[] = [], lineByLine = false): MessageStructure {
  const p = new MimeParser(lineByLine);
  if (sizes.length === 0) p.write(input);
  else {
    for (let i = 0, k = 0; i < input.length; k++) {
      const n = Math.max(1, sizes[k % sizes.length]!);
      p.write(input.subarray(i, i + n));
      i += n;
    }
  }
  return p.end();
}

/** The bytes of a part's header block and body, as latin1 text. */
export function bytesOf(input: Buffer, part: MimePart): { header: string; body: string } {
  return { header: input.toString('latin1', part.headerStart, part.bodyStart), body: input.toString('latin1', part.bodyStart, part.bodyEnd) };
}

function checkPart(part: MimePart, from: number, to: number, path: string, count: { parts: number }): void {
  count.parts++;
  assert.ok(from <= part.headerStart, `${path}: headerStart ${part.headerStart} >= ${from}`);
  assert.ok(part.headerStart <= part.bodyStart, `${path}: headerStart <= bodyStart`);
  assert.ok(part.bodyStart <= part.bodyEnd, `${path}: bodyStart ${part.bodyStart} <= bodyEnd ${part.bodyEnd}`);
  assert.ok(part.bodyEnd <= to, `${path}: bodyEnd ${part.bodyEnd} <= ${to}`);
  assert.ok(part.lines >= 0 && part.lines <= part.bodyEnd - part.bodyStart + 1, `${path}: lines ${part.lines}`);
  assert.ok(part.type && part.subtype && part.type === part.type.toLowerCase(), `${path}: type`);
  assert.equal(part.encoding, part.encoding.toUpperCase(), `${path}: encoding`);
  if (part.type === 'multipart') assert.ok(Array.isArray(part.children), `${path}: a multipart has children`);
  let at = part.bodyStart;
  for (const [i, child] of (part.children ?? []).entries()) {
    checkPart(child, at, part.bodyEnd, `${path}.${i + 1}`, count);
    at = child.bodyEnd;
  }
  if (part.message) {
    assert.equal(part.message.root.headerStart, part.bodyStart, `${path}: the enclosed message starts with the body`);
    assert.equal(part.message.root.bodyEnd, part.bodyEnd, `${path}: the enclosed message ends with the body`);
    checkPart(part.message.root, part.bodyStart, part.bodyEnd, `${path}(message)`, count);
  }
}

/** Asserts what holds for every structure of an input of `length` bytes. */
export function checkInvariants(s: MessageStructure, length: number): void {
  assert.equal(s.version, 1);
  assert.equal(s.root.headerStart, 0);
  assert.equal(s.root.bodyEnd, length, 'the root body ends with the input');
  const count = { parts: 0 };
  checkPart(s.root, 0, length, 'root', count);
  assert.ok(count.parts <= 2001, `at most MAX_PARTS parts (${count.parts})`);
  assert.ok(Buffer.byteLength(s.text) <= TEXT_CAP, 'text within its cap');
  assert.ok(!s.text.includes('\0'), 'no NUL in the text (PostgreSQL text cannot hold one)');
  for (const [name, value] of s.headers) assert.ok(name === name.toLowerCase() && typeof value === 'string');
}
