// The submission load: N sessions, each optionally authenticating (AUTH PLAIN) once and
// then sending its share of messages one transaction after another (MAIL, RCPT, DATA, the
// same 4 KB body every time). One raw-socket client for Tern and Postfix, so both pay the
// same client cost; it counts 250s and gives up on the first other reply of a session.
import net from 'node:net';
import { ReplyReader, write } from './smtp-client.js';

export interface SubmitSpec {
  port: number;
  sessions: number;
  messages: number;
  from: string;
  /** Recipient of message i. */
  to: (i: number) => string;
  size: number;
  auth?: { user: string; pass: string };
  timeoutMs: number;
}

export interface SubmitResult {
  accepted: number;
  seconds: number;
  perSecond: number;
  /** The first refusal or failure, if any. */
  error?: string;
}

function body(from: string, size: number): string {
  const line = `${'y'.repeat(70)}\r\n`;
  const head = `From: <${from}>\r\nSubject: queue bench\r\n\r\n`;
  return `${head}${line.repeat(Math.max(1, Math.floor((size - head.length) / line.length)))}.\r\n`;
}

async function session(spec: SubmitSpec, indices: number[], text: string, onAccepted: () => void): Promise<void> {
  const socket = net.connect({ host: '127.0.0.1', port: spec.port });
  socket.on('error', () => undefined);
  const replies = new ReplyReader(socket);
  const expect = async (command: string | null, wanted: number): Promise<void> => {
    if (command !== null) await write(socket, `${command}\r\n`);
    const reply = await replies.next(spec.timeoutMs);
    if (Math.floor(reply.code / 100) !== Math.floor(wanted / 100)) throw new Error(`${command ?? 'greeting'}: ${reply.text}`);
  };
  try {
    await expect(null, 220);
    await expect('EHLO bench.client', 250);
    if (spec.auth) await expect(`AUTH PLAIN ${Buffer.from(`\0${spec.auth.user}\0${spec.auth.pass}`).toString('base64')}`, 235);
    for (const i of indices) {
      await expect(`MAIL FROM:<${spec.from}>`, 250);
      await expect(`RCPT TO:<${spec.to(i)}>`, 250);
      await expect('DATA', 354);
      await write(socket, text);
      await expect(null, 250);
      onAccepted();
    }
    await write(socket, 'QUIT\r\n');
  } finally {
    socket.destroy();
  }
}

/** Sends spec.messages over spec.sessions sessions at once; never throws. */
export async function submitLoad(spec: SubmitSpec): Promise<SubmitResult> {
  const text = body(spec.from, spec.size);
  let accepted = 0;
  let error: string | undefined;
  const started = performance.now();
  const shares = Array.from({ length: spec.sessions }, (_, s) => Array.from({ length: spec.messages }, (_, i) => i).filter((i) => i % spec.sessions === s));
  await Promise.all(
    shares.map((indices) =>
      session(spec, indices, text, () => accepted++).catch((e: unknown) => {
        error ??= e instanceof Error ? e.message : String(e);
      }),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  return { accepted, seconds, perSecond: accepted / seconds, error };
}
