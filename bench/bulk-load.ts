// Fills a Tern store with many small unique messages, fast, through the store's own
// delivery path (openStore, then mailboxes.deliver), with thousands of deliveries in
// flight so group commit packs them into full batches. Used by the bench's full-store run
// and alone:
//   node dist/bench/bulk-load.js --data DIR [--db URL] --messages 1000000 --address bench@bench.test
//     [--size 1024] [--in-flight 4096]
// The domain and account are created when missing. Progress goes to stderr; the last
// stdout line is JSON: {"messages", "seconds", "perSecond", "store"}.
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatePassword, hashPassword } from '../src/auth/password.js';
import { traceHeaders } from '../src/mail/trace-headers.js';
import { openStore } from '../src/store/open.js';
import type { Account, NewDelivery, Store } from '../src/store/store.js';

export interface BulkLoadOptions {
  dataDir: string;
  dbUrl?: string;
  address: string;
  messages: number;
  /** Body bytes per message (after its headers). */
  size: number;
  /** Deliveries submitted and not yet committed, at most. */
  inFlight: number;
  progress?: (done: number, seconds: number) => void;
}

export interface BulkLoadResult {
  messages: number;
  seconds: number;
  perSecond: number;
  store: string;
}

const SENDER = 'bulk@example.org';

async function ensureAccount(store: Store, address: string): Promise<Account> {
  const existing = await store.directory.getAccount(address);
  if (existing) return existing;
  const domain = address.slice(address.lastIndexOf('@') + 1);
  if (!(await store.directory.isLocalDomain(domain))) await store.directory.addDomain(domain);
  return store.directory.addAccount({ address, passwordHash: await hashPassword(generatePassword()) });
}

/** One unique message: a few headers and `size` bytes of text lines. */
function messageBody(n: number, size: number, filler: string, date: string): Buffer {
  const head = `From: <${SENDER}>\r\nSubject: bulk message ${n}\r\nDate: ${date}\r\nMessage-ID: <bulk.${n}.${process.pid}@bench.test>\r\n\r\n`;
  return Buffer.from(head + filler.slice(0, size), 'latin1');
}

function delivery(n: number, account: Account, body: Buffer, date: Date): NewDelivery {
  const ternId = `BULK${process.pid.toString(36)}${n.toString(36)}`.toUpperCase();
  const prefix = traceHeaders({
    envelopeFrom: SENDER,
    helo: 'bulk-load',
    remoteAddress: '127.0.0.1',
    localHostname: 'bulk-load.localhost',
    protocol: 'ESMTP',
    ternId,
    recipient: account.address,
    date,
  });
  return {
    ternId,
    blob: { hash: createHash('sha256').update(body).digest('hex'), size: body.length, data: body },
    envelopeFrom: SENDER,
    recipients: [{ accountId: account.id, prefix }],
    internalDate: date,
    atomic: true,
  };
}

/** Delivers o.messages messages to o.address, keeping o.inFlight deliveries in flight. */
export async function bulkLoad(o: BulkLoadOptions): Promise<BulkLoadResult> {
  const store = await openStore({ dataDir: o.dataDir, dbUrl: o.dbUrl });
  try {
    const account = await ensureAccount(store, o.address);
    const line = `${'The quick brown fox jumps over the lazy dog. '.repeat(2).trimEnd()}\r\n`;
    const filler = line.repeat(Math.ceil(o.size / line.length));
    const started = performance.now();
    let next = 0;
    let done = 0;
    let lastReport = started;
    const worker = async (): Promise<void> => {
      while (next < o.messages) {
        const n = next++;
        const date = new Date();
        const outcomes = await store.mailboxes.deliver(delivery(n, account, messageBody(n, o.size, filler, date.toUTCString()), date));
        if (outcomes[0]?.status !== 'stored') throw new Error(`message ${n} was not stored: ${outcomes[0]?.status ?? 'no outcome'}`);
        done += 1;
        const now = performance.now();
        if (o.progress && now - lastReport > 5000) {
          lastReport = now;
          o.progress(done, (now - started) / 1000);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(o.inFlight, o.messages) }, worker));
    const seconds = (performance.now() - started) / 1000;
    return { messages: done, seconds, perSecond: done / seconds, store: store.kind };
  } finally {
    await store.close();
  }
}

const USAGE = 'usage: node dist/bench/bulk-load.js --data DIR [--db URL] --messages N --address USER@DOMAIN [--size BYTES] [--in-flight N]';

function parseArgs(argv: string[]): BulkLoadOptions {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    if (!['--data', '--db', '--messages', '--address', '--size', '--in-flight'].includes(flag) || value === undefined) {
      throw new Error(flag === '--help' ? '' : `bad argument ${flag}`);
    }
    values.set(flag.slice(2), value);
  }
  const count = (name: string, fallback?: number): number => {
    const raw = values.get(name);
    const value = raw === undefined ? fallback : Number(raw);
    if (value === undefined || !Number.isInteger(value) || value <= 0) throw new Error(`--${name} needs a positive integer`);
    return value;
  };
  const dataDir = values.get('data');
  const address = values.get('address');
  if (!dataDir || !address?.includes('@')) throw new Error('--data and --address are required');
  return {
    dataDir: resolve(dataDir),
    dbUrl: values.get('db'),
    address: address.toLowerCase(),
    messages: count('messages'),
    size: count('size', 1024),
    inFlight: count('in-flight', 4096),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  let options: BulkLoadOptions;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    if (error instanceof Error && error.message) console.error(`bulk-load: ${error.message}`);
    console.error(USAGE);
    process.exit(2);
  }
  const progress = (done: number, seconds: number): void => {
    console.error(`bulk-load: ${done} of ${options.messages} in ${seconds.toFixed(0)} s (${(done / seconds).toFixed(0)} msg/s)`);
  };
  bulkLoad({ ...options, progress }).then(
    (result) => console.log(JSON.stringify(result)),
    (error: unknown) => {
      console.error(`bulk-load: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}
