/**
 * The test DNS server (test/helpers/dns-server.ts) against Node's real resolver (c-ares through
 * node:dns/promises) over UDP and TCP, plus hand-made packets for what a resolver never sends:
 * garbage, compressed names in a query, EDNS sizes and pipelined TCP queries.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startDnsServer, type TestDnsServer } from './dns-server.js';

const LONG_TXT = 'v=spf1 ' + Array.from({ length: 25 }, (_, i) => `ip4:192.0.2.${i}`).join(' ') + ' -all';
const HUGE_TXT = 'k='.padEnd(3000, 'A');

/** A DNS query; `edns` adds an OPT record with that UDP size, `extra` goes before it in the additional section. */
function encodeQuery(id: number, name: string, type: number, opts: { edns?: number; extra?: Buffer; extraCount?: number } = {}): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE((opts.extraCount ?? 0) + (opts.edns ? 1 : 0), 10);
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')]));
  const question = Buffer.concat([...labels, Buffer.from([0, type >> 8, type & 0xff, 0, 1])]);
  const opt = opts.edns ? Buffer.from([0, 0, 41, opts.edns >> 8, opts.edns & 0xff, 0, 0, 0, 0, 0, 0]) : Buffer.alloc(0);
  return Buffer.concat([header, question, opts.extra ?? Buffer.alloc(0), opt]);
}

interface Reply {
  id: number;
  flags: number;
  rcode: number;
  counts: [number, number, number, number];
  raw: Buffer;
}

function decodeHeader(raw: Buffer): Reply {
  const counts = [4, 6, 8, 10].map((o) => raw.readUInt16BE(o)) as Reply['counts'];
  return { id: raw.readUInt16BE(0), flags: raw.readUInt16BE(2), rcode: raw.readUInt16BE(2) & 0xf, counts, raw };
}

/** Sends each packet over one UDP socket and returns the first reply. */
async function udpExchange(port: number, packets: Buffer[], timeoutMs = 5000): Promise<Reply> {
  const sock = createSocket('udp4');
  try {
    return await new Promise<Reply>((res, rej) => {
      const t = setTimeout(() => rej(new Error('no UDP reply')), timeoutMs);
      sock.once('message', (msg) => {
        clearTimeout(t);
        res(decodeHeader(msg));
      });
      for (const p of packets) sock.send(p, port, '127.0.0.1');
    });
  } finally {
    sock.close();
  }
}

/** Writes the queries length-prefixed in one TCP write and reads `expected` length-prefixed replies. */
async function tcpExchange(port: number, queries: Buffer[], expected: number): Promise<Reply[]> {
  const sock = connect(port, '127.0.0.1');
  try {
    return await new Promise<Reply[]>((res, rej) => {
      let buf = Buffer.alloc(0);
      const replies: Reply[] = [];
      sock.on('error', rej);
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          replies.push(decodeHeader(buf.subarray(2, 2 + buf.readUInt16BE(0))));
          buf = buf.subarray(2 + buf.readUInt16BE(0));
        }
        if (replies.length >= expected) res(replies);
      });
      const framed = queries.map((q) => {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(q.length);
        return Buffer.concat([len, q]);
      });
      sock.write(Buffer.concat(framed));
    });
  } finally {
    sock.destroy();
  }
}

