/** The shared, chunked uid list against a plain array model, under random appends and removals. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UidList } from '../../src/imap/uid-list.js';
import { Prng } from '../fuzz/prng.js';

describe('UidList', () => {
  it('behaves like a sorted array under random appends and removals, sharing what it does not change', () => {
    const rnd = new Prng('uid-list');
    let model = Array.from({ length: 2500 }, (_, i) => i * 2 + 1);
    let list = UidList.from(model);
    for (let step = 0; step < 300; step++) {
      if (rnd.float() < 0.5) {
        const add = Array.from({ length: 1 + Math.floor(rnd.float() * 1500) }, (_, i) => (model[model.length - 1] ?? 0) + 1 + i);
        const before = list;
        list = list.appended(add);
        model = [...model, ...add];
        assert.equal(before.length, model.length - add.length, 'the old list is unchanged');
      } else {
        const gone = new Set(model.filter(() => rnd.float() < 0.01));
        const { list: next, removed } = list.without(gone);
        assert.deepEqual(
          removed,
          model.flatMap((u, i) => (gone.has(u) ? [i] : [])),
        );
        list = next;
        model = model.filter((u) => !gone.has(u));
      }
      assert.equal(list.length, model.length);
      assert.equal(list.last, model[model.length - 1] ?? 0);
      for (let k = 0; k < 20; k++) {
        const i = Math.floor(rnd.float() * model.length);
        if (model.length === 0) break;
        assert.equal(list.at(i), model[i]);
        assert.equal(list.indexOf(model[i]!), i);
        assert.equal(list.indexOf(model[i]! + 0.5), -1);
        const from = Math.floor(rnd.float() * model.length);
        assert.deepEqual(list.slice(from, from + 700), model.slice(from, from + 700));
        const probe = Math.floor(rnd.float() * ((model[model.length - 1] ?? 0) + 10));
        const expected = model.findIndex((u) => u >= probe);
        assert.equal(list.lowerBound(probe), expected < 0 ? model.length : expected);
      }
    }
  });
});
