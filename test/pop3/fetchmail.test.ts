/**
 * POP3 with Debian's fetchmail, a real mail retrieval client: over STLS (the self-signed
 * certificate accepted with `no sslcertck`) keeping the mail, and in clear text from
 * loopback with `--nokeep`, which must empty the mailbox. Each message goes to an MDA
 * (`cat` into one file per message), so no local MTA is needed; the files must hold what
 * the store holds, plus the Received line fetchmail adds.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { tempDir } from '../helpers/tern.js';
import { runProgram, storedMessages, type ProgramResult } from '../smtp/support.js';
import { deliver, PASSWORD, servePop3ForSuite } from './support.js';

const FETCHMAIL = '/usr/bin/fetchmail';

const MESSAGES = [
  Buffer.from('Subject: fetchmail dots\r\nFrom: a@remote.test\r\n\r\n.leading dot\r\n..two\r\n.\r\nlast\r\n'),
  Buffer.concat([Buffer.from('Subject: fetchmail 8bit\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße — ✓\r\n'), Buffer.from([0xe9, 0xff, 0x0d, 0x0a])]),
  Buffer.from(`Subject: fetchmail big\r\n\r\n${'0123456789abcdef'.repeat(8).concat('\r\n').repeat(20_000)}`),
];

/** A message's header fields without the one fetchmail adds ("Received: … with POP3 (fetchmail-…)"), LF line ends. */
function withoutFetchmailReceived(message: string): string {
  const end = message.indexOf('\n\n');
  const fields = message.slice(0, end + 1).split(/\n(?![ \t])/);
  return fields.filter((f) => !/^Received:[^]*\(fetchmail-/.test(f)).join('\n') + message.slice(end + 1);
}

describe('POP3 with fetchmail', () => {
  let work: string;
  before(() => {
    if (!existsSync(FETCHMAIL))
      throw new Error(`fetchmail is not installed at ${FETCHMAIL}: these tests need Debian's fetchmail package (apt-get install fetchmail)`);
    work = tempDir('tern-fetchmail-');
  });
  const suite = servePop3ForSuite({ users: ['fm-tls@example.test', 'fm-nokeep@example.test'] });

  /** Runs fetchmail once with an rc file (it wants the password there, mode 0600); messages land in `dir`. */
  const fetchmail = async (name: string, user: string, options: string): Promise<{ result: ProgramResult; files: string[] }> => {
    const dir = tempDir(`tern-fetchmail-${name}-`);
    const rc = join(work, `${name}.rc`);
    writeFileSync(
      rc,
      [
        'set no syslog',
        `poll 127.0.0.1 protocol pop3 port ${suite.tern.pop3Port}`,
        `  user "${user}" there with password "${PASSWORD}" is "tern" here`,
        `  options no rewrite ${options} mda "cat > ${dir}/msg-$$"`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    // --idfile and --pidfile keep fetchmail's state files in the test's directory, not in $HOME.
    const args = ['-f', rc, '-v', '--nosyslog', '--idfile', join(work, `${name}.ids`), '--pidfile', join(work, `${name}.pid`)];
    const result = await runProgram(FETCHMAIL, args, 60_000);
    const files = readdirSync(dir).map((f) => readFileSync(join(dir, f), 'latin1'));
    return { result, files };
  };

  const transcript = (r: ProgramResult) => `exit ${r.code}\n${r.stdout}\n${r.stderr}`;

  /** Each stored message, LF line ends, must be one of the delivered files. */
  const assertRetrieved = (stored: Array<{ raw: Buffer }>, files: string[]) => {
    const got = files.map(withoutFetchmailReceived).sort();
    const want = stored.map((m) => m.raw.toString('latin1').replace(/\r\n/g, '\n')).sort();
    assert.equal(got.length, want.length);
    for (let i = 0; i < want.length; i++) assert.equal(got[i], want[i]);
  };

  it('retrieves over STLS and keeps the messages (marked \\Seen)', async () => {
    const user = 'fm-tls@example.test';
    for (const m of MESSAGES) await deliver(suite.tern.smtpPort, user, m);
    const stored = await storedMessages(suite.site, user);
    const { result, files } = await fetchmail('tls', user, "keep sslproto 'tls1.2+' no sslcertck");
    const log = transcript(result);
    assert.equal(result.code, 0, log);
    assert.match(log, /POP3> STLS\n[^]*POP3< \+OK Begin TLS negotiation/);
    assert.match(log, /POP3> PASS \*/);
    assert.match(log, /3 messages for fm-tls@example\.test/);
    assertRetrieved(stored, files);
    const after = await storedMessages(suite.site, user);
    assert.equal(after.length, 3, 'keep leaves the messages on the server');
    assert.ok(after.every((m) => m.flags.includes('\\Seen')));
  });

  it('retrieves in clear text from loopback with --nokeep and empties the mailbox', async () => {
    const user = 'fm-nokeep@example.test';
    for (const m of MESSAGES) await deliver(suite.tern.smtpPort, user, m);
    const stored = await storedMessages(suite.site, user);
    const { result, files } = await fetchmail('nokeep', user, "no keep sslproto ''");
    const log = transcript(result);
    assert.equal(result.code, 0, log);
    assert.doesNotMatch(log, /POP3> STLS/);
    assert.match(log, /POP3> DELE 3/);
    assert.match(log, /POP3< \+OK Tern POP3 server signing off \(0 messages left\)/);
    assertRetrieved(stored, files);
    assert.equal((await storedMessages(suite.site, user)).length, 0);
    // Nothing left for a second run (fetchmail exits 1: no mail).
    const again = await fetchmail('nokeep-again', user, "no keep sslproto ''");
    assert.equal(again.result.code, 1, transcript(again.result));
    assert.equal(again.files.length, 0);
  });
});
