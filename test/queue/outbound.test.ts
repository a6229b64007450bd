/**
 * Sending, end to end over real sockets: nodemailer submits to `tern serve` (submission
 * with AUTH), the queue worker looks destinations up in a DNS server the test runs and
 * delivers to smtp-server sinks on 127.0.0.x. Covers delivery with local copies in the
 * same message, connection reuse, 4xx then success on retry, 5xx and null MX producing a
 * bounce, an unreachable host, the sender rules of submission, `tern send`, and a
 * smarthost with AUTH.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { ImapFlow } from 'imapflow';
import { openSession } from '../helpers/raw-smtp.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { cli, createSite, freePort, startTern, status, type Site, type TernServer } from '../helpers/tern.js';

const PASSWORD = 'password123';

/** Polls `check` until it returns a value (not undefined) or the time is up. */
async function eventually<T>(what: string, check: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface Trace {
  ternId: string;
  recipient: string;
  event: string;
  reply: string | null;
}

describe('outbound: submission, queue and delivery', { timeout: 180_000 }, () => {
  let dns: TestDnsServer;
  let sink: SmtpSink;
  let sink2: SmtpSink;
  let site: Site;
  let tern: TernServer;
  let submissionPort: number;
  let imapPort: number;
  let mxPort: number;

  const transport = (user = 'alice@example.test', pass = PASSWORD) =>
    nodemailer.createTransport({ host: '127.0.0.1', port: submissionPort, secure: false, auth: { user, pass }, tls: { rejectUnauthorized: false } });
  const trace = async (key: string) => JSON.parse(await cli(['queue', 'trace', key, '--json', ...site.args])) as Trace[];
  const queued = async () =>
    JSON.parse(await cli(['queue', 'list', '--json', ...site.args])) as Array<{
      id: number;
      domain: string;
      attempts: number;
      recipients: Array<{ reply: string | null }>;
    }>;
  const inbox = async (address: string) => (await status(site)).accounts.find((a) => a.address === address)!.messages;

  before(async () => {
    mxPort = await freePort();
    sink = await startSmtpSink({ host: '127.0.0.2', port: mxPort });
    // The second sink does not offer DSN: Tern tells senders who asked that their mail was relayed.
    sink2 = await startSmtpSink({ host: '127.0.0.3', port: mxPort, hideDsn: true });
    dns = await startDnsServer([
      { type: 'MX', name: 'dest.test', exchange: 'mx1.dest.test', priority: 10 },
      { type: 'A', name: 'mx1.dest.test', address: '127.0.0.2' },
      { type: 'MX', name: 'reuse.test', exchange: 'mx1.dest.test', priority: 10 },
      { type: 'MX', name: 'paused.test', exchange: 'mx1.dest.test', priority: 10 },
      { type: 'MX', name: 'limited.test', exchange: 'mx1.dest.test', priority: 10 },
      // Two domains on one rate-limited MX host.
      { type: 'MX', name: 'hosted1.test', exchange: 'mx.hosted.test', priority: 10 },
      { type: 'MX', name: 'hosted2.test', exchange: 'mx.hosted.test', priority: 10 },
      { type: 'A', name: 'mx.hosted.test', address: '127.0.0.3' },
      // The preferred MX refuses connections: the next one gets the mail.
      { type: 'MX', name: 'backup.test', exchange: 'dead.backup.test', priority: 5 },
      { type: 'MX', name: 'backup.test', exchange: 'live.backup.test', priority: 20 },
      { type: 'A', name: 'dead.backup.test', address: '127.0.0.9' },
      { type: 'A', name: 'live.backup.test', address: '127.0.0.3' },
      // No MX: the domain's own address.
      { type: 'A', name: 'direct.test', address: '127.0.0.3' },
      { type: 'MX', name: 'nullmx.test', exchange: '.', priority: 0 },
      { type: 'MX', name: 'down.test', exchange: 'mx.down.test', priority: 10 },
      { type: 'A', name: 'mx.down.test', address: '127.0.0.9' },
    ]);
    site = await createSite();
    // A per-domain route: routed.test has no DNS records at all; its mail goes to the second sink.
    await cli(['route', 'add', 'routed.test', `127.0.0.3:${mxPort}`, ...site.args]);
    await cli(['queue', 'rate', 'limited.test', '2', ...site.args]);
    await cli(['queue', 'rate', 'mx.hosted.test', '2', ...site.args]);
    submissionPort = await freePort();
    imapPort = await freePort();
    tern = await startTern(site, [
      '--submission-port',
      String(submissionPort),
      '--imap-port',
      String(imapPort),
      '--dns-server',
      dns.address,
      '--mx-port',
      String(mxPort),
      '--retry-delay',
      '1s',
      '--retry-max',
      '2s',
      '--connect-timeout',
      '3s',
      '--destination-concurrency',
      '2',
    ]);
  });

  after(async () => {
    await tern?.stop();
    await Promise.all([sink?.close(), sink2?.close(), dns?.close()]);
  });

  it('submits over AUTH, delivers the remote copy through the MX and the local one at once, adding Message-ID and Date', async () => {
    const before = sink.messages.length;
    const info = await transport().sendMail({
      envelope: { from: 'alice@example.test', to: ['ok@dest.test', 'bob@example.test'] },
      raw: 'From: Alice <alice@example.test>\r\nTo: ok@dest.test, bob@example.test\r\nSubject: hello out there\r\n\r\nHi!\r\n',
    });
    assert.match(info.response, /^250 2\.0\.0 OK: queued as /);
    const [msg] = (await sink.waitFor(before + 1)).slice(before);
    assert.equal(msg!.from, 'alice@example.test');
    assert.deepEqual(msg!.to, ['ok@dest.test']);
    assert.ok(msg!.secure, 'opportunistic STARTTLS was used');
    const text = msg!.data.toString();
    // Signed with the sender domain's key (made by `tern domain add`), above the hop's Received line.
    assert.match(
      text,
      /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.test;[^]*?\r\nReceived: from [^\r\n]+\r\n\tby [^ ]+ \(Tern\) with ESMTPS?A id /,
    );
    assert.match(text, /\r\nDate: /);
    assert.match(text, /\r\nMessage-ID: <[0-9A-Z]+@mx\.example\.test>\r\n/);
    assert.match(text, /\r\nSubject: hello out there\r\n\r\nHi!\r\n$/);
    assert.equal(await inbox('bob@example.test'), 1);
    const ternId = /queued as (\S+)/.exec(info.response)![1]!;
    const events = await eventually('the delivered event', async () => {
      const e = await trace(ternId);
      return e.some((x) => x.event === 'delivered') ? e : undefined;
    });
    // The local copy is traced too, first: it is stored before the remote recipients are queued.
    assert.deepEqual(
      events.map((e) => [e.recipient, e.event, e.event === 'stored' ? e.reply : '']),
      [
        ['bob@example.test', 'stored', 'INBOX'],
        ['ok@dest.test', 'queued', ''],
        ['ok@dest.test', 'delivered', ''],
      ],
    );
    assert.match(events[2]!.reply!, /^250/);
    assert.deepEqual(await queued(), []);
  });

  it('tries the next MX when the preferred one cannot be reached, the domain itself without an MX, and a route before DNS', async () => {
    const before = sink2.messages.length;
    await transport().sendMail({ from: 'alice@example.test', to: 'x@backup.test', subject: 'backup', text: 'via the backup MX' });
    await transport().sendMail({ from: 'alice@example.test', to: 'y@direct.test', subject: 'direct', text: 'no MX at all' });
    await transport().sendMail({ from: 'alice@example.test', to: 'z@routed.test', subject: 'routed', text: 'by its route' });
    const got = (await sink2.waitFor(before + 3)).slice(before);
    assert.deepEqual(got.map((m) => m.to[0]).sort(), ['x@backup.test', 'y@direct.test', 'z@routed.test']);
    assert.ok(!dns.queries.some((q) => q.endsWith(' routed.test')), 'a routed domain is not looked up');
    assert.deepEqual(JSON.parse(await cli(['route', 'list', '--json', ...site.args])), [{ domain: 'routed.test', target: `127.0.0.3:${mxPort}` }]);
  });

  it('carries several queued messages for one destination over its few connections', async () => {
    // The destination's DNS fails at first, so the messages wait in the queue; then they are all made due at once.
    dns.failing.add('reuse.test');
    const transportOnce = transport();
    for (let i = 0; i < 6; i++)
      await transportOnce.sendMail({ from: 'alice@example.test', to: `r${i}@reuse.test`, subject: `reuse ${i}`, text: 'one connection' });
    await eventually('six deferred messages', async () =>
      (await queued()).filter((e) => e.domain === 'reuse.test' && e.attempts >= 1).length === 6 ? true : undefined,
    );
    assert.equal(await cli(['queue', 'hold', '--domain', 'reuse.test', ...site.args]), '6 entries held\n');
    dns.failing.delete('reuse.test');
    const before = sink.messages.length;
    const connections = sink.connections;
    assert.equal(await cli(['queue', 'retry', '--domain', 'reuse.test', ...site.args]), '6 entries made due\n');
    await sink.waitFor(before + 6);
    // --destination-concurrency 2: two connections carry all six.
    assert.ok(sink.connections - connections <= 2, `${sink.connections - connections} connections for 6 messages`);
  });

  it('pauses and resumes a destination, and keeps to a destination’s rate limit', async () => {
    assert.match(await cli(['queue', 'pause', 'paused.test', ...site.args]), /^paused: paused\.test/);
    assert.match(await cli(['queue', 'pause', ...site.args]), /^paused\.test since /);
    await new Promise((r) => setTimeout(r, 5500)); // the worker reads pauses every 5 s
    const before = sink.messages.length;
    await transport().sendMail({ from: 'alice@example.test', to: 'p@paused.test', subject: 'paused', text: 'waits' });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(sink.messages.length, before, 'nothing goes to a paused destination');
    assert.deepEqual(
      (await queued()).filter((e) => e.domain === 'paused.test').map((e) => e.attempts),
      [0],
    );
    assert.equal(await cli(['queue', 'resume', 'paused.test', ...site.args]), 'resumed: paused.test\n');
    assert.equal((await sink.waitFor(before + 1)).at(-1)!.to[0], 'p@paused.test');

    // limited.test: 2 a minute. Four messages: two go now, two wait for the next minute.
    const sent = sink.messages.length;
    for (let i = 0; i < 4; i++) await transport().sendMail({ from: 'alice@example.test', to: `l${i}@limited.test`, subject: `limited ${i}`, text: 'slowly' });
    await sink.waitFor(sent + 2);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(sink.messages.length, sent + 2, 'two in the first minute');
    // Not claimed while the minute is full (or handed back if they were): no attempt is counted.
    assert.deepEqual(
      (await queued()).filter((e) => e.domain === 'limited.test').map((e) => e.attempts),
      [0, 0],
    );
    await cli(['queue', 'delete', '--domain', 'limited.test', ...site.args]);

    // mx.hosted.test: 2 a minute over both domains it serves.
    const sent2 = sink2.messages.length;
    for (const to of ['a@hosted1.test', 'b@hosted2.test', 'c@hosted1.test', 'd@hosted2.test'])
      await transport().sendMail({ from: 'alice@example.test', to, subject: `hosted ${to}`, text: 'slowly' });
    await sink2.waitFor(sent2 + 2);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(sink2.messages.length, sent2 + 2, 'two in the first minute, whichever domain');
    assert.deepEqual(
      (await queued()).filter((e) => e.domain.startsWith('hosted')).map((e) => e.attempts),
      [0, 0],
    );
    await cli(['queue', 'delete', '--domain', 'hosted1.test', ...site.args]);
    await cli(['queue', 'delete', '--domain', 'hosted2.test', ...site.args]);
  });

  it('defers on 4xx and delivers on a later attempt', async () => {
    sink.rcpt = (address, attempt) => (address === 'soft@dest.test' && attempt === 1 ? { code: 451, message: '4.3.0 Try again later' } : null);
    const before = sink.messages.length;
    const info = await transport().sendMail({ from: 'alice@example.test', to: 'soft@dest.test', subject: 'retry', text: 'second time lucky' });
    const ternId = /queued as (\S+)/.exec(info.response)![1]!;
    await sink.waitFor(before + 1);
    const events = await trace(ternId);
    assert.deepEqual(
      events.map((e) => e.event),
      ['queued', 'deferred', 'delivered'],
    );
    assert.match(events[1]!.reply!, /^451 4\.3\.0 Try again later/);
    sink.rcpt = () => null;
  });

  it('bounces a 5xx to the sender with an RFC 3464 report and the original headers', async () => {
    sink.rcpt = (address) => (address === 'nobody@dest.test' ? { code: 550, message: '5.1.1 No such user here' } : null);
    const mine = await inbox('alice@example.test');
    const info = await transport().sendMail({ from: 'alice@example.test', to: 'nobody@dest.test', subject: 'to nobody', text: 'will bounce' });
    const ternId = /queued as (\S+)/.exec(info.response)![1]!;
    await eventually('the bounce in alice’s INBOX', async () => ((await inbox('alice@example.test')) > mine ? true : undefined));
    const events = await trace(ternId);
    assert.deepEqual(
      events.map((e) => e.event),
      ['queued', 'failed', 'bounced'],
    );
    const bounce = await cli(['queue', 'trace', 'alice@example.test', ...site.args]);
    assert.doesNotMatch(bounce, /queued/, 'a local bounce is not queued');
    const fetched = await fetchLast(imapPort, 'alice@example.test');
    assert.match(fetched, /^Return-Path: <>\r\n/);
    assert.match(fetched, /Content-Type: multipart\/report; report-type=delivery-status;/);
    assert.match(
      fetched,
      /Final-Recipient: rfc822; nobody@dest\.test\r\nAction: failed\r\nStatus: 5\.1\.1\r\nDiagnostic-Code: smtp; 550 5\.1\.1 No such user here/,
    );
    assert.match(fetched, /Content-Type: text\/rfc822-headers[\s\S]*Subject: to nobody\r\n/);
    assert.doesNotMatch(fetched, /will bounce/, 'headers only without RET=FULL');
    sink.rcpt = () => null;
  });

  it('fails a null-MX domain at once, and keeps retrying an unreachable host', async () => {
    const mine = await inbox('alice@example.test');
    await transport().sendMail({ from: 'alice@example.test', to: 'someone@nullmx.test', subject: 'null mx', text: 'no mail here' });
    await eventually('the null MX bounce', async () => ((await inbox('alice@example.test')) > mine ? true : undefined));
    assert.match(
      await fetchLast(imapPort, 'alice@example.test'),
      /Status: 5\.1\.10\r\nDiagnostic-Code: smtp; 556 5\.1\.10 nullmx\.test does not accept mail \(null MX\)/,
    );

    await transport().sendMail({ from: 'alice@example.test', to: 'someone@down.test', subject: 'down', text: 'nobody home' });
    const entry = await eventually('a deferred attempt', async () => (await queued()).find((e) => e.domain === 'down.test' && e.attempts >= 1));
    assert.match(entry.recipients[0]!.reply!, /^451 4\.4\.1 .*127\.0\.0\.9/);
    assert.equal(await cli(['queue', 'delete', '--domain', 'down.test', ...site.args]), '1 entry deleted\n');
    assert.equal(await inbox('alice@example.test'), mine + 1, 'deleting bounces nothing');
  });

  it('honours DSN requests: NOTIFY and ORCPT passed on, success notices, NOTIFY=NEVER, RET=FULL and ENVID in a bounce', async () => {
    const mine = await inbox('alice@example.test');
    const sent = sink.messages.length;
    const sent2 = sink2.messages.length;
    sink.rcpt = (address) => (address === 'gone@dest.test' || address === 'quiet@dest.test' ? { code: 550, message: '5.1.1 No such user here' } : null);
    const dsnMail = (to: string, dsn: Record<string, unknown>, text = 'dsn test') =>
      transport().sendMail({ from: 'alice@example.test', to, subject: `dsn ${to}`, text, dsn });
    // A DSN-capable next hop gets the parameters and reports itself: no notice from Tern.
    await dsnMail('ok2@dest.test', { notify: ['success', 'failure'], recipient: 'orig@dest.test' });
    const passed = (await sink.waitFor(sent + 1)).at(-1)!;
    assert.deepEqual(passed.rcptArgs[0], { NOTIFY: 'SUCCESS,FAILURE', ORCPT: 'rfc822;orig@dest.test' });
    // A next hop without DSN: the sender hears that the message was relayed.
    await dsnMail('y2@direct.test', { notify: ['success'] });
    await sink2.waitFor(sent2 + 1);
    // A local recipient: the sender hears that it was delivered.
    await dsnMail('bob@example.test', { notify: ['success'] });
    // NOTIFY=NEVER: a failure, and no bounce.
    await dsnMail('quiet@dest.test', { notify: ['never'] });
    // RET=FULL and ENVID: the bounce carries the whole message and the envelope id.
    await dsnMail('gone@dest.test', { ret: 'full', id: 'env-42', notify: ['failure'], recipient: 'first@dest.test' }, 'the whole body comes back');
    const notices = await eventually('three notices', async () => ((await inbox('alice@example.test')) >= mine + 3 ? true : undefined));
    assert.ok(notices);
    const all = await fetchAll(imapPort, 'alice@example.test');
    const latest = all.slice(-3);
    assert.equal(await inbox('alice@example.test'), mine + 3, 'no notice for NOTIFY=NEVER');
    const relayed = latest.find((m) => /Final-Recipient: rfc822; y2@direct\.test/.test(m));
    assert.match(relayed!, /Subject: Successful Mail Delivery Report[\s\S]*Action: relayed\r\nStatus: 2\.0\.0/);
    const delivered = latest.find((m) => /Final-Recipient: rfc822; bob@example\.test/.test(m));
    assert.match(delivered!, /Action: delivered\r\nStatus: 2\.0\.0/);
    const bounce = latest.find((m) => /Final-Recipient: rfc822; gone@dest\.test/.test(m));
    assert.match(bounce!, /Original-Envelope-Id: env-42\r\n/);
    assert.match(bounce!, /Original-Recipient: rfc822;first@dest\.test\r\nAction: failed\r\nStatus: 5\.1\.1/);
    assert.match(bounce!, /Content-Type: message\/rfc822[\s\S]*the whole body comes back/);
    sink.rcpt = () => null;
  });

  it('refuses relaying without AUTH and sending as another account', async () => {
    const session = await openSession(submissionPort);
    try {
      const ehlo = await session.command('EHLO again.test');
      assert.ok(
        ehlo.lines.some((l) => /AUTH PLAIN LOGIN/.test(l)),
        ehlo.text,
      );
      const mail = await session.command('MAIL FROM:<alice@example.test>');
      assert.equal(mail.code, 530);
      assert.match(mail.text, /5\.7\.0 Authentication required/);
      const rcpt = await session.command('RCPT TO:<x@dest.test>');
      assert.equal(rcpt.code, 503);
    } finally {
      session.close();
    }
    await assert.rejects(
      transport().sendMail({ from: 'bob@example.test', to: 'x@dest.test', subject: 'spoof', text: 'not mine' }),
      (err: Error & { responseCode?: number; response?: string }) =>
        err.responseCode === 553 && /5\.7\.1 <bob@example\.test> Sender address not owned/.test(err.response ?? ''),
    );
    await assert.rejects(
      transport().sendMail({ envelope: { from: 'alice@example.test', to: ['x@dest.test'] }, raw: 'From: bob@example.test\r\nSubject: spoof\r\n\r\nbody\r\n' }),
      (err: Error & { responseCode?: number }) => err.responseCode === 553,
    );
    await assert.rejects(transport('alice@example.test', 'wrong password').verify(), (err: Error & { responseCode?: number }) => err.responseCode === 535);
    // An alias that delivers to alice is hers to send as.
    await cli(['alias', 'add', 'sales@example.test', 'alice@example.test', ...site.args]);
    const before = sink.messages.length;
    await transport().sendMail({ from: 'sales@example.test', to: 'customer@dest.test', subject: 'offer', text: 'from the alias' });
    assert.equal((await sink.waitFor(before + 1)).at(-1)!.from, 'sales@example.test');
  });

  it('sends from the command line: `tern send`', async () => {
    const before = sink.messages.length;
    const out = await cli([
      'send',
      '--from',
      'alice@example.test',
      '--to',
      'cli@dest.test,bob@example.test',
      '--subject',
      'from the CLI',
      '--text',
      'line one\nline two',
      ...site.args,
    ]);
    assert.match(out, /^message \S+: 1 delivered locally, 1 queued\n$/);
    const msg = (await sink.waitFor(before + 1)).at(-1)!;
    assert.match(msg.data.toString(), /Subject: from the CLI\r\n[\s\S]*\r\n\r\nline one\r\nline two\r\n$/);
  });
});

/** Every message in the account's INBOX, oldest first, over IMAP. */
async function fetchAll(imapPort: number, address: string): Promise<string[]> {
  const client = new ImapFlow({
    host: '127.0.0.1',
    port: imapPort,
    secure: false,
    auth: { user: address, pass: PASSWORD },
    logger: false,
    tls: { rejectUnauthorized: false },
  });
  await client.connect();
  try {
    const lock = await client.getMailboxLock('INBOX');
    try {
      const out: string[] = [];
      for await (const msg of client.fetch('1:*', { source: true })) out.push(msg.source!.toString());
      return out;
    } finally {
      lock.release();
    }
  } finally {
    await client.logout();
  }
}

/** The newest message in the account's INBOX, over IMAP. */
async function fetchLast(imapPort: number, address: string): Promise<string> {
  const last = (await fetchAll(imapPort, address)).at(-1);
  assert.ok(last, 'the INBOX has a message');
  return last;
}

describe('outbound: smarthost with AUTH', { timeout: 60_000 }, () => {
  let relay: SmtpSink;
  let site: Site;
  let tern: TernServer;

  before(async () => {
    relay = await startSmtpSink({ auth: { user: 'relayuser', pass: 'relaypass' } });
    site = await createSite();
    tern = await startTern(site, ['--smarthost', `127.0.0.1:${relay.port}`, '--smarthost-user', 'relayuser', '--dns-server', '127.0.0.1:9'], {
      TERN_SMARTHOST_PASSWORD: 'relaypass',
    });
  });
  after(async () => {
    await tern?.stop();
    await relay?.close();
  });

  it('hands every remote message to the smarthost, authenticated', async () => {
    await cli(['send', '--from', 'alice@example.test', '--to', 'far@away.example', '--subject', 'via relay', '--text', 'hi', ...site.args]);
    const [msg] = await relay.waitFor(1);
    assert.equal(msg!.user, 'relayuser');
    assert.deepEqual(msg!.to, ['far@away.example']);
  });
});

describe('outbound: delay notices (RFC 3461 DELAY)', { timeout: 60_000 }, () => {
  let slow: SmtpSink;
  let site: Site;
  let tern: TernServer;
  let submissionPort: number;
  let imapPort: number;

  before(async () => {
    slow = await startSmtpSink();
    slow.rcpt = () => ({ code: 451, message: '4.3.2 Try again later' });
    site = await createSite();
    submissionPort = await freePort();
    imapPort = await freePort();
    tern = await startTern(site, [
      '--smarthost',
      `127.0.0.1:${slow.port}`,
      '--dns-server',
      '127.0.0.1:9',
      '--submission-port',
      String(submissionPort),
      '--imap-port',
      String(imapPort),
      '--retry-delay',
      '1s',
      '--retry-max',
      '1s',
      '--delay-warning',
      '2s',
    ]);
  });
  after(async () => {
    await tern?.stop();
    await slow?.close();
  });

  it('tells the sender once that a message is still being retried, only for recipients that want it', async () => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: submissionPort,
      auth: { user: 'alice@example.test', pass: PASSWORD },
      tls: { rejectUnauthorized: false },
    });
    // The default NOTIFY (taken as FAILURE,DELAY) and an explicit DELAY get a notice; FAILURE alone does not.
    await transport.sendMail({ from: 'alice@example.test', to: 'default@far.test', subject: 'waits', text: 'x' });
    await transport.sendMail({ from: 'alice@example.test', to: 'asked@far.test', subject: 'waits too', text: 'x', dsn: { notify: ['DELAY', 'FAILURE'] } });
    await transport.sendMail({ from: 'alice@example.test', to: 'quiet@far.test', subject: 'waits quietly', text: 'x', dsn: { notify: ['FAILURE'] } });
    const notices = await eventually('two delay notices', async () => {
      const all = await fetchAll(imapPort, 'alice@example.test');
      return all.length >= 2 ? all : undefined;
    });
    // Two more attempts of every message after the notices: still one notice per message.
    const queue = JSON.parse(await cli(['queue', 'list', '--json', ...site.args])) as Array<{ attempts: number }>;
    await eventually('more attempts after the notices', async () => {
      const now = JSON.parse(await cli(['queue', 'list', '--json', ...site.args])) as Array<{ attempts: number }>;
      return now.every((e, i) => e.attempts >= (queue[i]?.attempts ?? 0) + 2) ? true : undefined;
    });
    const after = await fetchAll(imapPort, 'alice@example.test');
    assert.equal(after.length, 2, 'one notice per message, however many attempts');
    const recipients = notices.map((n) => /Final-Recipient: rfc822; (\S+)/.exec(n)![1]).sort();
    assert.deepEqual(recipients, ['asked@far.test', 'default@far.test']);
    for (const n of notices) {
      assert.match(n, /^Subject: Delayed Mail \(still being retried\)\r$/m);
      assert.match(n, /Content-Type: multipart\/report; report-type=delivery-status/);
      assert.match(n, /^Action: delayed\r$/m);
      assert.match(n, /^Status: 4\.3\.2\r$/m);
      assert.match(n, /^Diagnostic-Code: smtp; 451 4\.3\.2 Try again later/m);
      assert.match(n, /^Will-Retry-Until: /m);
    }
  });
});

