/**
 * The spam-filter hook against a real rspamd (Debian's, started by the test on loopback
 * ports): GTUBE is refused with 550 5.7.1, a message rspamd marks "add header" goes to Junk
 * with X-Spam headers, a clean one to INBOX with its score; trusted clients are not
 * filtered; an rspamd that is gone lets mail through. Skipped, with the reason, when
 * rspamd is not installed (the test runner installs it as root).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openStore } from '../../src/store/open.js';
import { collect } from '../../src/store/store.js';
import { openSession } from '../helpers/raw-smtp.js';
import { rspamdInstalled, startRspamd, type TestRspamd } from '../helpers/rspamd.js';
import { createSite, freePort, startTern, type Site, type TernServer } from '../helpers/tern.js';

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const complete = (subject: string, body: string) =>
  `From: <news@sender.test>\r\nTo: <alice@example.test>\r\nSubject: ${subject}\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@sender.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n`;

describe('spam filter (rspamd)', { timeout: 120_000, skip: rspamdInstalled() ? false : 'rspamd is not installed (apt-get install rspamd)' }, () => {
  let rspamd: TestRspamd;
  let site: Site;
  let tern: TernServer;
  let httpPort: number;

  before(async () => {
    rspamd = await startRspamd();
    site = await createSite();
    httpPort = await freePort();
    tern = await startTern(site, ['--trusted-networks', 'none', '--dns-server', '127.0.0.1:9', '--rspamd', rspamd.url, '--http-port', String(httpPort)]);
  });
  after(async () => {
    await tern?.stop();
    await rspamd?.stop();
  });

  async function send(message: string, port = tern.smtpPort) {
    const c = await openSession(port, 'EHLO sender.test');
    try {
      await c.command('MAIL FROM:<news@sender.test>');
      assert.equal((await c.command('RCPT TO:<alice@example.test>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      c.send(`${message}.\r\n`);
      return await c.read();
    } finally {
      c.close();
    }
  }
  async function stored(mailbox: string, subject: string): Promise<string | null> {
    const store = await openStore({ dataDir: site.dataDir });
    try {
      for (const m of await store.mailboxes.messagesOf('alice@example.test', mailbox)) {
        const text = (await collect(store.mailboxes.read(m.id))).toString('latin1');
        if (text.includes(`\r\nSubject: ${subject}\r\n`)) return text;
      }
      return null;
    } finally {
      await store.close();
    }
  }

  it('refuses what rspamd rejects', async () => {
    const r = await send(complete('Cheap pills', GTUBE));
    assert.equal(r.code, 550);
    assert.match(r.text, /5\.7\.1 Message rejected as spam/);
    assert.equal(await stored('INBOX', 'Cheap pills'), null);
  });

  it('sends what rspamd marks to Junk, with its verdict in the headers', async () => {
    // No Date and no Message-ID: rspamd adds 3.5, past this instance's add_header of 2.5.
    const r = await send('From: <news@sender.test>\r\nTo: <alice@example.test>\r\nSubject: Sloppy bulk\r\n\r\nBuy now.\r\n');
    assert.equal(r.code, 250, r.text);
    assert.equal(await stored('INBOX', 'Sloppy bulk'), null);
    const text = (await stored('Junk', 'Sloppy bulk'))!;
    assert.match(text, /^X-Spam-Score: 3\.\d\d \/ 1000\.00\r\nX-Spam-Action: add header\r\nX-Spam: Yes\r\n/m);
  });

  it('delivers a clean message to INBOX with its score', async () => {
    const r = await send(complete('Meeting notes', 'Hello, here are the notes from today.'));
    assert.equal(r.code, 250, r.text);
    const text = (await stored('INBOX', 'Meeting notes'))!;
    assert.match(text, /^X-Spam-Action: no action\r\n/m);
    assert.doesNotMatch(text, /^X-Spam: Yes/m);
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    assert.match(metrics, /^tern_spam_verdicts_total\{action="reject"\} 1$/m);
    assert.match(metrics, /^tern_spam_verdicts_total\{action="add header"\} 1$/m);
  });

  it('does not filter trusted clients, and lets mail through when rspamd is gone', async () => {
    const trusted = await startTern(site, ['--rspamd', rspamd.url]);
    try {
      assert.equal((await send(complete('Trusted GTUBE', GTUBE), trusted.smtpPort)).code, 250);
      assert.doesNotMatch((await stored('INBOX', 'Trusted GTUBE'))!, /X-Spam/);
    } finally {
      await trusted.stop();
    }
    const gone = await startTern(site, ['--trusted-networks', 'none', '--dns-server', '127.0.0.1:9', '--rspamd', 'http://127.0.0.1:9']);
    try {
      assert.equal((await send(complete('Filter down', GTUBE), gone.smtpPort)).code, 250);
      assert.doesNotMatch((await stored('INBOX', 'Filter down'))!, /X-Spam/);
    } finally {
      await gone.stop();
    }
  });
});
