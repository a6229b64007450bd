/**
 * A small authoritative DNS server for tests, written on node:dgram and node:net: it answers
 * A, AAAA, MX, TXT and CNAME queries from records the test sets (and changes at run time) on
 * 127.0.0.1, over UDP and TCP on the same port, so code under test resolves through a real
 * resolver (node:dns Resolver.setServers, Tern's --dns-server) against names the test controls.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIPv4, isIPv6, type Server, type Socket } from 'node:net';

export type DnsRecord =
  | { type: 'A'; name: string; address: string; ttl?: number }
  | { type: 'AAAA'; name: string; address: string; ttl?: number }
  | { type: 'MX'; name: string; exchange: string; priority: number; ttl?: number } // exchange '.' with priority 0 is a null MX (RFC 7505)
  | { type: 'TXT'; name: string; text: string; ttl?: number } // split into 255-byte character-strings when longer
  | { type: 'CNAME'; name: string; target: string; ttl?: number };

export interface TestDnsServer {
  /** "127.0.0.1:PORT", for node:dns Resolver.setServers and for Tern's --dns-server. */
  readonly address: string;
  readonly port: number;
  /** Replaces (or adds) records at run time; names are case-insensitive, no trailing dot needed. */
  set(records: DnsRecord[]): void;
  /** Removes every record of `name` (optionally only of one type). */
  remove(name: string, type?: DnsRecord['type']): void;
  /** Names for which the server answers SERVFAIL (to test temporary DNS failures). */
  failing: Set<string>;
  /** Every query received, as "TYPE name" (lower-case name), for assertions. */
  readonly queries: string[];
  close(): Promise<void>;
}

const DEFAULT_TTL = 60;
const TYPE_CODES = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 } as const;
const TYPE_NAMES = new Map<number, string>(Object.entries(TYPE_CODES).map(([name, code]) => [code, name]));
const CLASS_IN = 1;
const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
/** The UDP payload size we advertise in our own OPT record. */
const OUR_UDP_SIZE = 1232;

/** ASCII-only lower case (DNS names compare case-insensitively in ASCII only), without a trailing dot. */
function normalize(name: string): string {
  return name.replace(/\.$/, '').replace(/[A-Z]+/g, (s) => s.toLowerCase());
}

function labelsOf(name: string): string[] {
  const n = name.replace(/\.$/, '');
  return n === '' ? [] : n.split('.');
}

function checkName(name: string): void {
  const labels = labelsOf(name);
  if (/[^\x21-\x7e]/.test(name) || labels.some((l) => l.length === 0 || l.length > 63) || labels.join('.').length > 253) {
    throw new Error(`invalid DNS name ${JSON.stringify(name)}`);
  }
}

function ipv4Bytes(address: string): Buffer {
  if (!isIPv4(address)) throw new Error(`invalid IPv4 address ${JSON.stringify(address)}`);
  return Buffer.from(address.split('.').map(Number));
}

