/**
 * The parsed-structure part of the Store contract: a body delivered through a MessageSink
 * is stored with its MIME structure and search text (inline or staged, well-formed or
 * not), read back by BlobStore.structure; a body stored without one is parsed on demand
 * and filled in by a later delivery of the same bytes. Also `backfillScenario`, which the
 * backend tests run on a database they can reopen: bodies whose structure is missing are
 * parsed when the store opens.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { ByteBudget } from '../../../src/mail/byte-budget.js';
import { parseMessage, SEARCH_FIELDS, searchValues } from '../../../src/mail/mime/index.js';
import { MessageSink } from '../../../src/mail/message-sink.js';
import type { StoreLog } from '../../../src/store/sql/backfill-structures.js';
import type { Account, BlobRef, Store } from '../../../src/store/store.js';
import { delivery, type Fixture, inline, nextSequence, type Row, sha256 } from './support.js';

/** A well-formed multipart message, distinct per call, about `size` bytes (its attachment grows). */
export function multipartBody(size = 2000): Buffer {
  const n = nextSequence();
  const attachment = randomBytes(Math.max(0, Math.floor(((size - 600) * 3) / 4)))
    .toString('base64')
    .replace(/.{76}/g, '$&\r\n');
  return Buffer.from(
    [
      `From: "Sender ${n}" <sender@example.org>`,
      'To: rcpt@example.net',
      `Subject: =?utf-8?q?structure_${n}_=C3=A9?=`,
      'Content-Type: multipart/mixed; boundary="b"',
      '',
      '--b',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      `caf=C3=A9 number ${n}`,
      '--b',
      'Content-Type: application/octet-stream',
      'Content-Transfer-Encoding: base64',
      '',
      attachment,
      '--b--',
      '',
    ].join('\r\n'),
  );
}

/** Broken MIME: bare LF, a multipart whose delimiters never close, 8-bit junk and NUL in headers and text, truncated base64. */
export function malformedBody(): Buffer {
  const n = nextSequence();
  return Buffer.concat([
    Buffer.from(`Subject: broken ${n} `),
    Buffer.from([0xff, 0xfe, 0x00, 0xe9]),
    Buffer.from(
      `\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\naGVsbG8gd29y\n--zz\nno header here ${n}\n`,
    ),
    Buffer.from([0x00, 0x41, 0x00, 0xc3]),
    Buffer.from(`\n--zz\nContent-Type: text/plain; charset=utf-16le\nContent-Transfer-Encoding: quoted-printable\n\nA=00=00=00B=00=00\n--z`),
  ]);
}

/** Sends `body` through a MessageSink in pieces, as a session would; returns the BlobRef it makes. */
export async function sinkBody(store: Store, body: Buffer, piece = 7919): Promise<BlobRef> {
  const sink = new MessageSink(store.blobs, new ByteBudget(1 << 30));
  for (let i = 0; i < body.length; i += piece) {
    sink.write(Buffer.from(body.subarray(i, i + piece)));
    await sink.writable();
  }
  return sink.finish();
}

/** What BlobStore.structure should return for `body`. */
export function expectedStructure(body: Buffer): { structure: ReturnType<typeof parseMessage>; text: string } {
  const parsed = parseMessage(body);
  // The store keeps the search text lower-cased (mail/mime storedForm).
  return { structure: { ...parsed, text: '' }, text: parsed.text.toLowerCase() };
}

