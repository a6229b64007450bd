/** GroupCommit: batching, ordering, failure of a batch, concurrency, and bulk items never delaying ordinary ones. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupCommit, type GroupCommitOptions } from '../../src/store/group-commit.js';

const OPTIONS: GroupCommitOptions = { maxBatch: 100, maxBulkBatch: 2, concurrency: 1 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const turn = () => new Promise((resolve) => setImmediate(resolve));

/** A GroupCommit whose writer records each batch (items and bulk flag) and takes `ms` per batch. */
function recording(options: Partial<GroupCommitOptions> = {}, ms = 5) {
  const batches: Array<{ items: string[]; bulk: boolean }> = [];
  const gc = new GroupCommit<string, string>(
    async (items, bulk) => {
      batches.push({ items, bulk });
      await sleep(ms);
      return items.map((i) => `done ${i}`);
    },
    { ...OPTIONS, ...options },
  );
  return { gc, batches };
}

describe('GroupCommit', () => {
  it('batches items submitted together and keeps their order', async () => {
    const batches: number[][] = [];
    const gc = new GroupCommit<number, number>(async (items) => {
      batches.push(items);
      await sleep(5);
      return items.map((i) => i * 2);
    }, OPTIONS);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => gc.submit(i)));
    assert.deepEqual(
      results,
      Array.from({ length: 50 }, (_, i) => i * 2),
    );
    assert.deepEqual(batches, [Array.from({ length: 50 }, (_, i) => i)], 'one shared commit');
  });

  it('never splits a group across batches, even past maxBatch', async () => {
    const { gc, batches } = recording({ maxBatch: 4 });
    const loose = [gc.submit('a'), gc.submit('b')];
    const group = Array.from({ length: 6 }, (_, i) => gc.submit(`g${i}`, false, 1));
    const after = [gc.submit('c'), gc.submit('d', false, 2), gc.submit('e', false, 2)];
    await Promise.all([...loose, ...group, ...after]);
    assert.deepEqual(
      batches.map((b) => b.items),
      [
        ['a', 'b', 'g0', 'g1', 'g2', 'g3', 'g4', 'g5'],
        ['c', 'd', 'e'],
      ],
    );
  });

  it('items arriving during a commit form the next batch', async () => {
    const { gc, batches } = recording({}, 20);
    const first = gc.submit('0');
    await turn();
    const rest = Array.from({ length: 10 }, (_, i) => gc.submit(String(i + 1)));
    await Promise.all([first, ...rest]);
    assert.deepEqual(
      batches.map((b) => b.items.length),
      [1, 10],
    );
  });

  it('never puts more than maxBatch items in one batch', async () => {
    const { gc, batches } = recording({ maxBatch: 4 });
    await Promise.all(Array.from({ length: 10 }, (_, i) => gc.submit(String(i))));
    assert.deepEqual(
      batches.map((b) => b.items),
      [
        ['0', '1', '2', '3'],
        ['4', '5', '6', '7'],
        ['8', '9'],
      ],
    );
  });

  it('a failing batch fails every item in it, and the next batch is written', async () => {
    let calls = 0;
    const gc = new GroupCommit<number, number>(async (items) => {
      calls++;
      if (items.includes(3)) throw new Error('store unavailable');
      return items;
    }, OPTIONS);
    const settled = await Promise.allSettled([1, 2, 3, 4].map((i) => gc.submit(i)));
    assert.deepEqual(
      settled.map((s) => s.status),
      ['rejected', 'rejected', 'rejected', 'rejected'],
    );
    assert.ok(settled.every((s) => s.status === 'rejected' && (s.reason as Error).message === 'store unavailable'));
    assert.equal(await gc.submit(5), 5);
    assert.equal(calls, 2);
  });

  it('keeps at most `concurrency` batches in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const gc = new GroupCommit<number, number>(
      async (items) => {
        most = Math.max(most, ++inFlight);
        await sleep(10);
        inFlight--;
        return items;
      },
      { maxBatch: 2, maxBulkBatch: 2, concurrency: 3 },
    );
    await Promise.all(Array.from({ length: 20 }, (_, i) => gc.submit(i)));
    assert.equal(most, 3);
  });

  it('with overlapAfterMs, starts a further batch only once the one in flight has run that long', async () => {
    const starts: Array<{ at: number; items: number }> = [];
    const t0 = performance.now();
    const gc = new GroupCommit<number, number>(
      async (items) => {
        starts.push({ at: performance.now() - t0, items: items.length });
        await sleep(items[0] === 0 ? 200 : 5); // the first batch is stuck
        return items;
      },
      { maxBatch: 100, maxBulkBatch: 2, concurrency: 4, overlapAfterMs: 60 },
    );
    const first = gc.submit(0);
    await turn();
    const waiting = Array.from({ length: 10 }, (_, i) => gc.submit(i + 1));
    await sleep(20);
    assert.equal(starts.length, 1, 'nothing overlaps a batch that has run less than 60 ms');
    await Promise.all([first, ...waiting]);
    assert.deepEqual(
      starts.map((s) => s.items),
      [1, 10],
      'the items that waited went together',
    );
    assert.ok(starts[1]!.at >= 55 && starts[1]!.at < 190, `the second batch started at ${starts[1]!.at.toFixed(0)} ms, beside the stuck one`);
  });

  it('with overlapAfterMs, bulk batches never wait, and an ordinary batch does not wait for a bulk one', async () => {
    const starts: Array<{ at: number; items: string[] }> = [];
    const t0 = performance.now();
    const gc = new GroupCommit<string, string>(
      async (items) => {
        starts.push({ at: performance.now() - t0, items });
        await sleep(100);
        return items;
      },
      { maxBatch: 100, maxBulkBatch: 1, concurrency: 4, overlapAfterMs: 1000 },
    );
    const bulk = ['b1', 'b2'].map((i) => gc.submit(i, true));
    await turn();
    const ordinary = gc.submit('o1');
    await sleep(30);
    assert.deepEqual(
      starts.map((s) => s.items.join()),
      ['b1', 'b2', 'o1'],
      'all three in flight together',
    );
    assert.ok(starts.every((s) => s.at < 30));
    await Promise.all([...bulk, ordinary]);
  });

  it('writes bulk items in their own batches of at most maxBulkBatch, flagged as bulk', async () => {
    const { gc, batches } = recording();
    await Promise.all(['a', 'b', 'c', 'd', 'e'].map((i) => gc.submit(i, true)));
    assert.deepEqual(batches, [
      { items: ['a', 'b'], bulk: true },
      { items: ['c', 'd'], bulk: true },
      { items: ['e'], bulk: true },
    ]);
  });

  it('writes ordinary items before bulk items submitted in the same turn', async () => {
    const { gc, batches } = recording();
    const bulk = ['b1', 'b2', 'b3'].map((i) => gc.submit(i, true));
    const ordinary = ['o1', 'o2'].map((i) => gc.submit(i));
    await Promise.all([...bulk, ...ordinary]);
    assert.deepEqual(batches, [
      { items: ['o1', 'o2'], bulk: false },
      { items: ['b1', 'b2'], bulk: true },
      { items: ['b3'], bulk: true },
    ]);
  });

  it('bulk items never delay ordinary ones: items submitted while bulk is queued are written first', async () => {
    const { gc, batches } = recording({}, 20);
    const bulk = Array.from({ length: 8 }, (_, i) => gc.submit(`b${i}`, true));
    await turn(); // the first bulk batch is now being written; six bulk items wait
    assert.deepEqual(batches, [{ items: ['b0', 'b1'], bulk: true }]);
    const ordinary = ['o1', 'o2', 'o3'].map((i) => gc.submit(i));
    await Promise.all([...bulk, ...ordinary]);
    assert.deepEqual(batches[1], { items: ['o1', 'o2', 'o3'], bulk: false }, 'the next batch after the one in flight');
    assert.deepEqual(
      batches.slice(2).map((b) => b.items),
      [
        ['b2', 'b3'],
        ['b4', 'b5'],
        ['b6', 'b7'],
      ],
    );
  });

  it('drain() resolves once everything submitted has been written or failed', async () => {
    const { gc, batches } = recording({}, 10);
    await gc.drain(); // nothing pending
    const all = [gc.submit('x'), gc.submit('y', true), gc.submit('z')];
    await gc.drain();
    assert.deepEqual(
      batches.map((b) => b.items),
      [['x', 'z'], ['y']],
    );
    assert.deepEqual(await Promise.all(all), ['done x', 'done y', 'done z']);
  });
});
