/**
 * Shared bits of the SMTP/LMTP protocol tests: a nodemailer transport for the test
 * server, reading what the store holds (directly from SQLite, WAL allows it while the
 * server runs), and small polling/process helpers. Not a test file itself.
 */
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { format } from 'node:util';
import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import { openStore } from '../../src/store/open.js';
import { collect, type StoredMessage } from '../../src/store/store.js';
import type { Site } from '../helpers/tern.js';

export interface MailerOptions {
  /** Source address (any 127.x.y.z works on Linux loopback); separates per-IP limits. */
  localAddress?: string;
  /** Use STARTTLS (the server's self-signed certificate) instead of plain text. */
  startTls?: boolean;
  /** Collects nodemailer's protocol log (commands sent, replies read) here. */
  transcript?: string[];
}

/** A nodemailer logger that appends each logged line to `lines`. */
function transcriptLogger(lines: string[]) {
  const push = (_entry: unknown, message: string, ...args: unknown[]) => lines.push(format(message, ...args));
  const ignore = () => undefined;
  return { level: ignore, trace: ignore, debug: push, info: push, warn: push, error: push, fatal: push };
}

export function mailer(port: number, opts: MailerOptions = {}): nodemailer.Transporter<SMTPTransport.SentMessageInfo> {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    ignoreTLS: !opts.startTls,
    requireTLS: Boolean(opts.startTls),
    tls: { rejectUnauthorized: false },
    name: 'client.test',
    localAddress: opts.localAddress,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 10_000,
    ...(opts.transcript ? { debug: true, logger: transcriptLogger(opts.transcript) } : {}),
  });
}

/** Sends one small message and returns nodemailer's info; throws on any rejection. */
export async function sendSimple(
  port: number,
  to: string | string[],
  opts: MailerOptions & { subject?: string; text?: string; from?: string } = {},
): Promise<{ response: string; accepted: unknown[]; rejected: unknown[] }> {
  const transport = mailer(port, opts);
  try {
    return await transport.sendMail({
      from: opts.from ?? 'sender@remote.test',
      to,
      subject: opts.subject ?? 'hello',
      text: opts.text ?? 'Hello from the test suite.\n',
    });
  } finally {
    transport.close();
  }
}

export interface StoredWithBlob extends StoredMessage {
  /** The stored message (trace prefix and body) decoded as UTF-8 (for matching). */
  blob: string;
  /** The stored message byte for byte. */
  raw: Buffer;
}

/** The --db of a site, if it has one (PostgreSQL sites). */
const dbOf = (site: Site): string | undefined => {
  const at = site.args.indexOf('--db');
  return at >= 0 ? site.args[at + 1] : undefined;
};

/** Every message in `address`'s mailbox, with the whole stored message. */
export async function storedMessages(site: Site, address: string, mailbox = 'INBOX'): Promise<StoredWithBlob[]> {
  const store = await openStore({ dataDir: site.dataDir, dbUrl: dbOf(site) });
  try {
    const out: StoredWithBlob[] = [];
    for (const m of await store.mailboxes.messagesOf(address, mailbox)) {
      const raw = await collect(store.mailboxes.read(m.id));
      out.push({ ...m, blob: raw.toString('utf8'), raw });
    }
    return out;
  } finally {
    await store.close();
  }
}

/**
 * For tests that number their messages with an `X-Seq:` header: seq → stored copies in
 * the given mailboxes, and the store's integrity problems.
 */
export async function storedSeqCopies(site: Site, addresses: string[]): Promise<{ copies: Map<number, number>; problems: string[] }> {
  const store = await openStore({ dataDir: site.dataDir, dbUrl: dbOf(site) });
  try {
    const copies = new Map<number, number>();
    for (const address of addresses) {
      for (const m of await store.mailboxes.messagesOf(address)) {
        const raw = await collect(store.mailboxes.read(m.id));
        const seq = Number(/^X-Seq: (\d+)/m.exec(raw.toString('latin1'))![1]);
        copies.set(seq, (copies.get(seq) ?? 0) + 1);
      }
    }
    return { copies, problems: await store.checkIntegrity() };
  } finally {
    await store.close();
  }
}

/** Polls `check` every 25 ms until it returns true; throws `message` after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, message: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${message}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface ProgramResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs an external program (swaks, smtp-source, openssl) with a hard timeout. */
export function runProgram(file: string, args: string[], timeoutMs = 20_000): Promise<ProgramResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface HeldConnection {
  socket: Socket;
  /** Everything the server has sent so far. */
  received: () => string;
  closed: Promise<void>;
}

/**
 * Opens a plain TCP connection from `localAddress` (127.0.0.0/8 is all loopback on
 * Linux, so several client "IPs" are available) and resolves once the first reply line
 * has arrived.
 */
export async function connectFrom(port: number, localAddress = '127.0.0.1'): Promise<HeldConnection> {
  const socket = connect({ port, host: '127.0.0.1', localAddress });
  let data = '';
  socket.setEncoding('latin1');
  socket.on('error', () => undefined);
  const closed = new Promise<void>((res) => socket.once('close', () => res()));
  await new Promise<void>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`no reply from the server on a connection from ${localAddress}`)), 10_000);
    socket.on('data', (d: string) => {
      data += d;
      if (data.includes('\n')) {
        clearTimeout(timer);
        res();
      }
    });
    socket.once('close', () => {
      clearTimeout(timer);
      if (!data.includes('\n')) rej(new Error(`connection from ${localAddress} closed without a reply`));
    });
  });
  return { socket, received: () => data, closed };
}

/** `promise`, or `'timeout'` after `ms` (the timer does not keep the process alive). */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((res) => {
    timer = setTimeout(() => res('timeout'), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