export function structuresContract(fx: Fixture): void {
  let store: Store;
  let account: Account;
  const column = async (hash: string): Promise<Row | undefined> =>
    (await fx.inspect('SELECT s.structure, s.search_text, b.parsed FROM blobs b LEFT JOIN blob_structures s ON s.hash = b.hash WHERE b.hash = ?', [hash]))[0];

  describe('parsed structures', () => {
    before(async () => {
      store = fx.store;
      await store.directory.addDomain('structures.test');
      account = await fx.addAccount('s@structures.test');
    });

    for (const [name, make] of [
      ['a small body (kept inline)', () => multipartBody()],
      ['a body larger than a chunk (staged)', () => multipartBody(400_000)],
      ['a malformed body', () => malformedBody()],
    ] as const) {
      it(`stores the structure of ${name} delivered through a MessageSink`, async () => {
        const body = make();
        const blob = await sinkBody(store, body);
        assert.ok(blob.structure, 'the sink parsed the body');
        assert.equal('upload' in blob, body.length > 128 * 1024);
        await fx.deliverOne(delivery([account.id], { blob }));
        const stored = await column(blob.hash);
        assert.ok(stored?.structure != null && stored.search_text != null && Number(stored.parsed) === 1, 'stored beside the blob, which is marked parsed');
        assert.deepEqual(await store.blobs.structure(blob.hash), expectedStructure(body));
      });
    }

    it('reads back what was delivered: envelope, decoded headers, parts and text', async () => {
      const body = multipartBody();
      const blob = await sinkBody(store, body, 1);
      await fx.deliverOne(delivery([account.id], { blob }));
      const got = await store.blobs.structure(blob.hash);
      assert.ok(got);
      assert.equal(got.structure.envelope.from![0]!.host, 'example.org');
      assert.match(got.structure.headers.find(([k]) => k === 'subject')![1], /^structure \d+ é$/);
      assert.deepEqual(
        got.structure.root.children!.map((c) => `${c.type}/${c.subtype}`),
        ['text/plain', 'application/octet-stream'],
      );
      assert.match(got.text, /^café number \d+$/);
    });

    it('a body stored without a structure is parsed on demand, and a later delivery of it fills the row in', async () => {
      const body = multipartBody();
      const bare = inline(body);
      await fx.deliverOne(delivery([account.id], { blob: bare }));
      assert.equal((await column(bare.hash))?.structure, null);
      assert.deepEqual(await store.blobs.structure(bare.hash), expectedStructure(body), 'parsed from the stored bytes');
      assert.equal((await column(bare.hash))?.structure, null, 'a read stores nothing');
      await fx.deliverOne(delivery([account.id], { blob: await sinkBody(store, body) }));
      assert.notEqual((await column(bare.hash))?.structure, null);
      assert.equal(await fx.refcount(bare.hash), 2);
      assert.deepEqual(await store.blobs.structure(bare.hash), expectedStructure(body));
    });

    it('a body already stored keeps its structure', async () => {
      const body = multipartBody();
      const first = await sinkBody(store, body);
      await fx.deliverOne(delivery([account.id], { blob: first }));
      const before = await column(first.hash);
      const other = { ...inline(body), structure: { json: '{"version":1,"bogus":true}', text: 'other', headers: '' } };
      await fx.deliverOne(delivery([account.id], { blob: other }));
      assert.deepEqual(await column(first.hash), before);
    });

    it('fetch with `matching` keeps the messages whose text and header fields match, and the unparsed ones marked', async () => {
      const box = await store.mailboxes.create(account.id, `Matching ${nextSequence()}`);
      const bodies = [
        'From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: Invoice 7 (paid)\r\nX-Tag: a.b*c\r\n\r\nThe kittiwake flew.\r\n',
        'From: Bob <bob@example.net>\r\nTo: alice@example.org\r\nSubject: lunch\r\nX-Tag: abxc\r\n\r\nAn invoice is attached.\r\n',
        'From: carol@example.com\r\nSubject: =?utf-8?q?Caf=C3=A9_invoice?=\r\nSubject: second subject\r\n\r\nnothing\r\n',
      ];
      const uids: number[] = [];
      for (const b of bodies) {
        const blob = await sinkBody(store, Buffer.from(b.replace('7', String(nextSequence()))));
        uids.push((await fx.deliverOne(delivery([{ accountId: account.id, prefix: Buffer.alloc(0), mailbox: box.name }], { blob }))).uid);
      }
      const unparsed = Buffer.from(`Subject: invoice ${nextSequence()}\r\n\r\nkittiwake\r\n`);
      uids.push((await fx.deliverOne(delivery([{ accountId: account.id, prefix: Buffer.alloc(0), mailbox: box.name }], { blob: inline(unparsed) }))).uid);
      const found = async (matching: { text: string[]; headers: Array<{ field: string; value: string }> }) =>
        (await store.mailboxes.fetch(box.id, { from: uids[0]!, to: uids.at(-1)! }, { matching })).map((r) => [uids.indexOf(r.uid), r.parsed]);
      // [what is shown, text needles, header field and value, the parsed messages found]; the unparsed one (3) always comes back.
      const cases: Array<[string, string[], [string, string], number[]]> = [
        ['a field', [], ['subject', 'invoice'], [0, 2]],
        ['decoded words', [], ['subject', 'café'], [2]],
        ['a repeated field', [], ['subject', 'second'], [2]],
        ['not the To field', [], ['from', 'alice'], [0]],
        ['no pattern characters', [], ['x-tag', 'a.b*c'], [0]],
        ['the field exists', [], ['x-tag', ''], [0, 1]],
        ['never across lines', [], ['subject', 'paid)\nx-tag'], []],
        ['text and a field', ['kittiwake'], ['subject', 'invoice'], [0]],
      ];
      for (const [what, text, [field, value], parsed] of cases) {
        assert.deepEqual(await found({ text, headers: [{ field, value }] }), [...parsed.map((i) => [i, true]), [3, false]], what);
      }
    });

    it('has no structure for a blob that does not exist', async () => {
      assert.equal(await store.blobs.structure(sha256(Buffer.from(`none ${nextSequence()}`))), null);
    });
  });
}

export interface BackfillTarget {
  /** Opens the store on the same database every time, with this log. */
  open(log: StoreLog): Promise<Store>;
  /** Runs a statement on the database behind the store's back (`?` placeholders). */
  exec(sql: string, params?: unknown[]): Promise<Row[]>;
}

/**
 * Bodies whose structure is missing (nulled behind the store's back, or in a database of
 * schema version 2, which had no structures) are parsed when the store opens: inline and chunked
 * ones, a malformed one, and a chunked one missing a chunk (it gets the structure of what
 * could be read). The next open has nothing to do.
 */
