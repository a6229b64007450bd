// Postfix's smtp-sink as the protocol ceiling: it speaks SMTP (or LMTP with -L), reads
// every byte of each message and stores nothing, so the same smtp-source load against it
// shows how fast this machine's client, loopback and protocol can go at all.
import { spawn, type ChildProcess } from 'node:child_process';
import { sleep, waitForPort, type SystemUser } from './util.js';

export const SMTP_SINK = '/usr/sbin/smtp-sink';

export interface Sink {
  stop(): Promise<void>;
}

/** Starts smtp-sink on 127.0.0.1:port (dropping to `user` when run as root) and waits for the port. */
export async function startSink(port: number, lmtp: boolean, user: SystemUser): Promise<Sink> {
  // -m: allow more simultaneous sessions than any load here uses; -u is required (and allowed) only as root.
  const asUser = process.getuid?.() === 0 ? ['-u', user.name] : [];
  const args = [...(lmtp ? ['-L'] : []), '-m', '1000', ...asUser, `127.0.0.1:${port}`, '1024'];
  const child: ChildProcess = spawn(SMTP_SINK, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let exited = false;
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2000);
  });
  child.on('exit', () => {
    exited = true;
  });
  child.on('error', (error) => {
    exited = true;
    stderr += error.message;
  });

  const stop = async (): Promise<void> => {
    if (exited) return;
    const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    if (await Promise.race([exit.then(() => false), sleep(5000).then(() => true)])) child.kill('SIGKILL');
  };
  try {
    await waitForPort(port, 10_000);
    if (exited) throw new Error('exited');
  } catch (error) {
    await stop();
    throw new Error(`smtp-sink did not start on ${port}: ${stderr.trim() || (error instanceof Error ? error.message : String(error))}`);
  }
  return { stop };
}
