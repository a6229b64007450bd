// Tern's memory with thousands of IMAP connections in IDLE: opens them (raw sockets, each
// LOGIN, SELECT INBOX, IDLE), reads the server's VmRSS, delivers one message over SMTP
// and counts the connections that are told "* N EXISTS" about it, and how soon.
import { ImapClient } from './imap-client.js';
import { openSession, type ImapEndpoint } from './imap-steps.js';
import { spread, type Spread } from './large.js';
import { readMemory } from './rss.js';
import { sendMessage } from './smtp-client.js';
import { ADDRESS, errorText, mib, SENDER } from './context.js';
import { runCommand, sleep } from './util.js';

export interface ImapIdleResult {
  ok: boolean;
  error?: string;
  /** Connections asked for, and how many reached IDLE. */
  connections: number;
  idling: number;
  openSeconds?: number;
  /** Connections brought to IDLE per second (LOGIN's password hash dominates). */
  openedPerSecond?: number;
  /** Messages in INBOX (what each SELECT loaded). */
  inboxMessages?: number;
  rssBeforeMiB?: number | null;
  rssIdleMiB?: number | null;
  /** After the delivery and its EXISTS pushes. */
  rssAfterMiB?: number | null;
  hwmMiB?: number | null;
  /** Connections told EXISTS within the wait, and the delay from the SMTP 250 to each. */
  existsSeen?: number;
  existsWaitSeconds?: number;
  existsMs?: Spread | null;
  /** The open-files limits (bench process; server) in force. */
  openFiles?: string;
}

const OPEN_CONCURRENCY = 64;
const EXISTS_WAIT_MS = 30_000;

/**
 * Raises this process's open-files limit (prlimit); where the hard limit may not be raised
 * (no CAP_SYS_RESOURCE, e.g. in a container) the soft one goes up to it. Returns the soft limit in force.
 */
async function raiseOpenFiles(wanted: number): Promise<string> {
  const raised = await runCommand('prlimit', ['--pid', String(process.pid), `--nofile=${wanted}:${wanted}`]);
  if (raised.code !== 0) {
    const hard = await runCommand('prlimit', ['--pid', String(process.pid), '--nofile', '--output', 'HARD', '--noheadings']);
    const limit = hard.stdout.trim();
    if (/^\d+$/.test(limit)) await runCommand('prlimit', ['--pid', String(process.pid), `--nofile=${Math.min(wanted, Number(limit))}:`]);
  }
  const now = await runCommand('prlimit', ['--pid', String(process.pid), '--nofile', '--output', 'SOFT', '--noheadings']);
  return now.stdout.trim() || '?';
}

export interface IdleOptions {
  endpoint: ImapEndpoint;
  connections: number;
  openSeconds: number;
  serverPid: number;
  smtpPort: number;
  log(line: string): void;
}

export async function idleConnections(o: IdleOptions): Promise<ImapIdleResult> {
  const result: ImapIdleResult = { ok: false, connections: o.connections, idling: 0 };
  const clients: ImapClient[] = [];
  try {
    const benchLimit = await raiseOpenFiles(Math.max(65536, o.connections + 4096));
    const serverLimit = /Max open files\s+(\d+)/.exec((await runCommand('cat', [`/proc/${o.serverPid}/limits`])).stdout)?.[1] ?? '?';
    result.openFiles = `bench ${benchLimit}, server ${serverLimit}`;
    result.rssBeforeMiB = mib(readMemory(o.serverPid)?.rssKiB);
    const seen = new Map<ImapClient, number>();
    let firstError: string | undefined;
    const startedAt = performance.now();
    const deadline = Date.now() + o.openSeconds * 1000;
    let next = 0;
    const opener = async (): Promise<void> => {
      while (next < o.connections && Date.now() < deadline) {
        next += 1;
        try {
          const client = await openSession(o.endpoint);
          clients.push(client);
          result.inboxMessages = await client.select('INBOX');
          client.onUntagged = (line) => {
            if (/^\* \d+ EXISTS/i.test(line) && !seen.has(client)) seen.set(client, performance.now());
          };
          await client.idle();
          result.idling += 1;
          if (result.idling % 1000 === 0) o.log(`  ${result.idling} connections in IDLE`);
        } catch (error) {
          firstError ??= errorText(error);
        }
      }
    };
    await Promise.all(Array.from({ length: OPEN_CONCURRENCY }, opener));
    result.openSeconds = (performance.now() - startedAt) / 1000;
    result.openedPerSecond = result.idling / result.openSeconds;
    await sleep(3000);
    const idle = readMemory(o.serverPid);
    result.rssIdleMiB = mib(idle?.rssKiB);
    o.log(
      `  ${result.idling} in IDLE after ${result.openSeconds.toFixed(0)} s; Tern VmRSS ${result.rssIdleMiB?.toFixed(0) ?? '?'} MiB; delivering one message`,
    );

    const sent = await sendMessage({ port: o.smtpPort, from: SENDER, to: ADDRESS, size: 200, timeoutMs: 60_000 });
    const acceptedAt = performance.now();
    if (sent.code !== 250) throw new Error(`SMTP delivery answered ${sent.code} ${sent.reply} ${sent.error ?? ''}`.trim());
    const idling = clients.filter((c) => !c.closed);
    while (seen.size < idling.length && performance.now() - acceptedAt < EXISTS_WAIT_MS) await sleep(100);
    result.existsWaitSeconds = (performance.now() - acceptedAt) / 1000;
    result.existsSeen = seen.size;
    result.existsMs = spread([...seen.values()].map((at) => Math.max(0, at - acceptedAt)));
    await sleep(1000);
    const after = readMemory(o.serverPid);
    result.rssAfterMiB = mib(after?.rssKiB);
    result.hwmMiB = mib(after?.hwmKiB);
    result.ok = result.idling === o.connections && result.existsSeen === result.idling;
    if (!result.ok) {
      const why = [
        result.idling < o.connections ? `${result.idling} of ${o.connections} reached IDLE${firstError ? ` (first failure: ${firstError})` : ''}` : '',
        result.existsSeen < result.idling ? `${result.existsSeen} of ${result.idling} saw EXISTS within ${EXISTS_WAIT_MS / 1000} s` : '',
      ];
      result.error = why.filter(Boolean).join('; ');
    }
  } catch (error) {
    result.error = errorText(error);
  } finally {
    for (const c of clients) c.destroy();
  }
  return result;
}