export async function backfillScenario(target: BackfillTarget, how: 'nulled' | 'from version 2' | 'from version 3'): Promise<void> {
  const logged: string[] = [];
  const log: StoreLog = (_fields, message) => logged.push(message);
  const bodies = [multipartBody(), multipartBody(300_000), malformedBody(), multipartBody(300_000)];
  let store = await target.open(log);
  const hashes: string[] = [];
  try {
    await store.directory.addDomain('backfill.test');
    const account = await store.directory.addAccount({ address: 'b@backfill.test', passwordHash: 'h' });
    for (const body of bodies) {
      const blob = await sinkBody(store, body);
      hashes.push(blob.hash);
      await store.mailboxes.deliver(delivery([account.id], { blob }));
    }
  } finally {
    await store.close();
  }
  assert.deepEqual(logged, [], 'nothing to parse on a store where every body has its structure');
  const [, , , broken] = hashes;
  const [upload] = await target.exec('SELECT upload FROM blobs WHERE hash = ?', [broken]);
  await target.exec('DELETE FROM blob_chunks WHERE upload = ? AND seq = 1', [upload!.upload]);
  if (how !== 'nulled') {
    // Nothing is queued and no DKIM key, API key, webhook, ban, report or DMARC result made: the tables of versions 5 to 11 go as if they had never been made.
    const later = [
      'queue_events',
      'queue_recipients',
      'queue',
      'dkim_keys',
      'api_keys',
      'idempotency',
      'suppressions',
      'webhooks',
      'webhook_deliveries',
      'bans',
      'greylist',
      'reports',
      'dmarc_records',
      'dmarc_policies',
    ];
    for (const table of later) await target.exec(`DROP TABLE ${table}`);
    await target.exec('DELETE FROM schema_migrations WHERE version IN (5, 6, 7, 8, 9, 10, 11)');
  }
  if (how === 'from version 3') {
    // Structures stored, but not the short SEARCH columns of version 4: the migration fills them in.
    await target.exec('DROP TABLE blob_search');
    await target.exec('DELETE FROM schema_migrations WHERE version = 4');
  } else if (how === 'nulled') {
    await target.exec(`DELETE FROM blob_structures WHERE hash IN (${hashes.map(() => '?').join(', ')})`, hashes);
    await target.exec(`UPDATE blobs SET parsed = 0 WHERE hash IN (${hashes.map(() => '?').join(', ')})`, hashes);
  } else {
    // The database as schema version 2 left it (with these bodies in it); opening it migrates and parses.
    await target.exec('DROP TABLE blob_search');
    await target.exec('DROP INDEX blobs_unparsed');
    await target.exec('DROP INDEX messages_unseen');
    await target.exec('DROP TABLE blob_structures');
    await target.exec('ALTER TABLE blobs DROP COLUMN parsed');
    await target.exec('DELETE FROM schema_migrations WHERE version >= 3');
  }

  store = await target.open(log);
  try {
    const versions = await target.exec('SELECT version FROM schema_migrations ORDER BY version');
    assert.deepEqual(
      versions.map((v) => Number(v.version)),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    );
    const search = await target.exec(
      `SELECT s.search_headers, f.* FROM blob_structures s LEFT JOIN blob_search f ON f.hash = s.hash WHERE s.hash IN (${hashes.map(() => '?').join(', ')})`,
      hashes,
    );
    assert.equal(search.length, 4);
    for (const r of search) {
      const values = searchValues(String(r.search_headers));
      for (const field of SEARCH_FIELDS) assert.equal(r[`hdr_${field}`] ?? null, values[field], `${field} of ${String(r.hash)}`);
    }
    assert.ok(search.some((r) => r.hdr_subject != null) && search.some((r) => r.hdr_to == null), 'values and NULLs both checked');
    if (how === 'from version 3') assert.deepEqual(logged, [], 'nothing to parse');
    else {
      assert.ok(
        logged.some((m) => /parsing 4 stored message bodies/.test(m)),
        logged.join('\n'),
      );
      assert.ok(
        logged.some((m) => /parsed 4 stored message bodies/.test(m)),
        logged.join('\n'),
      );
      const rows = await target.exec(
        `SELECT b.hash, s.structure, s.search_text, b.parsed FROM blobs b LEFT JOIN blob_structures s ON s.hash = b.hash WHERE b.hash IN (${hashes.map(() => '?').join(', ')})`,
        hashes,
      );
      assert.equal(rows.length, 4);
      assert.ok(
        rows.every((r) => r.structure != null && r.search_text != null && Number(r.parsed) === 1),
        'every body has its structure again',
      );
    }
    for (const i of [0, 1, 2]) assert.deepEqual(await store.blobs.structure(hashes[i]!), expectedStructure(bodies[i]!), `body ${i}`);
    const partial = await store.blobs.structure(broken!);
    if (how !== 'from version 3') assert.ok(partial && partial.structure.root.bodyEnd < bodies[3]!.length, 'the structure of what could be read');
  } finally {
    await store.close();
  }
  logged.length = 0;
  await (await target.open(log)).close();
  assert.deepEqual(logged, [], 'the next open has nothing to do');
}
