// A throwaway Dovecot IMAP server for the IMAP comparison: its own config file in the
// bench temp dir (never /etc/dovecot), only the imap protocol on a loopback port, one user
// in a passwd-file with a plain password, Maildir under the temp dir owned by the bench's
// unprivileged user, no TLS, and Dovecot's default durability (mail_fsync = optimized).
// The master runs as root, as a packaged Dovecot does; stop() uses doveadm stop, then a signal.
import { chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isProgram, mustRun, runCommand, terminateIfProgram, waitForExit, waitForPort, type SystemUser } from './util.js';

export interface DovecotImapOptions {
  /** The bench temp dir; the instance lives in <root>/dovecot-imap. */
  root: string;
  port: number;
  /** Login name and password of the one account. */
  user: string;
  password: string;
  /** Owns the Maildir; Dovecot's imap processes run as this user. */
  owner: SystemUser;
}

export interface DovecotImap {
  /** "2.3.19.1 (9b53102964)" */
  version: string;
  logFile: string;
  /** The account's Maildir. */
  maildir: string;
  /** The master process id (0 when not running). */
  pid(): Promise<number>;
  /**
   * Writes messages straight into an existing folder's Maildir cur/ (LF line ends, as Dovecot
   * saves them; no fsync), owned by the mail user: Dovecot indexes them at the next SELECT.
   */
  writeMaildir(folder: string, count: number, message: (i: number) => Buffer): Promise<void>;
  start(): Promise<void>;
  /** Safe to call whether or not start() ran or succeeded. */
  stop: () => Promise<void>;
}

interface Dirs {
  base: string;
  run: string;
  state: string;
  mail: string;
  passwd: string;
}

/** Dovecot 2.3 (Debian 12) settings; 2.4 renamed the mail and auth ones. */
function dovecotConf(o: DovecotImapOptions, d: Dirs, major24: boolean): string {
  const common = `instance_name = tern-bench-dovecot-imap
base_dir = ${d.run}
state_dir = ${d.state}
log_path = ${d.base}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = ${o.owner.uid}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${o.port}
  }
  inet_listener imaps {
    port = 0
  }
}
protocol imap {
  # The default is 10 connections per user and IP: the mixed workload opens 10 clients
  # besides the main one, and the same limits are raised for Tern.
  mail_max_userip_connections = 1000
}
`;
  if (major24) {
    return `# throwaway instance written by bench/dovecot-imap.ts (Dovecot 2.4 syntax)
dovecot_config_version = 2.4.0
dovecot_storage_version = 2.4.0
${common}auth_allow_cleartext = yes
mail_driver = maildir
mail_path = ${d.mail}/%{user}/Maildir
passdb passwd-file {
  passwd_file_path = ${d.passwd}
}
userdb passwd-file {
  passwd_file_path = ${d.passwd}
}
`;
  }
  return `# throwaway instance written by bench/dovecot-imap.ts (Dovecot 2.3 syntax)
${common}disable_plaintext_auth = no
mail_location = maildir:${d.mail}/%u/Maildir
passdb {
  driver = passwd-file
  args = username_format=%u ${d.passwd}
}
userdb {
  driver = passwd-file
  args = username_format=%u ${d.passwd}
}
`;
}

/** Writes the config, passwd-file and Maildir root now; start() runs the master and waits for the port. */
export async function createDovecotImap(o: DovecotImapOptions): Promise<DovecotImap> {
  const base = join(o.root, 'dovecot-imap');
  const d: Dirs = { base, run: join(base, 'run'), state: join(base, 'state'), mail: join(base, 'mail'), passwd: join(base, 'passwd') };
  for (const dir of [d.run, d.state, d.mail]) await mkdir(dir, { recursive: true });
  const home = join(d.mail, o.user);
  await mkdir(home, { recursive: true });
  await chown(home, o.owner.uid, o.owner.gid);
  const version = (await mustRun('/usr/sbin/dovecot', ['--version'])).stdout.trim();
  const major24 = !/^2\.[0-3]\./.test(version);
  // user:password:uid:gid:gecos:home:shell:extra_fields
  await writeFile(d.passwd, `${o.user}:{PLAIN}${o.password}:${o.owner.uid}:${o.owner.gid}::${home}::\n`, { mode: 0o644 });
  const conf = join(base, 'dovecot.conf');
  await writeFile(conf, dovecotConf(o, d, major24));
  const pidFile = join(d.run, 'master.pid');
  const logFile = join(base, 'dovecot.log');
  const pid = async (): Promise<number> => {
    const value = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
    return isProgram(value, 'dovecot') ? value : 0;
  };

  const stop = async (): Promise<void> => {
    const master = await pid();
    if (!master) return;
    const stopped = await runCommand('/usr/bin/doveadm', ['-c', conf, 'stop'], { timeoutMs: 30_000 });
    if (stopped.code !== 0) terminateIfProgram(master, 'dovecot');
    await waitForExit(master, 'dovecot', 10_000);
  };

  const start = async (): Promise<void> => {
    try {
      await mustRun('/usr/sbin/dovecot', ['-c', conf], { timeoutMs: 30_000 });
      await waitForPort(o.port, 20_000);
    } catch (error) {
      const log = await readFile(logFile, 'utf8').catch(() => '');
      const detail = log.trim().split('\n').slice(-3).join(' | ');
      throw new Error(`${error instanceof Error ? error.message : String(error)} ${detail}`.trim());
    }
  };
  const maildir = join(home, 'Maildir');
  const writeMaildir = async (folder: string, count: number, message: (i: number) => Buffer): Promise<void> => {
    const cur = join(maildir, `.${folder}`, 'cur');
    const host = hostname().replace(/[/:]/g, '_');
    const seconds = Math.floor(Date.now() / 1000);
    let next = 0;
    const writer = async (): Promise<void> => {
      for (let i = next++; i < count; i = next++) {
        const crlf = message(i);
        const lf = Buffer.from(crlf.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
        const file = join(cur, `${seconds}.M${i}P${process.pid}.${host},S=${lf.length},W=${crlf.length}:2,`);
        await writeFile(file, lf);
        await chown(file, o.owner.uid, o.owner.gid);
      }
    };
    await Promise.all(Array.from({ length: 16 }, writer));
  };
  return { version, logFile, maildir, pid, start, stop, writeMaildir };
}