describe('outbound: warm-up of a new sending domain', { timeout: 60_000 }, () => {
  let sink: SmtpSink;
  let site: Site;
  let tern: TernServer;

  before(async () => {
    sink = await startSmtpSink();
    site = await createSite();
    await cli(['queue', 'warmup', 'example.test', '--schedule', '3,5', ...site.args]);
    tern = await startTern(site, ['--smarthost', `127.0.0.1:${sink.port}`, '--dns-server', '127.0.0.1:9']);
  });
  after(async () => {
    await tern?.stop();
    await sink?.close();
  });

  it("sends no more than the day's limit; the rest waits for the next day, then goes", async () => {
    for (let i = 0; i < 5; i++)
      await cli(['send', '--from', 'alice@example.test', '--to', `r${i}@far.test`, '--subject', `warm ${i}`, '--text', 'x', ...site.args]);
    await sink.waitFor(3);
    const waiting = await eventually('two messages handed back to the queue', async () => {
      const list = JSON.parse(await cli(['queue', 'list', '--json', ...site.args])) as Array<{ attempts: number; nextAttemptAt: string }>;
      return list.length === 2 && list.every((e) => e.nextAttemptAt.endsWith('T00:00:00.000Z')) ? list : undefined;
    });
    assert.ok(
      waiting.every((e) => e.attempts === 0),
      'no attempt counted',
    );
    assert.ok(
      waiting.every((e) => new Date(e.nextAttemptAt).getTime() > Date.now()),
      'due tomorrow (UTC)',
    );
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(sink.messages.length, 3);
    assert.match(await cli(['queue', 'warmup', ...site.args]), /^example\.test\s+\d{4}-\d{2}-\d{2} 3,5\s+day 1 of 2\s+3\/3$/m);

    // The schedule moved back a day: today is day 2, five allowed (counted per UTC day: the 3 sent today count), the two waiting ones go.
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    await cli(['queue', 'warmup', 'example.test', '--schedule', '3,5', '--start', yesterday, ...site.args]);
    await new Promise((r) => setTimeout(r, 5500)); // the worker reads settings every 5 s
    await cli(['queue', 'retry', '--all', ...site.args]);
    await sink.waitFor(5);
    assert.match(await cli(['queue', 'warmup', ...site.args]), /day 2 of 2\s+5\/5$/m);
    assert.match(await cli(['queue', 'warmup', 'example.test', 'off', ...site.args]), /warm-up off/);
    assert.match(await cli(['queue', 'warmup', ...site.args]), /no sending domain is warming up/);
  });
});
