/**
 * The rendered ENVELOPE, BODY and BODYSTRUCTURE of a structure fresh from the parser (as
 * APPEND caches them) are the ones rendered from its stored form (as FETCH renders them
 * on a cache miss): a client sees the same answer either way.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseMessage, parseStoredStructure, serializeStructure } from '../../src/mail/mime/index.js';
import { RenderedStructures } from '../../src/imap/render/cache.js';
import { SAMPLES } from '../fixtures/mime-messages.js';
import { malformedBody, multipartBody } from '../store/contract/structures.js';

describe('rendered structures', () => {
  const inputs: Array<[string, Buffer]> = [...SAMPLES, ['multipart with attachment', multipartBody(5000)], ['malformed', malformedBody()]];
  for (const [name, body] of inputs) {
    it(`are the same from the parser and from the stored form (${name})`, () => {
      const parsed = parseMessage(body);
      const cache = new RenderedStructures();
      const fresh = cache.add('fresh', parsed);
      const stored = cache.add('stored', parseStoredStructure(serializeStructure(parsed)));
      assert.deepEqual(fresh, stored);
      assert.match(fresh.envelope, /^\(/);
      assert.match(fresh.bodystructure, /^\(/);
    });
  }
});