function ipv6Bytes(address: string): Buffer {
  if (!isIPv6(address) || address.includes('%')) throw new Error(`invalid IPv6 address ${JSON.stringify(address)}`);
  let text = address;
  // A trailing dotted quad (::ffff:192.0.2.1) becomes two hex groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** Splits UTF-8 text into character-strings of at most 255 bytes, never inside a multi-byte character. */
function characterStrings(text: string): Buffer[] {
  const bytes = Buffer.from(text, 'utf8');
  const out: Buffer[] = [];
  let start = 0;
  do {
    let end = Math.min(start + 255, bytes.length);
    while (end < bytes.length && end > start + 1 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
    out.push(bytes.subarray(start, end));
    start = end;
  } while (start < bytes.length);
  return out;
}

/** Checks a record up front, so a typo fails in the test that sets it rather than as a dropped answer. */
function validate(r: DnsRecord): void {
  checkName(r.name);
  if (r.ttl !== undefined && !(Number.isInteger(r.ttl) && r.ttl >= 0 && r.ttl <= 0x7fffffff)) throw new Error(`invalid TTL ${r.ttl}`);
  switch (r.type) {
    case 'A':
      ipv4Bytes(r.address);
      break;
    case 'AAAA':
      ipv6Bytes(r.address);
      break;
    case 'MX':
      checkName(r.exchange);
      if (!(Number.isInteger(r.priority) && r.priority >= 0 && r.priority <= 0xffff)) throw new Error(`invalid MX priority ${r.priority}`);
      break;
    case 'CNAME':
      checkName(r.target);
      break;
    case 'TXT':
      break;
    default:
      throw new Error(`unsupported record type ${(r as { type: string }).type}`);
  }
}

interface Query {
  id: number;
  opcode: number;
  rd: boolean;
  /** Labels as received (case kept), echoed in the question section. */
  labels: string[];
  qtype: number;
  qclass: number;
  /** Requestor's UDP payload size from its OPT record, or undefined without EDNS. */
  udpSize: number | undefined;
}

/** Reads a possibly compressed name; `end` is the offset just after it in the message. */
function readName(msg: Buffer, offset: number): { labels: string[]; end: number } {
  const labels: string[] = [];
  let pos = offset;
  let end = -1;
  let jumps = 0;
  let length = 0;
  for (;;) {
    const len = msg[pos];
    if (len === undefined) throw new Error('name runs past the message');
    if (len === 0) {
      if (end < 0) end = pos + 1;
      return { labels, end };
    }
    if ((len & 0xc0) === 0xc0) {
      const low = msg[pos + 1];
      if (low === undefined) throw new Error('truncated compression pointer');
      if (end < 0) end = pos + 2;
      if (++jumps > 64) throw new Error('compression loop');
      pos = ((len & 0x3f) << 8) | low;
      continue;
    }
    if (len & 0xc0) throw new Error('reserved label type');
    if (pos + 1 + len > msg.length) throw new Error('label runs past the message');
    length += len + 1;
    if (length > 255) throw new Error('name too long');
    labels.push(msg.toString('latin1', pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
}

/** Parses a query; throws on anything malformed (the caller drops such packets). */
function parseQuery(msg: Buffer): Query {
  if (msg.length < 12) throw new Error('short header');
  const flags = msg.readUInt16BE(2);
  if (flags & 0x8000) throw new Error('not a query');
  const [qd, an, ns, ar] = [4, 6, 8, 10].map((o) => msg.readUInt16BE(o)) as [number, number, number, number];
  if (qd !== 1) throw new Error(`QDCOUNT ${qd}`);
  const { labels, end } = readName(msg, 12);
  if (end + 4 > msg.length) throw new Error('truncated question');
  const query: Query = {
    id: msg.readUInt16BE(0),
    opcode: (flags >> 11) & 0xf,
    rd: (flags & 0x0100) !== 0,
    labels,
    qtype: msg.readUInt16BE(end),
    qclass: msg.readUInt16BE(end + 2),
    udpSize: undefined,
  };
  // Walk the remaining records only to find an OPT pseudo-record in the additional section.
  let pos = end + 4;
  for (let i = 0; i < an + ns + ar; i++) {
    const rr = readName(msg, pos);
    pos = rr.end;
    if (pos + 10 > msg.length) throw new Error('truncated record');
    const type = msg.readUInt16BE(pos);
    const rdlength = msg.readUInt16BE(pos + 8);
    if (i >= an + ns && type === TYPE_CODES.OPT) query.udpSize = Math.max(512, msg.readUInt16BE(pos + 2));
    pos += 10 + rdlength;
    if (pos > msg.length) throw new Error('truncated rdata');
  }
  return query;
}

/** A growable message buffer that compresses names against those already written. */
class Writer {
  private buf = Buffer.alloc(512);
  length = 0;
  private readonly names = new Map<string, number>();

  private reserve(n: number): number {
    if (this.length + n > this.buf.length) {
      const bigger = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
      this.buf.copy(bigger, 0, 0, this.length);
      this.buf = bigger;
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  // reserve() may replace this.buf, so it runs before this.buf is read.
  u8(v: number): void {
    const at = this.reserve(1);
    this.buf.writeUInt8(v, at);
  }

  u16(v: number): void {
    const at = this.reserve(2);
    this.buf.writeUInt16BE(v, at);
  }

  u32(v: number): void {
    const at = this.reserve(4);
    this.buf.writeUInt32BE(v, at);
  }

  bytes(b: Buffer): void {
    const at = this.reserve(b.length);
    b.copy(this.buf, at);
  }

  patchU16(at: number, v: number): void {
    this.buf.writeUInt16BE(v, at);
  }

  name(labels: string[]): void {
    for (let i = 0; i < labels.length; i++) {
      const suffix = normalize(labels.slice(i).join('.'));
      const earlier = this.names.get(suffix);
      if (earlier !== undefined) {
        this.u16(0xc000 | earlier);
        return;
      }
      if (this.length < 0x4000) this.names.set(suffix, this.length);
      const label = Buffer.from(labels[i] ?? '', 'latin1');
      this.u8(label.length);
      this.bytes(label);
    }
    this.u8(0);
  }

  done(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

function writeRecord(w: Writer, owner: string[], r: DnsRecord): void {
  w.name(owner);
  w.u16(TYPE_CODES[r.type]);
  w.u16(CLASS_IN);
  w.u32(r.ttl ?? DEFAULT_TTL);
  const lengthAt = w.length;
  w.u16(0);
  switch (r.type) {
    case 'A':
      w.bytes(ipv4Bytes(r.address));
      break;
    case 'AAAA':
      w.bytes(ipv6Bytes(r.address));
      break;
    case 'MX':
      w.u16(r.priority);
      w.name(labelsOf(r.exchange));
      break;
    case 'TXT':
      for (const s of characterStrings(r.text)) {
        w.u8(s.length);
        w.bytes(s);
      }
      break;
    case 'CNAME':
      w.name(labelsOf(r.target));
      break;
  }
  w.patchU16(lengthAt, w.length - lengthAt - 2);
}

function buildResponse(q: Query, rcode: number, answers: Array<{ owner: string[]; record: DnsRecord }>, truncated: boolean): Buffer {
  const w = new Writer();
  w.u16(q.id);
  w.u16(0x8000 | (q.opcode << 11) | 0x0400 | (truncated ? 0x0200 : 0) | (q.rd ? 0x0100 : 0) | rcode);
  w.u16(1);
  w.u16(truncated ? 0 : answers.length);
  w.u16(0);
  w.u16(q.udpSize === undefined ? 0 : 1);
  w.name(q.labels);
  w.u16(q.qtype);
  w.u16(q.qclass);
  if (!truncated) for (const a of answers) writeRecord(w, a.owner, a.record);
  if (q.udpSize !== undefined) {
    // OPT: root owner, CLASS = our UDP payload size, TTL = extended RCODE 0, version 0, no flags.
    w.u8(0);
    w.u16(TYPE_CODES.OPT);
    w.u16(OUR_UDP_SIZE);
    w.u32(0);
    w.u16(0);
  }
  return w.done();
}

/** Binds UDP and TCP to one port; with port 0, retries until a UDP-chosen port is also free for TCP. */
async function bindBoth(host: string, port: number, onConnection: (s: Socket) => void): Promise<{ udp: UdpSocket; tcp: Server }> {
  for (let attempt = 0; ; attempt++) {
    const udp = createSocket('udp4');
    await new Promise<void>((res, rej) => {
      udp.once('error', rej);
      udp.bind(port, host, () => {
        udp.off('error', rej);
        res();
      });
    });
    const tcp = createServer(onConnection);
    try {
      await new Promise<void>((res, rej) => {
        tcp.once('error', rej);
        tcp.listen(udp.address().port, host, () => {
          tcp.off('error', rej);
          res();
        });
      });
      return { udp, tcp };
    } catch (err) {
      await new Promise<void>((res) => udp.close(() => res()));
      if (port !== 0 || attempt >= 20 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
}

/** `host` is a loopback address (127.0.0.1 by default; another one, e.g. to serve port 53 where a resolver already runs on 127.0.0.1). */
export async function startDnsServer(records: DnsRecord[] = [], opts: { port?: number; host?: string } = {}): Promise<TestDnsServer> {
  const host = opts.host ?? '127.0.0.1';
  /** Records by normalized name. */
  const zone = new Map<string, DnsRecord[]>();
  const failing = new Set<string>();
  const queries: string[] = [];
  const connections = new Set<Socket>();

  const isFailing = (name: string): boolean => [...failing].some((f) => normalize(f) === name);

  function resolve(q: Query): { rcode: number; answers: Array<{ owner: string[]; record: DnsRecord }> } {
    const answers: Array<{ owner: string[]; record: DnsRecord }> = [];
    let owner = q.labels;
    // Follows CNAMEs inside the zone like a real authoritative server; the bound stops CNAME loops.
    for (let hop = 0; hop < 16; hop++) {
      const name = normalize(owner.join('.'));
      if (isFailing(name)) return { rcode: RCODE.SERVFAIL, answers: [] };
      const here = zone.get(name);
      // RFC 6604: after a CNAME the RCODE is that of the last name in the chain.
      if (!here) return { rcode: RCODE.NXDOMAIN, answers };
      const matching = here.filter((r) => TYPE_CODES[r.type] === q.qtype);
      if (matching.length > 0) {
        for (const record of matching) answers.push({ owner, record });
        return { rcode: RCODE.NOERROR, answers };
      }
      const cname = here.find((r): r is Extract<DnsRecord, { type: 'CNAME' }> => r.type === 'CNAME');
      // NODATA without an SOA in authority: resolvers then do not cache the negative answer, so set() takes effect at once.
      if (!cname) return { rcode: RCODE.NOERROR, answers };
      answers.push({ owner, record: cname });
      owner = labelsOf(cname.target);
    }
    return { rcode: RCODE.SERVFAIL, answers: [] };
  }

  /** The reply to one message, or undefined to drop it (malformed, or not a query). */
  function answer(msg: Buffer, maxSize: number | 'udp'): Buffer | undefined {
    let q: Query;
    try {
      q = parseQuery(msg);
    } catch {
      return undefined;
    }
    queries.push(`${TYPE_NAMES.get(q.qtype) ?? `TYPE${q.qtype}`} ${normalize(q.labels.join('.'))}`);
    const { rcode, answers } =
      q.opcode !== 0 ? { rcode: RCODE.NOTIMP, answers: [] } : q.qclass !== CLASS_IN ? { rcode: RCODE.REFUSED, answers: [] } : resolve(q);
    const limit = maxSize === 'udp' ? (q.udpSize ?? 512) : maxSize;
    const full = buildResponse(q, rcode, answers, false);
    return full.length <= limit ? full : buildResponse(q, rcode, answers, true);
  }

  function onConnection(socket: Socket): void {
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
    socket.on('error', () => undefined);
    let pending = Buffer.alloc(0);
    socket.on('data', (data: Buffer) => {
      pending = Buffer.concat([pending, data]);
      // Each message carries a 2-byte length prefix; several may arrive pipelined in one read.
      while (pending.length >= 2) {
        const len = pending.readUInt16BE(0);
        if (pending.length < 2 + len) break;
        const reply = answer(pending.subarray(2, 2 + len), 0xffff);
        pending = pending.subarray(2 + len);
        if (reply) {
          const framed = Buffer.alloc(2 + reply.length);
          framed.writeUInt16BE(reply.length, 0);
          reply.copy(framed, 2);
          socket.write(framed);
        }
      }
    });
  }

  const { udp, tcp } = await bindBoth(host, opts.port ?? 0, onConnection);
  udp.on('error', () => undefined);
  udp.on('message', (msg, rinfo) => {
    const reply = answer(msg, 'udp');
    if (reply) udp.send(reply, rinfo.port, rinfo.address, () => undefined);
  });
  const port = udp.address().port;

  function set(list: DnsRecord[]): void {
    list.forEach(validate);
    // A (name, type) pair named in this call loses its old records; records within the call accumulate.
    for (const r of list) {
      const key = normalize(r.name);
      const kept = (zone.get(key) ?? []).filter((old) => old.type !== r.type);
      zone.set(key, kept);
    }
    for (const r of list) zone.get(normalize(r.name))?.push({ ...r });
  }

  function remove(name: string, type?: DnsRecord['type']): void {
    const key = normalize(name);
    const kept = type === undefined ? [] : (zone.get(key) ?? []).filter((r) => r.type !== type);
    if (kept.length > 0) zone.set(key, kept);
    else zone.delete(key);
  }

  set(records);

  let closing: Promise<void> | undefined;
  return {
    address: `${host}:${port}`,
    port,
    set,
    remove,
    failing,
    queries,
    close() {
      closing ??= (async () => {
        for (const s of connections) s.destroy();
        await Promise.all([new Promise<void>((res) => udp.close(() => res())), new Promise<void>((res) => tcp.close(() => res()))]);
      })();
      return closing;
    },
  };
}
