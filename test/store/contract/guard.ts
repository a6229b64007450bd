/**
 * Bans, greylisting, received reports and counted DMARC results in the Store contract:
 * what every node of a cluster shares about abusers, about our domains' mail elsewhere and
 * about others' mail here.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { NotFoundError } from '../../../src/errors.js';
import type { DmarcRow, PublishedDmarc, Store } from '../../../src/store/store.js';
import type { Fixture } from './support.js';

export function guardContract(fx: Fixture): void {
  let store: Store;
  describe('bans, greylisting, reports, DMARC results', () => {
    before(() => {
      store = fx.store;
    });

    it('bans until a time, keeps the later end, lists those in force and lifts one', async () => {
      const now = Date.now();
      const b = await store.directory.addBan('192.0.2.1', 'failed logins', new Date(now + 60_000));
      assert.deepEqual([b.address, b.reason], ['192.0.2.1', 'failed logins']);
      const longer = await store.directory.addBan('192.0.2.1', 'again', new Date(now + 120_000));
      assert.equal(longer.expiresAt.getTime(), now + 120_000);
      assert.equal(
        (await store.directory.addBan('192.0.2.1', 'shorter', new Date(now + 1_000))).expiresAt.getTime(),
        now + 120_000,
        'a shorter ban never shortens one',
      );
      await store.directory.addBan('192.0.2.2', 'expired', new Date(now - 1));
      assert.deepEqual(
        (await store.directory.listBans(new Date())).map((x) => x.address),
        ['192.0.2.1'],
      );
      await store.directory.deleteBan('192.0.2.1');
      await assert.rejects(store.directory.deleteBan('192.0.2.1'), NotFoundError);
      assert.deepEqual(await store.directory.listBans(new Date()), []);
    });

    it('greylists a triplet until its retry after the delay, then lets it pass', async () => {
      const o = (at: number) => ({ now: new Date(at), delayMs: 1_000, retryMs: 10_000, keepMs: 100_000 });
      const t0 = Date.now();
      assert.deepEqual(await store.directory.greylist('triplet-a', o(t0)), { pass: false, waitMs: 1_000 });
      assert.deepEqual(await store.directory.greylist('triplet-a', o(t0 + 400)), { pass: false, waitMs: 600 });
      assert.deepEqual(await store.directory.greylist('triplet-a', o(t0 + 1_000)), { pass: true, waitMs: 0 });
      assert.deepEqual(await store.directory.greylist('triplet-a', o(t0 + 50_000)), { pass: true, waitMs: 0 }, 'seen often enough: passes at once');
      assert.deepEqual(await store.directory.greylist('triplet-a', o(t0 + 200_000)), { pass: false, waitMs: 1_000 }, 'unseen too long: waits again');
      // A first try not retried in time is forgotten.
      assert.equal((await store.directory.greylist('triplet-b', o(t0))).pass, false);
      assert.deepEqual(await store.directory.greylist('triplet-b', o(t0 + 20_000)), { pass: false, waitMs: 1_000 });
    });

    it('keeps a report once per reporter and id, newest first', async () => {
      const report = {
        kind: 'dmarc' as const,
        domain: 'reports.test',
        reporter: 'Reporter Inc',
        reportId: 'r-1',
        begin: new Date(Date.UTC(2026, 10, 23)),
        end: new Date(Date.UTC(2026, 10, 24)),
        rows: [{ source: '192.0.2.10', count: 5, disposition: 'none', dkim: 'pass', spf: 'pass', headerFrom: 'reports.test' }],
      };
      assert.equal(await store.directory.addReport(report), true);
      assert.equal(await store.directory.addReport(report), false);
      assert.equal(await store.directory.addReport({ ...report, reportId: 'r-2', end: new Date(Date.UTC(2026, 10, 25)) }), true);
      const tls = { policy: 'sts', mx: ['mx.reports.test'], success: 3, failure: 1, failures: [{ type: 'starttls-not-supported', ip: null, count: 1 }] };
      assert.equal(await store.directory.addReport({ ...report, kind: 'tlsrpt', rows: [tls] }), true);
      const all = await store.directory.listReports({ domain: 'reports.test', limit: 10 });
      // Newest period first; within one period, the one kept last first.
      assert.deepEqual(
        all.map((r) => [r.kind, r.reportId]),
        [
          ['dmarc', 'r-2'],
          ['tlsrpt', 'r-1'],
          ['dmarc', 'r-1'],
        ],
      );
      const [onlyTls] = await store.directory.listReports({ domain: 'reports.test', kind: 'tlsrpt', limit: 10 });
      assert.deepEqual(onlyTls!.rows, [tls]);
      assert.ok(onlyTls!.receivedAt instanceof Date);
      assert.deepEqual(await store.directory.listReports({ domain: 'other.test', limit: 10 }), []);
    });

    it('counts DMARC results per day, domain and row, and hands a day out once', async () => {
      const policy: PublishedDmarc = { p: 'none', sp: 'none', pct: 100, adkim: 'r', aspf: 'r', rua: [{ address: 'agg@sender.test', maxBytes: null }] };
      const row: DmarcRow = {
        source: '192.0.2.7',
        headerFrom: 'sender.test',
        envelopeFrom: 'sender.test',
        disposition: 'none',
        dkim: 'fail',
        spf: 'pass',
        reasons: [],
        dkimResults: [],
        spfResult: { domain: 'sender.test', scope: 'mfrom', result: 'pass' },
      };
      const other = { ...row, source: '192.0.2.8', disposition: 'quarantine' as const };
      await Promise.all([1, 2, 3].map(() => store.directory.recordDmarc({ day: '2026-11-20', domain: 'sender.test', policy, row })));
      await store.directory.recordDmarc({ day: '2026-11-20', domain: 'sender.test', policy: { ...policy, p: 'quarantine' }, row: other });
      await store.directory.recordDmarc({ day: '2026-11-21', domain: 'sender.test', policy, row });
      await store.directory.recordDmarc({ day: '2026-11-20', domain: 'another.test', policy, row });
      assert.deepEqual(await store.directory.dmarcDays(), ['2026-11-20', '2026-11-21']);
      const taken = await store.directory.takeDmarcDay('2026-11-20');
      assert.deepEqual(
        taken.map((d) => [d.domain, d.policy.p, d.rows.map((r) => [r.source, r.disposition, r.count]).sort()]),
        [
          ['another.test', 'none', [['192.0.2.7', 'none', 1]]],
          // The policy last seen is kept.
          [
            'sender.test',
            'quarantine',
            [
              ['192.0.2.7', 'none', 3],
              ['192.0.2.8', 'quarantine', 1],
            ],
          ],
        ],
      );
      assert.deepEqual(
        taken[1]!.rows.find((r) => r.source === '192.0.2.7'),
        { ...row, count: 3 },
      );
      assert.deepEqual(await store.directory.takeDmarcDay('2026-11-20'), [], 'a day is handed out once');
      assert.deepEqual(await store.directory.dmarcDays(), ['2026-11-21']);
      assert.equal((await store.directory.takeDmarcDay('2026-11-21')).length, 1);
    });
  });
}