describe('test DNS server', () => {
  let dns: TestDnsServer;
  let resolver: Resolver;

  before(async () => {
    dns = await startDnsServer([
      { type: 'MX', name: 'example.test', exchange: 'mx1.example.test', priority: 10 },
      { type: 'MX', name: 'example.test', exchange: 'mx2.example.test', priority: 20 },
      { type: 'TXT', name: 'example.test', text: 'hello world' },
      { type: 'A', name: 'mx1.example.test', address: '192.0.2.10', ttl: 300 },
      { type: 'AAAA', name: 'mx1.example.test', address: '2001:db8::10' },
      { type: 'MX', name: 'nomail.test', exchange: '.', priority: 0 },
      { type: 'TXT', name: 'long.example.test', text: LONG_TXT },
      { type: 'TXT', name: 'huge.example.test', text: HUGE_TXT },
      { type: 'CNAME', name: 'alias.example.test', target: 'mx1.example.test' },
      { type: 'A', name: 'fail.example.test', address: '192.0.2.99' },
    ]);
    resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([dns.address]);
  });
  after(() => dns.close());

  it('listens on 127.0.0.1 with a port in its address', () => {
    assert.equal(dns.address, `127.0.0.1:${dns.port}`);
    assert.ok(dns.port > 0);
  });

  it('answers MX, including a null MX', async () => {
    const mx = await resolver.resolveMx('example.test');
    assert.deepEqual(
      mx.sort((a, b) => a.priority - b.priority),
      [
        { exchange: 'mx1.example.test', priority: 10 },
        { exchange: 'mx2.example.test', priority: 20 },
      ],
    );
    assert.deepEqual(await resolver.resolveMx('nomail.test'), [{ exchange: '', priority: 0 }]);
  });

  it('answers A with its TTL and AAAA', async () => {
    assert.deepEqual(await resolver.resolve4('mx1.example.test', { ttl: true }), [{ address: '192.0.2.10', ttl: 300 }]);
    assert.deepEqual(await resolver.resolve6('mx1.example.test'), ['2001:db8::10']);
  });

  it('answers TXT, a long one split into 255-byte chunks', async () => {
    assert.deepEqual(await resolver.resolveTxt('example.test'), [['hello world']]);
    assert.ok(LONG_TXT.length > 255 && LONG_TXT.length < 450);
    const [chunks] = await resolver.resolveTxt('long.example.test');
    assert.ok(chunks);
    assert.deepEqual(
      chunks.map((c) => c.length),
      [255, LONG_TXT.length - 255],
    );
    assert.equal(chunks.join(''), LONG_TXT);
  });

  it('follows a CNAME for A, and answers CNAME itself', async () => {
    assert.deepEqual(await resolver.resolve4('alias.example.test'), ['192.0.2.10']);
    assert.deepEqual(await resolver.resolveCname('alias.example.test'), ['mx1.example.test']);
  });

  it('answers NXDOMAIN (ENOTFOUND) for an unknown name and NODATA (ENODATA) for a missing type', async () => {
    await assert.rejects(resolver.resolve4('nowhere.example.test'), { code: 'ENOTFOUND' });
    await assert.rejects(resolver.resolveMx('mx1.example.test'), { code: 'ENODATA' });
    await assert.rejects(resolver.resolve6('example.test'), { code: 'ENODATA' });
  });

  it('answers SERVFAIL (ESERVFAIL) for a failing name, and normally again once it is removed from the set', async () => {
    dns.failing.add('Fail.Example.Test.');
    await assert.rejects(resolver.resolve4('fail.example.test'), { code: 'ESERVFAIL' });
    dns.failing.clear();
    assert.deepEqual(await resolver.resolve4('fail.example.test'), ['192.0.2.99']);
  });

  it('changes answers at run time with set and remove', async () => {
    await assert.rejects(resolver.resolve4('later.example.test'), { code: 'ENOTFOUND' });
    dns.set([{ type: 'A', name: 'Later.Example.Test.', address: '192.0.2.20' }]);
    assert.deepEqual(await resolver.resolve4('later.example.test'), ['192.0.2.20']);
    // set replaces that name's A records and leaves its other types alone.
    dns.set([
      { type: 'A', name: 'later.example.test', address: '192.0.2.21' },
      { type: 'A', name: 'later.example.test', address: '192.0.2.22' },
      { type: 'TXT', name: 'later.example.test', text: 'x' },
    ]);
    assert.deepEqual((await resolver.resolve4('later.example.test')).sort(), ['192.0.2.21', '192.0.2.22']);
    dns.remove('later.example.test', 'A');
    await assert.rejects(resolver.resolve4('later.example.test'), { code: 'ENODATA' });
    dns.remove('later.example.test');
    await assert.rejects(resolver.resolveTxt('later.example.test'), { code: 'ENOTFOUND' });
  });

  it('records every query as "TYPE name" in lower case', async () => {
    const from = dns.queries.length;
    await resolver.resolve4('MX1.Example.TEST');
    await resolver.resolveMx('example.test');
    assert.deepEqual(dns.queries.slice(from), ['A mx1.example.test', 'MX example.test']);
  });

  it('truncates a large UDP answer so the resolver retries over TCP', async () => {
    const from = dns.queries.length;
    const [chunks] = await resolver.resolveTxt('huge.example.test');
    assert.equal(chunks?.join(''), HUGE_TXT);
    // Once over UDP (answered with TC), once over TCP.
    assert.deepEqual(dns.queries.slice(from), ['TXT huge.example.test', 'TXT huge.example.test']);
  });

  it('sets TC on UDP above 512 bytes without EDNS, and allows the EDNS size with an OPT echoed', async () => {
    const plain = await udpExchange(dns.port, [encodeQuery(0x1111, 'long.example.test', 16)]);
    assert.equal(plain.counts[1], 1);
    const truncated = await udpExchange(dns.port, [encodeQuery(0x2222, 'huge.example.test', 16)]);
    assert.ok(truncated.flags & 0x0200, 'TC set');
    assert.deepEqual(truncated.counts, [1, 0, 0, 0]);
    const edns = await udpExchange(dns.port, [encodeQuery(0x3333, 'huge.example.test', 16, { edns: 4096 })]);
    assert.equal(edns.flags & 0x0200, 0, 'TC clear');
    assert.deepEqual(edns.counts, [1, 1, 0, 1]);
    assert.ok(edns.raw.length > 3000);
    // The reply ends with the OPT record: root name, type 41, class = UDP size, TTL 0, no rdata.
    assert.equal(edns.raw.readUInt16BE(edns.raw.length - 10), 41);
  });

  it('ignores malformed packets, then answers a query with compressed names, copying ID and question and setting AA', async () => {
    const loop = encodeQuery(0x4444, 'x', 1);
    loop.writeUInt16BE(0xc00c, 12); // the question name points at itself
    const garbage = [Buffer.from([1, 2, 3]), Buffer.alloc(40, 0xff), loop, encodeQuery(0x5555, 'example.test', 15).subarray(0, 20)];
    // An additional record whose owner is a pointer to the question name (offset 12), before the OPT record.
    const extra = Buffer.from([0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 0, 0, 2, 1, 0x61]);
    const query = encodeQuery(0xbeef, 'Example.Test', 15, { extra, extraCount: 1, edns: 1232 });
    const reply = await udpExchange(dns.port, [...garbage, query]);
    assert.equal(reply.id, 0xbeef);
    assert.equal(reply.flags & 0x8000, 0x8000, 'QR');
    assert.equal(reply.flags & 0x0400, 0x0400, 'AA');
    assert.equal(reply.flags & 0x0100, 0x0100, 'RD copied');
    assert.equal(reply.rcode, 0);
    assert.deepEqual(reply.counts, [1, 2, 0, 1]);
    const question = query.subarray(12, 12 + 'Example.Test'.length + 2 + 4);
    assert.deepEqual(reply.raw.subarray(12, 12 + question.length), question);
    // The first answer's owner is compressed to a pointer at the question name.
    assert.equal(reply.raw.readUInt16BE(12 + question.length), 0xc00c);
  });

  it('answers pipelined length-prefixed queries over TCP', async () => {
    const replies = await tcpExchange(dns.port, [encodeQuery(1, 'huge.example.test', 16), encodeQuery(2, 'nowhere.test', 1)], 2);
    assert.deepEqual(
      replies.map((r) => [r.id, r.rcode, r.counts[1], r.flags & 0x0200]),
      [
        [1, 0, 1, 0],
        [2, 3, 0, 0],
      ],
    );
    assert.ok((replies[0]?.raw.length ?? 0) > 3000);
  });

  it('binds a given port and closes cleanly', async () => {
    const other = await startDnsServer([{ type: 'A', name: 'a.test', address: '192.0.2.1' }]);
    const port = other.port;
    await other.close();
    const again = await startDnsServer([{ type: 'A', name: 'a.test', address: '192.0.2.2' }], { port });
    try {
      const r = new Resolver({ timeout: 2000, tries: 1 });
      r.setServers([again.address]);
      assert.deepEqual(await r.resolve4('a.test'), ['192.0.2.2']);
    } finally {
      await again.close();
    }
  });

  it('rejects invalid records when they are set', () => {
    assert.throws(() => dns.set([{ type: 'A', name: 'bad.test', address: '300.1.1.1' }]), /invalid IPv4/);
    assert.throws(() => dns.set([{ type: 'CNAME', name: 'bad..test', target: 'x.test' }]), /invalid DNS name/);
  });
});
