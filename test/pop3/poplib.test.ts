/**
 * POP3 end to end against a real `tern serve`, driven by Python's poplib (Debian's
 * python3): messages are delivered over SMTP first (BDAT, so the stored bytes are exactly
 * known), then read back over plain POP3, STLS and implicit TLS (pop3s), with USER/PASS
 * and AUTH PLAIN; checks bytes, sizes, unique ids, \Seen in the store, deletion at QUIT only,
 * the failed-login log line and that bad commands leave the session usable. Each test
 * works in its own account.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { storedMessages, waitFor } from '../smtp/support.js';
import { deliver, PASSWORD, poplib, servePop3ForSuite, type PoplibMessage, type PoplibPlan } from './support.js';

const USERS = ['read', 'dele', 'tls', 'auth', 'bad', 'seen'].map((u) => `${u}@example.test`);

/** Lines starting with "." (stuffed on the wire), an 8-bit UTF-8 body with raw high bytes, and a longer body for TOP. */
const MESSAGES = [
  Buffer.from('Subject: dots\r\nFrom: a@remote.test\r\n\r\nHello\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n'),
  Buffer.concat([
    Buffer.from('Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'),
    Buffer.from('Grüße aus Köln — ✓\r\n'),
    Buffer.from([0xff, 0xfe, 0x80, 0x0d, 0x0a]),
  ]),
  Buffer.from('Subject: top\r\nX-Long: a\r\n folded\r\n\r\nline 1\r\nline 2\r\nline 3\r\n'),
];

const bytesOf = (m: unknown) => Buffer.from((m as PoplibMessage).data, 'base64');

