import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DataReader, type DataResult } from '../../src/smtp/data-reader.js';

/** Feeds `input` split at every `step` bytes; returns the body and the result. */
function read(input: string, step = input.length || 1, maxSize = 1_000_000): { body: string; result: DataResult | null } {
  const pieces: Buffer[] = [];
  const reader = new DataReader(maxSize, (p) => pieces.push(Buffer.from(p)));
  const buf = Buffer.from(input, 'latin1');
  let result: DataResult | null = null;
  for (let i = 0; i < buf.length && !result; i += step) result = reader.push(buf.subarray(i, i + step));
  return { body: Buffer.concat(pieces).toString('latin1'), result };
}

describe('DataReader', () => {
  const cases: Array<{ name: string; input: string; body: string; rest?: string; smuggling?: boolean; bare?: number }> = [
    { name: 'simple message', input: 'Subject: x\r\n\r\nhello\r\n.\r\n', body: 'Subject: x\r\n\r\nhello\r\n' },
    { name: 'empty message', input: '.\r\n', body: '' },
    { name: 'dot-stuffing removed', input: '..leading dot\r\n...\r\n.\r\n', body: '.leading dot\r\n..\r\n' },
    { name: 'pipelined rest kept', input: 'a\r\n.\r\nQUIT\r\n', body: 'a\r\n', rest: 'QUIT\r\n' },
    { name: 'bare LF normalised', input: 'a\nb\r\n.\r\n', body: 'a\r\nb\r\n', bare: 1 },
    { name: 'LF.CRLF is smuggling, not the end', input: 'a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n', body: 'a\r\nMAIL FROM:<x@y>\r\n', smuggling: true, bare: 1 },
    { name: 'CRLF.LF is smuggling, not the end', input: 'a\r\n.\nRCPT TO:<x@y>\r\n.\r\n', body: 'a\r\nRCPT TO:<x@y>\r\n', smuggling: true },
    { name: 'LF.LF is smuggling', input: 'a\n.\nb\r\n.\r\n', body: 'a\r\nb\r\n', smuggling: true, bare: 1 },
    { name: 'dot inside a line is data', input: 'a.\r\n b\r\n.\r\n', body: 'a.\r\n b\r\n' },
    { name: 'CR not followed by LF is data', input: 'a\rb\r\n.\r\n', body: 'a\rb\r\n' },
  ];
  for (const c of cases) {
    for (const step of [1, 2, 3, 7, 1000]) {
      it(`${c.name} (chunks of ${step})`, () => {
        const { body, result } = read(c.input, step);
        assert.ok(result, 'end of data found');
        assert.equal(body, c.body);
        assert.equal(result.smuggling, Boolean(c.smuggling));
        assert.equal(result.bareLineFeeds, c.bare ?? 0);
        // The rest may arrive in the same chunk or later ones; with one chunk it is all there.
        if (step >= c.input.length) assert.equal(result.rest.toString('latin1'), c.rest ?? '');
      });
    }
  }

  it('waits for more input until the terminator', () => {
    const { result } = read('no end yet\r\n.');
    assert.equal(result, null);
  });

  it('counts size and stops passing data on past the limit', () => {
    const { body, result } = read(`${'x'.repeat(100)}\r\n.\r\n`, 10, 50);
    assert.ok(result);
    assert.equal(result.tooBig, true);
    assert.equal(result.size, 102);
    assert.ok(body.length <= 50);
  });
});

/** The rules written plainly, line by line, on a whole input: what the streaming reader must agree with. */
function reference(input: string): { body: string; rest: string; smuggling: boolean; bare: number } | null {
  let body = '';
  let smuggling = false;
  let bare = 0;
  let prevBare = false;
  for (let i = 0; ;) {
    const nl = input.indexOf('\n', i);
    if (nl < 0) return null;
    const line = input.slice(i, nl);
    const hasCr = line.endsWith('\r');
    let content = hasCr ? line.slice(0, -1) : line;
    i = nl + 1;
    if (content === '.') {
      if (hasCr && !prevBare) return { body, rest: input.slice(i), smuggling, bare };
      smuggling = true;
    } else {
      if (content.startsWith('.')) content = content.slice(1);
      if (!hasCr) bare++;
      body += `${content}\r\n`;
    }
    prevBare = !hasCr;
  }
}

describe('DataReader fuzz', () => {
  it('agrees with the plain line-by-line rules on random input, whole and in random chunks', () => {
    const alphabet = ['.', '\r', '\n', 'a', 'b', '\r\n', '\r\n.', '..', '\n.', '.\r', 'text line'];
    let seed = 777;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let round = 0; round < 3000; round++) {
      let input = '';
      const len = rand(60);
      for (let i = 0; i < len; i++) input += alphabet[rand(alphabet.length)];
      input += '\r\n.\r\nQUIT\r\n';
      const want = reference(input);
      for (const step of [input.length, 1 + rand(9)]) {
        const got = read(input, step);
        const what = `${JSON.stringify(input)} in chunks of ${step}`;
        assert.equal(Boolean(got.result), Boolean(want), `terminated: ${what}`);
        if (!got.result || !want) continue;
        assert.equal(got.body, want.body, `body of ${what}`);
        assert.equal(got.result.smuggling, want.smuggling, `smuggling in ${what}`);
        assert.equal(got.result.bareLineFeeds, want.bare, `bare LFs in ${what}`);
        if (step === input.length) assert.equal(got.result.rest.toString('latin1'), want.rest, `rest of ${what}`);
      }
    }
  });
});
