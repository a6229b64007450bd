// Postfix's smtp-sink as the protocol ceiling: it speaks SMTP (or LMTP with -L), reads
// every byte of each message and stores nothing, so the same smtp-source load against it
// shows how fast this machine's client, loopback and protocol can go at all.
import { spawn } from 'node:child_process';
import { superviseChild, waitForPort, type SystemUser } from './util.js';

export const SMTP_SINK = '/usr/sbin/smtp-sink';

export interface Sink {
  stop(): Promise<void>;
}

/** Starts smtp-sink on 127.0.0.1:port (dropping to `user` when run as root) and waits for the port. */
export async function startSink(port: number, lmtp: boolean, user: SystemUser): Promise<Sink> {
  // -m: allow more simultaneous sessions than any load here uses; -u is required (and allowed) only as root.
  const asUser = process.getuid?.() === 0 ? ['-u', user.name] : [];
  const args = [...(lmtp ? ['-L'] : []), '-m', '1000', ...asUser, `127.0.0.1:${port}`, '1024'];
  const child = superviseChild(spawn(SMTP_SINK, args, { stdio: ['ignore', 'ignore', 'pipe'] }));
  try {
    await waitForPort(port, 10_000);
    if (child.exited()) throw new Error('exited');
  } catch (error) {
    await child.stop();
    throw new Error(`smtp-sink did not start on ${port}: ${child.stderr().trim() || (error instanceof Error ? error.message : String(error))}`);
  }
  return { stop: child.stop };
}
