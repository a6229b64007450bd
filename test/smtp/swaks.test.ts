/**
 * Inbound SMTP driven by Debian's swaks (a real, independent SMTP client): plain,
 * STARTTLS with the self-signed certificate, PIPELINING, raw DATA with bare LF lines,
 * a smuggling attempt, and --quit-after RCPT; checks exit codes, transcripts and store.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { serveForSuite, status, tempDir } from '../helpers/tern.js';
import { runProgram, storedMessages, type ProgramResult } from './support.js';

const SWAKS = '/usr/bin/swaks';

describe('SMTP with swaks', () => {
  let work: string;
  before(() => {
    if (!existsSync(SWAKS)) {
      throw new Error(`swaks is not installed at ${SWAKS}: these tests need Debian's swaks package (apt-get install swaks)`);
    }
    work = tempDir('tern-swaks-');
  });
  const suite = serveForSuite();

  /** Runs swaks against the test server; the transcript is on stdout. */
  const swaks = (args: string[]): Promise<ProgramResult> =>
    runProgram(SWAKS, [
      '--server',
      '127.0.0.1',
      '--port',
      String(suite.tern.smtpPort),
      '--helo',
      'client.test',
      '--from',
      'sender@remote.test',
      '--timeout',
      '10',
      ...args,
    ]);

  const transcript = (r: ProgramResult) => `exit ${r.code}\n${r.stdout}\n${r.stderr}`;

  const withSubject = async (subject: string) => (await storedMessages(suite.site, 'alice@example.test')).filter((m) => m.blob.includes(subject));

  it('sends a plain message', async () => {
    const subject = `swaks plain ${randomUUID()}`;
    const r = await swaks(['--to', 'alice@example.test', '--header', `Subject: ${subject}`, '--body', 'plain body']);
    assert.equal(r.code, 0, transcript(r));
    assert.match(r.stdout, /<- {2}220 mx\.example\.test ESMTP Tern ready/);
    assert.match(r.stdout, /<- {2}250-PIPELINING/);
    assert.match(r.stdout, /<- {2}250 2\.0\.0 OK: queued as [0-9A-Z]+/);
    assert.match(r.stdout, /<- {2}221 2\.0\.0 Bye/);
    const [m] = await withSubject(subject);
    assert.ok(m, 'message stored');
    assert.match(
      m.blob,
      /^Return-Path: <sender@remote\.test>\r\nDelivered-To: \S+\r\nReceived: from client\.test \(\[127\.0\.0\.1\]\)\r\n\tby mx\.example\.test \(Tern\) with ESMTP id /,
    );
    assert.match(m.blob, /\r\n\r\nplain body\r\n/);
  });

  it('sends over STARTTLS (-tls) with the self-signed certificate', async () => {
    const subject = `swaks tls ${randomUUID()}`;
    const r = await swaks(['-tls', '--to', 'alice@example.test', '--header', `Subject: ${subject}`]);
    assert.equal(r.code, 0, transcript(r));
    assert.match(r.stdout, /<- {2}250[- ]STARTTLS/);
    assert.match(r.stdout, /<- {2}220 2\.0\.0 Ready to start TLS/);
    assert.match(r.stdout, /=== TLS started with cipher /);
    // After the upgrade the server no longer offers STARTTLS.
    const afterTls = r.stdout.slice(r.stdout.indexOf('TLS started'));
    assert.doesNotMatch(afterTls, /250[- ]STARTTLS/);
    assert.match(afterTls, /<~ {2}250 2\.0\.0 OK: queued as /);
    const [m] = await withSubject(subject);
    assert.ok(m, 'message stored');
    assert.match(m.blob, /\tby mx\.example\.test \(Tern\) with ESMTPS id /);
  });

  it('sends with --pipeline, including a rejected recipient in the batch', async () => {
    const subject = `swaks pipeline ${randomUUID()}`;
    const r = await swaks(['--pipeline', '--to', 'alice@example.test,ghost@example.test,bob@example.test', '--header', `Subject: ${subject}`]);
    assert.equal(r.code, 0, transcript(r));
    assert.match(r.stdout, /<\*\* 550 5\.1\.1 <ghost@example\.test> No such user here/);
    assert.match(r.stdout, /<- {2}250 2\.0\.0 OK: queued as /);
    assert.equal((await withSubject(subject)).length, 1);
    const bob = (await storedMessages(suite.site, 'bob@example.test')).filter((m) => m.blob.includes(subject));
    assert.equal(bob.length, 1);
  });

  it('normalises bare LF lines in the body to CRLF', async () => {
    const subject = `swaks bare-lf ${randomUUID()}`;
    const file = join(work, 'bare-lf.eml');
    // -ndf sends the file as it is; swaks adds only the final CRLF after the dot.
    writeFileSync(file, `Subject: ${subject}\nFrom: sender@remote.test\n\nline one\nline two\n..dot-stuffed\r\nlast line\r\n.`);
    const r = await swaks(['--to', 'alice@example.test', '-ndf', '--data', file]);
    assert.equal(r.code, 0, transcript(r));
    const [m] = await withSubject(subject);
    assert.ok(m, 'message stored');
    assert.ok(
      m.blob.endsWith(`Subject: ${subject}\r\nFrom: sender@remote.test\r\n\r\nline one\r\nline two\r\n.dot-stuffed\r\nlast line\r\n`),
      JSON.stringify(m.blob),
    );
    assert.ok(!/[^\r]\n/.test(m.blob), 'no bare LF is stored');
  });

  it('rejects a smuggling attempt (<LF>.<LF>) and does not run the smuggled commands', async () => {
    const subject = `swaks smuggle ${randomUUID()}`;
    const smuggled = `smuggled ${randomUUID()}`;
    const file = join(work, 'smuggle.eml');
    writeFileSync(
      file,
      `Subject: ${subject}\r\n\r\nbody\n.\nMAIL FROM:<evil@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: ${smuggled}\r\n\r\nevil\r\n.`,
    );
    const before = await status(suite.site);
    const r = await swaks(['--to', 'alice@example.test', '-ndf', '--data', file]);
    assert.equal(r.code, 26, transcript(r));
    assert.match(r.stdout, /<\*\* 554 5\.5\.2 /);
    assert.match(r.stdout, /<- {2}221 2\.0\.0 Bye/);
    assert.equal((await status(suite.site)).messages, before.messages);
    assert.equal((await withSubject(smuggled)).length, 0);
  });

  it('stops after RCPT with --quit-after RCPT and stores nothing', async () => {
    const before = await status(suite.site);
    const r = await swaks(['--to', 'alice@example.test', '--quit-after', 'RCPT']);
    assert.equal(r.code, 0, transcript(r));
    assert.match(r.stdout, /<- {2}250 2\.1\.5 Recipient OK/);
    assert.doesNotMatch(r.stdout, /-> DATA/);
    assert.match(r.stdout, /-> QUIT/);
    assert.match(r.stdout, /<- {2}221 2\.0\.0 Bye/);
    assert.equal((await status(suite.site)).messages, before.messages);
  });

  it('exits 24 when no recipient is accepted (unknown user, relay attempt)', async () => {
    const unknown = await swaks(['--to', 'nobody@example.test', '--quit-after', 'RCPT']);
    assert.equal(unknown.code, 24, transcript(unknown));
    assert.match(unknown.stdout, /<\*\* 550 5\.1\.1 <nobody@example\.test> No such user here/);
    const relay = await swaks(['--to', 'someone@elsewhere.test']);
    assert.equal(relay.code, 24, transcript(relay));
    assert.match(relay.stdout, /<\*\* 554 5\.7\.1 <someone@elsewhere\.test> Relay access denied/);
    assert.doesNotMatch(relay.stdout, /-> DATA/);
  });
});
