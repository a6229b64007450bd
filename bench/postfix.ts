// A throwaway Postfix instance for the inbound SMTP comparison: its own config, queue
// and data directories under the bench temp dir, smtpd on a loopback port, and virtual(8)
// delivery into a Maildir. Durability is Postfix's default (queue file and Maildir file
// are fsynced before the 250 and before the delivery is recorded, respectively).
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isProgram, mustRun, runCommand, terminateIfProgram, waitForExit, waitForPort, type ReferenceServer, type SystemUser } from './util.js';

export interface PostfixOptions {
  root: string;
  port: number;
  domain: string;
  localPart: string;
  user: SystemUser;
  /** Relay mode (the queue phase): clients on loopback relay through smtpd to this port, held until released. */
  relayPort?: number;
  /** Its own directory under root (several instances in one run). */
  name?: string;
}

/** A relay instance's extra settings: loopback clients may relay, everything goes to the relay port, delivery waits for release(). */
function relayCf(relayPort: number): string {
  return `relayhost = [127.0.0.1]:${relayPort}
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtp_tls_security_level = none
defer_transports = smtp
`;
}

function mainCf(o: PostfixOptions, dirs: { base: string; queue: string; data: string; mail: string; conf: string }): string {
  return `# throwaway instance written by bench/postfix.ts
compatibility_level = 3.6
queue_directory = ${dirs.queue}
data_directory = ${dirs.data}
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = ${dirs.base}/maillog
maillog_file_prefixes = ${dirs.base}
myhostname = postfix-bench.localhost
mydomain = localhost
myorigin = $myhostname
mydestination = localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtpd_banner = $myhostname ESMTP
virtual_mailbox_domains = ${o.domain}
virtual_mailbox_base = ${dirs.mail}
virtual_mailbox_maps = texthash:${dirs.conf}/vmailbox
virtual_uid_maps = static:${o.user.uid}
virtual_gid_maps = static:${o.user.gid}
virtual_minimum_uid = ${o.user.uid}
`;
}

// Only the services this workload touches, none chrooted.
function masterCf(port: number): string {
  const rows = [
    `127.0.0.1:${port} inet n - n - - smtpd`,
    'pickup unix n - n 60 1 pickup',
    'cleanup unix n - n - 0 cleanup',
    'qmgr unix n - n 300 1 qmgr',
    'rewrite unix - - n - - trivial-rewrite',
    'bounce unix - - n - 0 bounce',
    'defer unix - - n - 0 bounce',
    'trace unix - - n - 0 bounce',
    'verify unix - - n - 1 verify',
    'flush unix n - n 1000? 0 flush',
    'proxymap unix - - n - - proxymap',
    'proxywrite unix - - n - 1 proxymap',
    'smtp unix - - n - - smtp',
    'relay unix - - n - - smtp',
    'showq unix n - n - - showq',
    'error unix - - n - - error',
    'retry unix - - n - - error',
    'discard unix - - n - - discard',
    'local unix - n n - - local',
    'virtual unix - n n - - virtual',
    'lmtp unix - - n - - lmtp',
    'anvil unix - - n - 1 anvil',
    'scache unix - - n - 1 scache',
    'postlog unix-dgram n - n - 1 postlogd',
  ];
  return `# throwaway instance written by bench/postfix.ts\n${rows.join('\n')}\n`;
}

/** Writes the config now; start() runs master and waits for the SMTP port, stop() is always safe. */
export async function createPostfix(o: PostfixOptions): Promise<ReferenceServer & { release(): Promise<void> }> {
  const base = join(o.root, o.name ?? 'postfix');
  const dirs = { base, conf: join(base, 'conf'), queue: join(base, 'queue'), data: join(base, 'data'), mail: join(base, 'mail') };
  // postfix check creates the queue's subdirectories and data_directory, not the queue itself.
  for (const dir of [dirs.conf, dirs.queue]) await mkdir(dir, { recursive: true, mode: 0o755 });
  await chmod(base, 0o755);
  await mkdir(dirs.mail, { recursive: true });
  await chown(dirs.mail, o.user.uid, o.user.gid);
  await writeFile(join(dirs.conf, 'main.cf'), mainCf(o, dirs) + (o.relayPort ? relayCf(o.relayPort) : ''));
  await writeFile(join(dirs.conf, 'master.cf'), masterCf(o.port));
  const mailbox = `${o.domain}/${o.localPart}/`;
  await writeFile(join(dirs.conf, 'vmailbox'), `${o.localPart}@${o.domain} ${mailbox}\n`);

  const pidFile = join(dirs.queue, 'pid', 'master.pid');
  const stop = async (): Promise<void> => {
    const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
    if (!isProgram(pid, 'master')) return;
    const stopped = await runCommand('/usr/sbin/postfix', ['-c', dirs.conf, 'stop'], { timeoutMs: 30_000 });
    // Fall back to signalling master directly if postfix stop could not.
    if (stopped.code !== 0) terminateIfProgram(pid, 'master');
    await waitForExit(pid, 'master', 10_000);
  };

  // `postfix start` runs `postfix check`, which creates the queue directories with the right owners.
  const start = async (): Promise<void> => {
    try {
      await mustRun('/usr/sbin/postfix', ['-c', dirs.conf, 'start'], { timeoutMs: 60_000 });
      await waitForPort(o.port, 20_000);
    } catch (error) {
      // postfix(1) reports to stderr only on a terminal; its log file says why it failed.
      const maillog = await readFile(join(base, 'maillog'), 'utf8').catch(() => '');
      const detail = maillog.trim().split('\n').slice(-3).join(' | ');
      throw new Error(`${error instanceof Error ? error.message : String(error)} ${detail}`.trim());
    }
  };
  const maildirNew = join(dirs.mail, mailbox, 'new');
  // Relay mode: delivery starts when the held (deferred-transport) queue is released and flushed.
  const release = async (): Promise<void> => {
    await mustRun('/usr/sbin/postconf', ['-c', dirs.conf, '-e', 'defer_transports ='], { timeoutMs: 30_000 });
    await mustRun('/usr/sbin/postfix', ['-c', dirs.conf, 'reload'], { timeoutMs: 30_000 });
    await mustRun('/usr/sbin/postqueue', ['-c', dirs.conf, '-f'], { timeoutMs: 30_000 });
  };
  return { name: 'Postfix', maildirNew, logFile: join(base, 'maillog'), deliveryLogText: 'status=sent', start, stop, release };
}
