/**
 * What every command shares: the global options (--data, --db, --log-level), a helper
 * that opens the store, runs the command and always closes the store, and one that
 * gives a command the server's way of sending mail.
 */
import { resolve } from 'node:path';
import { createInjector, type Injector } from '../delivery/inject.js';
import { createLocalDelivery } from '../delivery/local-delivery.js';
import { createRecipientResolver } from '../delivery/recipient-resolver.js';
import { createLogger } from '../log.js';
import { ByteBudget } from '../mail/byte-budget.js';
import { DkimSigner } from '../queue/dkim.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/store.js';

export interface GlobalOptions {
  data: string;
  db?: string;
  logLevel: string;
}

export function dataDir(opts: GlobalOptions): string {
  return resolve(opts.data);
}

export async function withStore<T>(opts: GlobalOptions, run: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore({ dataDir: dataDir(opts), dbUrl: opts.db });
  try {
    return await run(store);
  } finally {
    await store.close();
  }
}

/** Reads all of stdin (for --password-stdin); trailing newline removed. */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Prints rows as aligned columns. */
export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
}

/** Runs `run` with an injector on `store`, as the server's (for commands that send mail: `tern send`, `tern report send`). */
export async function withInjector<T>(store: Store, hostname: string, run: (injector: Injector) => Promise<T>): Promise<T> {
  const signer = new DkimSigner(store.directory);
  try {
    const injector = createInjector({
      resolver: createRecipientResolver(store.directory, { hostname }),
      delivery: createLocalDelivery(store, createLogger('warn', 2), { signer, hostname }),
      blobs: store.blobs,
      budget: new ByteBudget(64 * 1024 * 1024),
      hostname,
    });
    return await run(injector);
  } finally {
    await signer.close();
  }
}