describe('POP3 with Python poplib', () => {
  const suite = servePop3ForSuite({ users: USERS });
  const plan = (user: string, steps: PoplibPlan['steps'], more: Partial<PoplibPlan> = {}): PoplibPlan => ({
    port: suite.tern.pop3Port,
    mode: 'plain',
    user,
    password: PASSWORD,
    steps,
    ...more,
  });
  const fill = async (user: string) => {
    for (const m of MESSAGES) await deliver(suite.tern.smtpPort, user, m);
    return storedMessages(suite.site, user);
  };

  it('USER/PASS, STAT, LIST, UIDL, TOP and RETR return exactly what was stored', async () => {
    const user = 'read@example.test';
    const stored = await fill(user);
    assert.equal(stored.length, 3);
    const r = await poplib(
      plan(user, [['stat'], ['list'], ['list', 2], ['uidl'], ['uidl', 3], ['top', 3, 1], ['top', 1, 0], ['retr', 1], ['retr', 2], ['retr', 3], ['quit']]),
    );
    assert.equal(r.error, undefined, JSON.stringify(r));
    assert.equal(r.greeting, '+OK mx.example.test POP3 Tern ready');
    assert.equal(r.login, `+OK Logged in, 3 messages (${stored.reduce((n, m) => n + m.size, 0)} octets)`);
    const [stat, list, list2, uidl, uidl3, top3, top1, ...rest] = r.steps;
    assert.deepEqual(stat, [3, stored.reduce((n, m) => n + m.raw.length, 0)]);
    assert.deepEqual(
      list,
      stored.map((m, i) => `${i + 1} ${m.raw.length}`),
    );
    assert.equal(list2, `+OK 2 ${stored[1]!.size}`);
    const ids = (uidl as string[]).map((l) => l.split(' ')[1]!);
    assert.equal(new Set(ids).size, 3);
    for (const id of ids) assert.match(id, /^[\x21-\x7e]{1,70}$/);
    assert.equal(uidl3, `+OK 3 ${ids[2]}`);
    const raw3 = stored[2]!.raw.toString('latin1');
    assert.equal(bytesOf(top3).toString('latin1'), raw3.slice(0, raw3.indexOf('\r\n\r\n') + 4) + 'line 1\r\n');
    const raw1 = stored[0]!.raw.toString('latin1');
    assert.equal(bytesOf(top1).toString('latin1'), raw1.slice(0, raw1.indexOf('\r\n\r\n') + 4));
    for (let i = 0; i < 3; i++) {
      const m = rest[i] as PoplibMessage;
      assert.equal(m.resp, `+OK ${stored[i]!.size} octets`);
      assert.ok(bytesOf(m).equals(stored[i]!.raw), `message ${i + 1} comes back byte for byte`);
      assert.ok(bytesOf(m).subarray(-MESSAGES[i]!.length).equals(MESSAGES[i]!), `message ${i + 1} ends with what was delivered`);
    }
    assert.match(rest[3] as string, /^\+OK Tern POP3 server signing off \(3 messages left\)/);
    // Unique ids are the same in the next session.
    const again = await poplib(plan(user, [['uidl']]));
    assert.deepEqual(again.steps[0], uidl);
  });

  it('RETR marks \\Seen in the store (shared with IMAP); TOP does not', async () => {
    const user = 'seen@example.test';
    await fill(user);
    const r = await poplib(plan(user, [['top', 1, 0], ['retr', 2], ['quit']]));
    assert.equal(r.error, undefined, JSON.stringify(r));
    const flags = (await storedMessages(suite.site, user)).map((m) => m.flags.includes('\\Seen'));
    assert.deepEqual(flags, [false, true, false]);
  });

  it('DELE then QUIT removes; DELE then a dropped connection keeps; RSET undoes DELE', async () => {
    const user = 'dele@example.test';
    const stored = await fill(user);
    const dropped = await poplib(plan(user, [['dele', 1], ['dele', 2], ['stat'], ['drop']]));
    assert.equal(dropped.error, undefined, JSON.stringify(dropped));
    assert.deepEqual(dropped.steps.slice(0, 3), ['+OK Message 1 deleted', '+OK Message 2 deleted', [1, stored[2]!.size]]);
    const reset = await poplib(plan(user, [['stat'], ['dele', 3], ['rset'], ['stat'], ['quit']]));
    assert.equal(reset.error, undefined, JSON.stringify(reset));
    assert.deepEqual(reset.steps[0], [3, stored.reduce((n, m) => n + m.size, 0)]);
    assert.deepEqual(reset.steps[3], reset.steps[0]);
    assert.equal((await storedMessages(suite.site, user)).length, 3, 'nothing deleted without QUIT, nor after RSET');

    const quit = await poplib(plan(user, [['dele', 1], ['dele', 3], ['raw', 'DELE 3'], ['quit']]));
    assert.equal(quit.error, undefined, JSON.stringify(quit));
    assert.equal(quit.steps[2], '-ERR Message 3 already deleted');
    assert.equal(quit.steps[3], '+OK Tern POP3 server signing off (1 messages left)');
    const left = await storedMessages(suite.site, user);
    assert.deepEqual(
      left.map((m) => m.uid),
      [stored[1]!.uid],
    );
    const after = await poplib(plan(user, [['stat'], ['retr', 1]]));
    assert.deepEqual(after.steps[0], [1, stored[1]!.size]);
    assert.ok(bytesOf(after.steps[1]).equals(stored[1]!.raw));
  });

  it('STLS, then logs in and reads over TLS', async () => {
    const user = 'tls@example.test';
    const stored = await fill(user);
    const r = await poplib(plan(user, [['stat'], ['retr', 2], ['quit']], { mode: 'stls' }));
    assert.equal(r.error, undefined, JSON.stringify(r));
    assert.ok(r.capaBefore!.includes('STLS'));
    assert.equal(r.stls, '+OK Begin TLS negotiation');
    assert.ok(!r.capaAfter!.includes('STLS'));
    assert.ok(r.capaAfter!.includes('USER') && r.capaAfter!.includes('SASL'));
    assert.ok(bytesOf(r.steps[1]).equals(stored[1]!.raw));
  });

  it('serves implicit TLS on the pop3s port, without STLS', async () => {
    const user = 'tls@example.test';
    const stored = await storedMessages(suite.site, user);
    const r = await poplib(plan(user, [['raw', 'STLS'], ['retr', 1], ['quit']], { mode: 'ssl', port: suite.tern.pop3sPort }));
    assert.equal(r.error, undefined, JSON.stringify(r));
    assert.equal(r.steps[0], '-ERR STLS is not allowed after login');
    assert.ok(bytesOf(r.steps[1]).equals(stored[0]!.raw));
  });

  it('AUTH PLAIN, with an initial response and after the "+ " continuation', async () => {
    const user = 'auth@example.test';
    await deliver(suite.tern.smtpPort, user, MESSAGES[0]!);
    const r1 = await poplib(plan(user, [['stat'], ['quit']], { auth: 'plain' }));
    assert.equal(r1.error, undefined, JSON.stringify(r1));
    assert.match(r1.login!, /^\+OK Logged in, 1 messages/);
    const r2 = await poplib(plan(user, [['stat'], ['quit']], { auth: 'plain-continue', mode: 'ssl', port: suite.tern.pop3sPort }));
    assert.equal(r2.error, undefined, JSON.stringify(r2));
    assert.equal(r2.continue, '+ ');
    assert.match(r2.login!, /^\+OK Logged in, 1 messages/);
    const bad = await poplib(plan(user, [], { auth: 'plain', password: 'wrong password' }));
    assert.equal(bad.error, '-ERR [AUTH] Invalid user name or password');
  });

  it('refuses a wrong password and logs the failure with the client address', async () => {
    const r = await poplib(plan('bad@example.test', [], { password: 'not the password' }));
    assert.equal(r.error, '-ERR [AUTH] Invalid user name or password');
    await waitFor(
      () => /"protocol":"pop3","ip":"127\.0\.0\.1","user":"bad@example\.test","msg":"login failed"/.test(suite.tern.output()),
      'login failure logged',
    );
  });

  it('answers bad commands with -ERR and keeps the session', async () => {
    const user = 'bad@example.test';
    await deliver(suite.tern.smtpPort, user, MESSAGES[2]!);
    const r = await poplib(
      plan(user, [
        ['raw', 'FROB'],
        ['raw', 'RETR'],
        ['raw', 'RETR 99'],
        ['raw', 'TOP 1 x'],
        ['raw', 'USER again'],
        ['raw', 'x'.repeat(3000)],
        ['stat'],
        ['quit'],
      ]),
    );
    assert.equal(r.error, undefined, JSON.stringify(r));
    assert.deepEqual(r.steps.slice(0, 6), [
      '-ERR Unknown command',
      '-ERR RETR needs one message number',
      '-ERR No such message',
      '-ERR TOP needs a non-negative line count',
      '-ERR USER is not allowed after login',
      '-ERR Line too long',
    ]);
    assert.equal((r.steps[6] as number[])[0], 1);
  });
});
