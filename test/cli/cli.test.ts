/**
 * The `tern` CLI as operators use it: admin commands, --json output, and one clear line
 * on stderr with a non-zero exit for every mistake (never a stack trace).
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { cli, createSite, freePort, runCli, startTern, tempDir } from '../helpers/tern.js';

function assertUserError(r: { code: number | null; stderr: string }, pattern: RegExp): void {
  assert.notEqual(r.code, 0, 'non-zero exit');
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

describe('tern CLI', () => {
  it('manages domains, users and aliases', async () => {
    const site = await createSite();
    const a = site.args;
    assert.match(await cli(['domain', 'list', ...a]), /example\.test/);
    const domains = JSON.parse(await cli(['domain', 'list', '--json', ...a])) as Array<{ name: string }>;
    assert.deepEqual(domains.map((d) => d.name).sort(), ['example.test', 'mx.example.test']);

    assert.match(await cli(['user', 'add', 'Carol@Example.TEST', ...a]), /account carol@example\.test created; password: \S{12,}/);
    const users = JSON.parse(await cli(['user', 'list', '--json', '--domain', 'example.test', ...a])) as Array<{ address: string }>;
    assert.deepEqual(
      users.map((u) => u.address),
      ['alice@example.test', 'bob@example.test', 'carol@example.test'],
    );
    assert.match(
      await cli(['user', 'passwd', 'carol@example.test', '--password-stdin', ...a], 'another-secret\n'),
      /password for carol@example\.test changed$/m,
    );

    await cli(['alias', 'add', 'team@example.test', 'alice@example.test', 'bob@example.test', ...a]);
    await cli(['alias', 'add', '@example.test', 'carol@example.test', ...a]);
    const aliases = JSON.parse(await cli(['alias', 'list', '--json', ...a])) as Array<{ address: string; target: string }>;
    assert.deepEqual(aliases, [
      { address: '@example.test', target: 'carol@example.test' },
      { address: 'postmaster@mx.example.test', target: 'admin@mx.example.test' }, // made by init
      { address: 'team@example.test', target: 'alice@example.test' },
      { address: 'team@example.test', target: 'bob@example.test' },
    ]);
    await cli(['alias', 'del', 'team@example.test', 'bob@example.test', ...a]);
    await cli(['alias', 'del', '@example.test', ...a]);
    assert.equal((JSON.parse(await cli(['alias', 'list', '--json', ...a])) as unknown[]).length, 2);

    await cli(['user', 'quota', 'bob@example.test', '2M', ...a]);
    const bob = async () =>
      (JSON.parse(await cli(['user', 'list', '--json', ...a])) as Array<{ address: string; quotaBytes: number | null }>).find(
        (x) => x.address === 'bob@example.test',
      );
    assert.equal((await bob())!.quotaBytes, 2 * 1024 * 1024);
    await cli(['user', 'quota', 'bob@example.test', 'unlimited', ...a]);
    assert.equal((await bob())!.quotaBytes, null);

    // Webhooks: made with their signing secret, listed, a test event owed, deleted with their log.
    const hook = JSON.parse(await cli(['webhook', 'add', 'https://hooks.example.test/in', '--events', 'message.bounced,message.received', '--json', ...a])) as {
      id: string;
      events: string[];
      secret: string;
    };
    assert.deepEqual(hook.events, ['message.received', 'message.bounced']);
    assert.match(hook.secret, /^whsec_/);
    assert.match(await cli(['webhook', 'test', hook.id, ...a]), /test event \d+ queued/);
    const log = JSON.parse(await cli(['webhook', 'log', hook.id, '--json', ...a])) as Array<{ event: string; state: string }>;
    assert.deepEqual(
      log.map((d) => [d.event, d.state]),
      [['test', 'pending']],
    );
    await cli(['webhook', 'del', hook.id, ...a]);
    assert.deepEqual(JSON.parse(await cli(['webhook', 'list', '--json', ...a])), []);

    await cli(['user', 'del', 'carol@example.test', ...a]);
    const status = JSON.parse(await cli(['status', '--json', ...a])) as { messages: number; accounts: Array<{ address: string; messages: number }> };
    assert.equal(status.messages, 0);
    assert.deepEqual(
      status.accounts.map((x) => x.address),
      ['admin@mx.example.test', 'alice@example.test', 'bob@example.test'],
    );
  });

  it('explains every mistake in one line', async () => {
    const site = await createSite();
    const a = site.args;
    assertUserError(await runCli(['domain', 'add', 'example.test', ...a]), /^tern: domain example\.test already exists\n$/);
    assertUserError(await runCli(['domain', 'add', 'bad domain', ...a]), /invalid domain name/);
    assertUserError(await runCli(['domain', 'del', 'example.test', ...a]), /still has 2 account\(s\)/);
    assertUserError(await runCli(['domain', 'del', 'nowhere.test', ...a]), /domain nowhere\.test does not exist/);
    assertUserError(await runCli(['user', 'add', 'x@nowhere.test', ...a]), /domain nowhere\.test does not exist/);
    assertUserError(await runCli(['user', 'add', 'not-an-address', ...a]), /invalid address/);
    assertUserError(await runCli(['user', 'add', 'alice@example.test', ...a]), /already exists/);
    assertUserError(await runCli(['user', 'add', 'dave@example.test', '--password-stdin', ...a], { input: 'short\n' }), /at least 8 characters/);
    assertUserError(await runCli(['user', 'passwd', 'nobody@example.test', ...a]), /does not exist/);
    assertUserError(await runCli(['alias', 'add', 'x@example.test', 'someone@remote.test', ...a]), /not in a local domain/);
    assertUserError(await runCli(['alias', 'del', 'x@example.test', ...a]), /does not exist/);
    assertUserError(await runCli(['user', 'quota', 'alice@example.test', 'lots', ...a]), /quota/);
    assertUserError(await runCli(['webhook', 'add', 'ftp://x.test/', '--events', 'message.received', ...a]), /http:\/\/ or https:\/\//);
    assertUserError(await runCli(['webhook', 'add', 'https://x.test/', '--events', 'message.opened', ...a]), /unknown event "message\.opened"/);
    assertUserError(await runCli(['webhook', 'del', '0123456789ab', ...a]), /webhook 0123456789ab does not exist/);
    assertUserError(await runCli(['frobnicate']), /unknown command/);
    assertUserError(await runCli(['serve', '--smtp-port', 'abc', ...a]), /--smtp-port: expected a whole number/);
    assertUserError(await runCli(['serve', '--max-message-size', 'huge', ...a]), /--max-message-size: expected a size/);
    assertUserError(await runCli(['serve', '--roles', 'smtp,web', ...a]), /unknown role "web"/);
    assertUserError(await runCli(['serve', '--smarthost', 'relay.example', ...a]), /--smarthost: expected HOST:PORT/);
    assertUserError(await runCli(['serve', '--retry-delay', 'soon', ...a]), /--retry-delay: expected a duration/);
    assertUserError(await runCli(['serve', '--smarthost', 'relay.example:25', '--smarthost-user', 'u', ...a]), /TERN_SMARTHOST_PASSWORD/);
    assertUserError(await runCli(['queue', 'retry', ...a]), /name queue ids, a filter .* or all/);
    assertUserError(await runCli(['queue', 'list', '--state', 'lost', ...a]), /state: one of queued, held, bounce/);
    assertUserError(await runCli(['queue', 'show', '12345', ...a]), /queue entry 12345 does not exist/);
    assertUserError(await runCli(['route', 'add', 'example.org', 'relay.example', ...a]), /route: expected HOST:PORT/);
    assertUserError(await runCli(['route', 'del', 'example.org', ...a]), /example\.org has no route/);
    assertUserError(await runCli(['send', '--from', 'alice@example.test', '--to', 'bob@example.test', ...a]), /exactly one of --text and --file/);
    assertUserError(await runCli(['serve', '--roles', 'smtp,bogus', ...a]), /unknown role "bogus"/);
    assertUserError(await runCli(['status', '--db', 'mysql://x', ...a]), /unsupported database URL scheme/);
    assertUserError(
      await runCli(['status', '--db', 'postgres://nobody@127.0.0.1:1/x']),
      /cannot connect to PostgreSQL at postgres:\/\/nobody@127\.0\.0\.1:1\/x/,
    );
  });

  it('reports a port in use clearly', async () => {
    const site = await createSite();
    const port = await freePort();
    const blocker = createServer().listen(port, '127.0.0.1');
    try {
      const r = await runCli(['serve', ...site.args, '--smtp-port', String(port), '--lmtp-port', '0', '--log-level', 'warn']);
      assertUserError(r, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} \\(smtp\\): address already in use`));
    } finally {
      blocker.close();
    }
  });

  it('first run of serve initialises the data dir and prints the admin password once', async () => {
    const dataDir = tempDir();
    const site = { dataDir, args: ['--data', dataDir] };
    const first = await startTern(site, ['--hostname', 'first.example.test']);
    assert.match(first.output(), /admin account admin@first\.example\.test/);
    assert.match(first.output(), /Admin password \(shown once, store it now\): \S{12,}/);
    assert.equal(await first.stop(), 0);
    const second = await startTern(site, [], { TERN_HOSTNAME: 'first.example.test' });
    assert.doesNotMatch(second.output(), /password/i);
    assert.equal(await second.stop(), 0);
  });
});
