/**
 * A throwaway Dovecot (Debian's dovecot-imapd and dovecot-lmtpd) for tests: its own config
 * in a temp dir (never /etc/dovecot), IMAP and LMTP on free loopback ports (never 143, 993
 * or 24), users in a passwd-file with plain passwords, Maildir at ~/Maildir owned by
 * `nobody` (Dovecot refuses to serve mail as root), no TLS. The master runs in the
 * foreground as our child (`dovecot -F`) and is stopped by its pid; a system Dovecot is
 * never touched.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { freePort, tempDir } from './tern.js';

/** The unprivileged user Dovecot's mail processes run as. */
export const MAIL_UID = 65534;
export const MAIL_GID = 65534;

export interface Dovecot {
  root: string;
  /** Where the users' homes are: homes/<domain>/<local part>. */
  homes: string;
  imapPort: number;
  lmtpPort: number;
  /** ~/Maildir of a user. */
  maildir(user: string): string;
  log(): string;
  stop(): Promise<void>;
}

export const hasDovecot = (): boolean => spawnSync('/usr/sbin/dovecot', ['--version']).status === 0;

/** Gives a tree to the mail user (what Tern wrote as root, before Dovecot serves it). */
export function chownTree(path: string): void {
  const r = spawnSync('chown', ['-R', `${MAIL_UID}:${MAIL_GID}`, path]);
  if (r.status !== 0) throw new Error(`chown -R ${path} failed: ${String(r.stderr)}`);
}

async function waitForPort(port: number, ms: number, log: () => string): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        res(true);
      });
      s.once('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`dovecot did not listen on ${port}: ${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startDovecot(users: string[], password: string): Promise<Dovecot> {
  const root = tempDir('tern-dovecot-');
  chmodSync(root, 0o755); // the mail user walks through it to the homes
  const dirs = { run: join(root, 'run'), state: join(root, 'state'), homes: join(root, 'homes') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  chmodSync(dirs.homes, 0o755);
  /** homes/<domain>/<local part>: the layout of Tern's Maildir delivery mode (delivery/maildir-target.ts). */
  const home = (user: string) => join(dirs.homes, user.slice(user.lastIndexOf('@') + 1), user.slice(0, user.lastIndexOf('@')));
  const lines = users.map((u) => {
    mkdirSync(home(u), { recursive: true });
    chmodSync(dirname(home(u)), 0o755);
    chownSync(home(u), MAIL_UID, MAIL_GID);
    return `${u}:{PLAIN}${password}:${MAIL_UID}:${MAIL_GID}::${home(u)}::\n`;
  });
  const passwd = join(root, 'passwd');
  writeFileSync(passwd, lines.join(''), { mode: 0o644 });
  const imapPort = await freePort();
  const lmtpPort = await freePort();
  const logFile = join(root, 'dovecot.log');
  const conf = join(root, 'dovecot.conf');
  writeFileSync(
    conf,
    `# written by test/helpers/dovecot.ts (Dovecot 2.3 syntax)
instance_name = tern-test-${process.pid}-${imapPort}
base_dir = ${dirs.run}
state_dir = ${dirs.state}
log_path = ${logFile}
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = ${MAIL_UID}
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = username_format=%u ${passwd}
}
userdb {
  driver = passwd-file
  args = username_format=%u ${passwd}
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${imapPort}
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${lmtpPort}
  }
}
protocol lmtp {
  postmaster_address = postmaster@example.test
}
`,
  );
  const log = () => readFileSync(logFile, 'utf8').split('\n').slice(-10).join('\n');
  const proc: ChildProcess = spawn('/usr/sbin/dovecot', ['-c', conf, '-F'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((res) => proc.once('exit', () => res()));
  try {
    await waitForPort(
      imapPort,
      15_000,
      () =>
        `${out} ${(() => {
          try {
            return log();
          } catch {
            return '';
          }
        })()}`,
    );
    await waitForPort(lmtpPort, 15_000, () => out);
  } catch (err) {
    proc.kill('SIGTERM');
    throw err;
  }
  return {
    root,
    homes: dirs.homes,
    imapPort,
    lmtpPort,
    maildir: (user) => join(home(user), 'Maildir'),
    log,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}

/** Delivers messages over LMTP (RFC 2033), one transaction each; resolves when every one got 250. */
export async function lmtpDeliver(port: number, to: string, messages: string[]): Promise<void> {
  const socket = connect(port, '127.0.0.1');
  let buffer = '';
  const waiters: Array<(line: string) => void> = [];
  socket.on('data', (d: Buffer) => {
    buffer += d.toString();
    let i;
    while ((i = buffer.indexOf('\r\n')) >= 0) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 2);
      if (/^\d{3} /.test(line)) waiters.shift()?.(line);
    }
  });
  const reply = () => new Promise<string>((res) => waiters.push(res));
  const expect = async (code: string, send?: string) => {
    const waiting = reply();
    if (send !== undefined) socket.write(send);
    const line = await waiting;
    if (!line.startsWith(code)) throw new Error(`LMTP: expected ${code}, got ${line}`);
  };
  await expect('220');
  await expect('250', 'LHLO tern.test\r\n');
  for (const m of messages) {
    await expect('250', 'MAIL FROM:<sender@remote.test>\r\n');
    await expect('250', `RCPT TO:<${to}>\r\n`);
    await expect('354', 'DATA\r\n');
    const body = m.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    await expect('250', `${body}${body.endsWith('\r\n') ? '' : '\r\n'}.\r\n`);
  }
  socket.end('QUIT\r\n');
}
