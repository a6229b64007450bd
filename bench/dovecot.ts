// A throwaway Dovecot instance for the LMTP comparison: only the lmtp protocol, an inet
// listener on a loopback port, a static userdb, and Maildir delivery under the bench temp
// dir as an unprivileged user. Durability is Dovecot's default (mail_fsync = optimized).
import { chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isProgram, mustRun, runCommand, terminateIfProgram, waitForExit, waitForPort, type ReferenceServer, type SystemUser } from './util.js';

export interface DovecotOptions {
  root: string;
  port: number;
  domain: string;
  localPart: string;
  user: SystemUser;
}

function dovecotConf(o: DovecotOptions, dirs: { run: string; state: string; mail: string }): string {
  return `# throwaway instance written by bench/dovecot.ts
instance_name = tern-bench-dovecot
base_dir = ${dirs.run}
state_dir = ${dirs.state}
log_path = ${o.root}/dovecot/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = ${o.user.uid}
mail_location = maildir:~/Maildir
postmaster_address = postmaster@${o.domain}
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=${o.user.uid} gid=${o.user.gid} home=${dirs.mail}/%d/%n
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${o.port}
  }
}
`;
}

/** Writes dovecot.conf now; start() runs the master and waits for the LMTP port, stop() is always safe. */
export async function createDovecot(o: DovecotOptions): Promise<ReferenceServer> {
  const base = join(o.root, 'dovecot');
  const dirs = { run: join(base, 'run'), state: join(base, 'state'), mail: join(base, 'mail') };
  for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true });
  const home = join(dirs.mail, o.domain, o.localPart);
  await mkdir(home, { recursive: true });
  await chown(join(dirs.mail, o.domain), o.user.uid, o.user.gid);
  await chown(home, o.user.uid, o.user.gid);
  const conf = join(base, 'dovecot.conf');
  await writeFile(conf, dovecotConf(o, dirs));
  const pidFile = join(dirs.run, 'master.pid');

  const stop = async (): Promise<void> => {
    const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
    if (!isProgram(pid, 'dovecot')) return;
    const stopped = await runCommand('/usr/bin/doveadm', ['-c', conf, 'stop'], { timeoutMs: 30_000 });
    if (stopped.code !== 0) terminateIfProgram(pid, 'dovecot');
    await waitForExit(pid, 'dovecot', 10_000);
  };

  const start = async (): Promise<void> => {
    try {
      await mustRun('/usr/sbin/dovecot', ['-c', conf], { timeoutMs: 30_000 });
      await waitForPort(o.port, 20_000);
    } catch (error) {
      const log = await readFile(join(base, 'dovecot.log'), 'utf8').catch(() => '');
      const detail = log.trim().split('\n').slice(-3).join(' | ');
      throw new Error(`${error instanceof Error ? error.message : String(error)} ${detail}`.trim());
    }
  };
  const maildirNew = join(home, 'Maildir', 'new');
  return { name: 'Dovecot', maildirNew, logFile: join(base, 'dovecot.log'), deliveryLogText: 'saved mail to', start, stop };
}
