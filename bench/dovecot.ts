// A throwaway Dovecot instance for the LMTP comparison: only the lmtp protocol, an inet
// listener on a loopback port, a static userdb, and Maildir delivery under the bench temp
// dir as an unprivileged user. Durability is Dovecot's default (mail_fsync = optimized).
import { chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mustRun, runCommand, sleep, waitForPort, type SystemUser } from './util.js';

export interface DovecotInstance {
  maildirNew: string;
  stop(): Promise<void>;
}

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

/** Writes dovecot.conf, starts the master and waits for the LMTP port. */
export async function startDovecot(o: DovecotOptions): Promise<DovecotInstance> {
  const base = join(o.root, 'dovecot');
  const dirs = { run: join(base, 'run'), state: join(base, 'state'), mail: join(base, 'mail') };
  for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true });
  const home = join(dirs.mail, o.domain, o.localPart);
  await mkdir(home, { recursive: true });
  await chown(join(dirs.mail, o.domain), o.user.uid, o.user.gid);
  await chown(home, o.user.uid, o.user.gid);
  const conf = join(base, 'dovecot.conf');
  await writeFile(conf, dovecotConf(o, dirs));

  const stop = async (): Promise<void> => {
    const stopped = await runCommand('/usr/bin/doveadm', ['-c', conf, 'stop'], { timeoutMs: 30_000 });
    if (stopped.code === 0) {
      await sleep(500);
      return;
    }
    const pid = Number((await readFile(join(dirs.run, 'master.pid'), 'utf8').catch(() => '')).trim());
    if (pid > 0) {
      try { process.kill(pid, 'SIGTERM'); } catch { /* already gone */ }
    }
  };

  try {
    await mustRun('/usr/sbin/dovecot', ['-c', conf], { timeoutMs: 30_000 });
    await waitForPort(o.port, 20_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { maildirNew: join(home, 'Maildir', 'new'), stop };
}
