/**
 * Seeded fuzz of the MIME parser: thousands of mutated messages (bytes flipped, ranges cut
 * or doubled, line ends and boundaries and headers inserted, truncation) must never throw,
 * must give offsets within the input and nested, and must give the same structure however
 * the input is cut into chunks. A failure names its seed and case number.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SAMPLES } from '../fixtures/mime-messages.js';
import { Prng } from '../fuzz/prng.js';
import { checkInvariants, parse } from './mime-support.js';

const SEED = process.env.TERN_MIME_FUZZ_SEED ?? 'mime-fuzz-1';
const CASES = Number(process.env.TERN_MIME_FUZZ_CASES ?? 3000);

const INSERTS = [
  '\r\n',
  '\n',
  '\r',
  '\r\n\r\n',
  '--',
  '--=_outer\r\n',
  '--=_outer--\r\n',
  '--outer\r\n',
  '--inner--\r\n',
  '--b1\r\n',
  '--b2--',
  '--d\r\n',
  'Content-Type: multipart/mixed; boundary=b1\r\n',
  'Content-Type: multipart/alternative; boundary="inner"\r\n\r\n',
  'Content-Type: message/rfc822\r\n\r\n',
  'Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\n',
  'Content-Type: text/html; charset=shift_jis\r\n',
  'Content-Transfer-Encoding: base64\r\n',
  'Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9=\r\n=',
  "Content-Disposition: attachment; filename*0*=utf-8''%E2; filename*1=x\r\n",
  'Subject: =?utf-8?B?w6k=?= =?iso-2022-jp?B?GyRC?=\r\n',
  'From: "a" <b@c>, grp: d@e;, (comment) <@r:x@y>\r\n',
  ' folded\r\n',
  ':',
  '"',
  '(',
  '<',
  ';',
  '=',
  '=?',
  '\0',
  '\xff\xfe',
];

function mutate(input: Buffer, rng: Prng): Buffer {
  let data = input;
  const n = rng.int(1, 6);
  for (let k = 0; k < n; k++) {
    const at = rng.int(0, data.length);
    switch (rng.int(0, 6)) {
      case 0: {
        if (data.length === 0) break;
        data = Buffer.from(data);
        data[Math.min(at, data.length - 1)] = rng.int(0, 255);
        break;
      }
      case 1:
        data = Buffer.concat([data.subarray(0, at), data.subarray(Math.min(data.length, at + rng.int(1, 40)))]);
        break;
      case 2: {
        const end = Math.min(data.length, at + rng.int(1, 200));
        data = Buffer.concat([data.subarray(0, end), data.subarray(at, end), data.subarray(end)]);
        break;
      }
      case 3:
      case 4:
        data = Buffer.concat([data.subarray(0, at), Buffer.from(rng.pick(INSERTS), 'latin1'), data.subarray(at)]);
        break;
      case 5:
        data = data.subarray(0, at);
        break;
      default:
        data = Buffer.from(data.toString('latin1').replace(/\r\n/g, rng.chance(0.5) ? '\n' : '\r\r\n'), 'latin1');
    }
  }
  return data;
}

describe('MIME parser fuzz', () => {
  it(`${CASES} mutated messages: no throw, sane offsets, chunking-independent, fast path as line by line (seed ${SEED})`, () => {
    for (let i = 0; i < CASES; i++) {
      const rng = Prng.forCase(SEED, i);
      const input = rng.chance(0.05) ? Buffer.from(Array.from({ length: rng.int(0, 400) }, () => rng.int(0, 255))) : mutate(rng.pick(SAMPLES)[1], rng);
      try {
        const whole = parse(input);
        checkInvariants(whole, input.length);
        const sizes = Array.from({ length: rng.int(1, 5) }, () => rng.int(1, 64));
        assert.deepEqual(parse(input, sizes), whole, `chunks of ${sizes.join(',')}`);
        assert.deepEqual(parse(input, sizes, true), whole, `line by line, chunks of ${sizes.join(',')}`);
      } catch (err) {
        assert.fail(`case ${i} (seed ${SEED}), input ${JSON.stringify(input.toString('latin1'))}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  });
});
