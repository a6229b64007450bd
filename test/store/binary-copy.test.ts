/**
 * Byte columns read in binary on PostgreSQL (postgres/binary-copy.ts): exact bytes for
 * values that are not UTF-8, parameters written as safe literals, malformed COPY data refused.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { copyBytes, inlineParams, parseBinaryCopy } from '../../src/store/postgres/binary-copy.js';
import { freshPgDatabase, pgSkipReason, type TestDatabase } from '../helpers/pg.js';

const skip = await pgSkipReason();

describe('PostgreSQL binary COPY reads', { skip }, () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  const values = [randomBytes(300 * 1024), Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x0d, 0x0a]), Buffer.alloc(0)];
  before(async () => {
    db = await freshPgDatabase();
    pool = new pg.Pool({ connectionString: db.url, max: 2 });
    await pool.query('CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER NOT NULL, data BYTEA NOT NULL)');
    for (const [i, v] of values.entries()) await pool.query('INSERT INTO t VALUES ($1, $2, $3)', [`key'${i}`, i, v]);
  });
  after(async () => {
    await pool?.end();
    await db?.drop();
  });

  it('returns the exact bytes, in order, for values that are not valid UTF-8', async () => {
    const got = await copyBytes(pool, 'SELECT data FROM t ORDER BY n', [], 5000);
    assert.equal(got.length, values.length);
    got.forEach((g, i) => assert.ok(g.equals(values[i]!), `value ${i}`));
  });

  it('writes string and number parameters as literals, quotes included', async () => {
    const [one] = await copyBytes(pool, 'SELECT data FROM t WHERE k = ? AND n = ?', ["key'1", 1], 5000);
    assert.ok(one!.equals(values[1]!));
    assert.deepEqual(await copyBytes(pool, 'SELECT data FROM t WHERE k = ?', ["x' OR '1'='1"], 5000), []);
    const client = await pool.connect();
    try {
      assert.throws(() => inlineParams(client, 'SELECT ?', [{}]), TypeError);
      assert.throws(() => inlineParams(client, 'SELECT ?', [Number.NaN]), TypeError);
      assert.throws(() => inlineParams(client, 'SELECT ?, ?', [1]), TypeError);
    } finally {
      client.release();
    }
  });

  it('refuses data that is not binary COPY output, or is cut short', async () => {
    assert.throws(() => parseBinaryCopy(Buffer.from('\\x00ff')), /not PostgreSQL binary COPY/);
    const whole = await new Promise<Buffer>((resolve, reject) => {
      void pool.connect().then(async (client) => {
        const { to } = await import('pg-copy-streams');
        const pieces: Buffer[] = [];
        const s = client.query(to('COPY (SELECT data FROM t ORDER BY n) TO STDOUT (FORMAT binary)'));
        s.on('data', (p: Buffer) => pieces.push(p));
        s.on('end', () => (client.release(), resolve(Buffer.concat(pieces))));
        s.on('error', (e) => (client.release(e), reject(e)));
      }, reject);
    });
    assert.equal(parseBinaryCopy(whole).length, values.length);
    assert.throws(() => parseBinaryCopy(whole.subarray(0, whole.length - 100)), /truncated|out of range/i);
  });
});
