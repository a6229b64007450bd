import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupCommit } from '../../src/store/group-commit.js';

describe('GroupCommit', () => {
  it('batches items submitted together and keeps their order', async () => {
    const batches: number[][] = [];
    const gc = new GroupCommit<number, number>(
      async (items) => {
        batches.push(items);
        await new Promise((r) => setTimeout(r, 5));
        return items.map((i) => i * 2);
      },
      { maxBatch: 100, concurrency: 1 },
    );
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => gc.submit(i)));
    assert.deepEqual(results, Array.from({ length: 50 }, (_, i) => i * 2));
    assert.ok(batches.length < 50, `expected shared commits, got ${batches.length} batches`);
  });

  it('items arriving during a commit form the next batch', async () => {
    const sizes: number[] = [];
    const gc = new GroupCommit<number, number>(
      async (items) => {
        sizes.push(items.length);
        await new Promise((r) => setTimeout(r, 20));
        return items;
      },
      { maxBatch: 100, concurrency: 1 },
    );
    const first = gc.submit(0);
    await new Promise((r) => setImmediate(r));
    const rest = Array.from({ length: 10 }, (_, i) => gc.submit(i + 1));
    await Promise.all([first, ...rest]);
    assert.deepEqual(sizes, [1, 10]);
  });

  it('a failing item fails alone', async () => {
    const gc = new GroupCommit<number, number>(
      async (items) => {
        if (items.includes(3)) throw new Error('bad item 3');
        return items;
      },
      { maxBatch: 100, concurrency: 1 },
    );
    const settled = await Promise.allSettled([1, 2, 3, 4].map((i) => gc.submit(i)));
    assert.deepEqual(
      settled.map((s) => s.status),
      ['fulfilled', 'fulfilled', 'rejected', 'fulfilled'],
    );
  });
});
