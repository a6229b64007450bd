// A throwaway OpenDKIM signer (Debian's opendkim daemon) for the queue phase's Postfix: its
// own config and key under the bench temp dir (nothing in /etc), signing mode for one
// domain with an RSA 2048 key and relaxed/relaxed canonicalization, as Tern signs; a
// milter on a unix socket (as Debian configures it), run in the foreground as the bench's
// child and stopped by it. Over a loopback TCP socket instead, Postfix's accept rate with
// it was about 200 msg/s against 320-430 on the unix socket (2 cores).
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chown, mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { sleep, superviseChild, type SystemUser } from './util.js';

export const OPENDKIM = '/usr/sbin/opendkim';

export interface OpenDkimOptions {
  root: string;
  /** Its own directory under root. */
  name: string;
  domain: string;
  selector: string;
  /** The unprivileged user it runs as (UserID) and that owns its key. */
  user: SystemUser;
}

export interface OpenDkim {
  /** The milter address for Postfix's smtpd_milters (`unix:PATH`). */
  milter: string;
  start(): Promise<void>;
  /** Safe to call whether or not start() ran or succeeded. */
  stop: () => Promise<void>;
}

// Debian's defaults where the bench has no reason to differ (Syslog, OversignHeaders).
function opendkimConf(o: OpenDkimOptions, dir: string): string {
  return `# throwaway instance written by bench/opendkim.ts
Mode s
Domain ${o.domain}
Selector ${o.selector}
KeyFile ${dir}/${o.selector}.private
# Its safe-key check refuses any world-writable directory above the key, /tmp included.
RequireSafeKeys false
Canonicalization relaxed/relaxed
SignatureAlgorithm rsa-sha256
OversignHeaders From
Socket local:${dir}/opendkim.sock
PidFile ${dir}/opendkim.pid
UserID ${o.user.name}
# Postfix's smtpd connects as the postfix user, which is not in the bench user's group.
UMask 000
Syslog yes
`;
}

/** Writes the key (and its DNS record, for checking signatures by hand) and the config now; start() runs the daemon. */
export async function createOpenDkim(o: OpenDkimOptions): Promise<OpenDkim> {
  const dir = join(o.root, o.name);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  // OpenDKIM makes its socket and pid file after dropping to the user.
  await chown(dir, o.user.uid, o.user.gid);
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'der' },
  });
  // Private to the user OpenDKIM runs as, as its safe-key check would want were it on.
  const keyFile = join(dir, `${o.selector}.private`);
  await writeFile(keyFile, privateKey, { mode: 0o600 });
  await chown(keyFile, o.user.uid, o.user.gid);
  await writeFile(join(dir, `${o.selector}.txt`), `${o.selector}._domainkey.${o.domain} TXT "v=DKIM1; k=rsa; p=${publicKey.toString('base64')}"\n`);
  const conf = join(dir, 'opendkim.conf');
  const socket = join(dir, 'opendkim.sock');
  await writeFile(conf, opendkimConf(o, dir));

  let child: ReturnType<typeof superviseChild> | null = null;
  const stop = async (): Promise<void> => {
    await child?.stop();
  };
  const start = async (): Promise<void> => {
    // -f: stay in the foreground, so the bench owns the process; -x: this config, not /etc/opendkim.conf.
    const daemon = superviseChild(spawn(OPENDKIM, ['-f', '-x', conf], { stdio: ['ignore', 'ignore', 'pipe'] }));
    child = daemon;
    try {
      await waitForSocket(socket, 10_000, daemon.exited);
    } catch (error) {
      await stop();
      throw new Error(`opendkim did not start on ${socket}: ${daemon.stderr().trim() || (error instanceof Error ? error.message : String(error))}`);
    }
  };
  return { milter: `unix:${socket}`, start, stop };
}

function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ path });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Polls until something accepts connections on a unix socket; throws when `gone()` or after timeoutMs. */
async function waitForSocket(path: string, timeoutMs: number, gone: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await canConnect(path))) {
    if (gone()) throw new Error('exited');
    if (Date.now() > deadline) throw new Error(`nothing is listening on ${path} after ${timeoutMs} ms`);
    await sleep(100);
  }
}
