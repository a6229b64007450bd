import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalizeAddress, normalizeAliasSource, normalizeDomain } from '../../src/mail/address.js';
import { UserError } from '../../src/errors.js';

describe('address normal form', () => {
  const ok: Array<[string, string]> = [
    ['Alice@Example.TEST', 'alice@example.test'],
    ['bob@example.test.', 'bob@example.test'],
    ['"john doe"@example.test', '"john doe"@example.test'],
    ['user+tag@example.test', 'user+tag@example.test'],
    ['jörg@bücher.example', 'jörg@xn--bcher-kva.example'],
    ['a@[127.0.0.1]', 'a@[127.0.0.1]'],
  ];
  for (const [input, expected] of ok) it(`${input} → ${expected}`, () => assert.equal(normalizeAddress(input), expected));

  const bad = [
    '',
    'no-at-sign',
    '@example.test',
    'a@',
    'a b@example.test',
    'a..b@example.test',
    'a@-bad-.test',
    'a@exa_mple.test',
    `${'x'.repeat(65)}@example.test`,
    `a@${'x'.repeat(250)}.test`,
  ];
  for (const input of bad) it(`rejects ${JSON.stringify(input)}`, () => assert.throws(() => normalizeAddress(input), UserError));

  it('catch-all sources', () => {
    assert.equal(normalizeAliasSource('@Example.TEST'), '@example.test');
    assert.throws(() => normalizeAliasSource('@'), UserError);
  });

  it('domains', () => {
    assert.equal(normalizeDomain('MX.Example.Test'), 'mx.example.test');
    assert.throws(() => normalizeDomain('bad domain'), UserError);
  });
});
