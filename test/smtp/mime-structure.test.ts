/**
 * Delivery stores each body's MIME structure as it arrives (mail/message-sink.ts): messages
 * with broken MIME are still accepted with 250 and get a structure, and what is stored is
 * what the parser makes of the stored bytes. Reads the database directly, not through a
 * Store (opening one would backfill a missing structure and hide the failure).
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { parseMessage, parseStoredStructure, serializeStructure } from '../../src/mail/mime/index.js';
import { openSession } from '../helpers/raw-smtp.js';
import { serveForSuite } from '../helpers/tern.js';

interface StoredBody {
  structure: string | null;
  text: string | null;
  body: Buffer;
}

/** The stored body, structure and text of the message with this Subject marker, read from SQLite. */
function storedBody(dataDir: string, marker: string): StoredBody {
  const db = new Database(join(dataDir, 'tern.db'), { readonly: true });
  try {
    for (const r of db
      .prepare('SELECT b.hash, b.data, b.upload, s.structure, s.search_text FROM blobs b LEFT JOIN blob_structures s ON s.hash = b.hash')
      .all() as Array<Record<string, unknown>>) {
      let body = r.data as Buffer;
      if (r.upload != null) {
        const chunks = db.prepare('SELECT data FROM blob_chunks WHERE upload = ? ORDER BY seq').all(r.upload) as Array<{ data: Buffer }>;
        body = Buffer.concat(chunks.map((c) => c.data));
      }
      if (body.includes(marker)) return { structure: r.structure as string | null, text: r.search_text as string | null, body };
    }
  } finally {
    db.close();
  }
  throw new Error(`no stored body holds ${marker}`);
}

describe('SMTP delivery stores the MIME structure', () => {
  const suite = serveForSuite();

  async function send(message: string | Buffer): Promise<string> {
    const c = await openSession(suite.tern.smtpPort);
    try {
      assert.equal((await c.command('MAIL FROM:<sender@remote.test>')).code, 250);
      assert.equal((await c.command('RCPT TO:<alice@example.test>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      c.send(message);
      c.send('\r\n.\r\n');
      return (await c.read(20_000)).text;
    } finally {
      c.close();
    }
  }

  const cases: Array<[string, (marker: string) => string | Buffer]> = [
    [
      'broken MIME (unclosed boundaries, junk header bytes, truncated base64, a part without header)',
      (marker) =>
        Buffer.concat([
          Buffer.from(`Subject: ${marker} `),
          Buffer.from([0xff, 0xe9, 0x01]),
          Buffer.from(
            `\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: multipart/alternative; boundary=yy\r\n\r\n--yy\r\n` +
              `Content-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29y\r\n--zz\r\nno header ${marker}\r\n--z`,
          ),
        ]),
    ],
    ['no header/body separator at all', (marker) => `Subject: ${marker}\r\nX-Only: headers`],
    ['a body with no header', (marker) => `\r\n\r\nbody only ${marker}`],
    [
      'a large multipart (staged in chunks)',
      (marker) =>
        `Subject: ${marker}\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfind ${marker}\r\n--b\r\n` +
        `Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${randomBytes(300_000).toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n--b--`,
    ],
  ];
  for (const [name, make] of cases) {
    it(`accepts and parses: ${name}`, async () => {
      const marker = `marker-${randomUUID()}`;
      assert.match(await send(make(marker)), /^250 /);
      const stored = storedBody(suite.site.dataDir, marker);
      assert.ok(stored.structure !== null && stored.text !== null, 'structure and text stored with the body');
      const expected = parseMessage(stored.body);
      assert.equal(stored.structure, serializeStructure(expected));
      assert.equal(stored.text, expected.text.toLowerCase(), 'the search text, lower-cased');
      assert.equal(parseStoredStructure(stored.structure).root.bodyEnd, stored.body.length);
    });
  }
});
