// A throwaway Postfix instance for the inbound SMTP comparison: its own config, queue
// and data directories under the bench temp dir, smtpd on a loopback port, and virtual(8)
// delivery into a Maildir. Durability is Postfix's default (queue file and Maildir file
// are fsynced before the 250 and before the delivery is recorded, respectively).
// Relay mode (the queue phase) is a submission service: clients must authenticate (Cyrus
// SASL, AUTH PLAIN against a sasldb under the bench temp dir) to relay, and an optional
// milter (OpenDKIM) signs each message at acceptance.
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isProgram, mustRun, runCommand, terminateIfProgram, waitForExit, waitForPort, type ReferenceServer, type SystemUser } from './util.js';

export interface PostfixOptions {
  root: string;
  port: number;
  domain: string;
  localPart: string;
  user: SystemUser;
  /** Relay mode (the queue phase): authenticated clients relay through smtpd to this port, held until released. */
  relayPort?: number;
  /** Relay mode: a milter every message passes at acceptance, e.g. OpenDKIM's `unix:PATH`. */
  milter?: string;
  /** Its own directory under root (several instances in one run). */
  name?: string;
}

export interface PostfixServer extends ReferenceServer {
  /** Relay mode: releases the held queue and flushes it. */
  release(): Promise<void>;
  /** Relay mode: the SASL login clients must use (`<localPart>@<domain>`, a random password). */
  login: { user: string; pass: string };
  /** Messages queued now, and how many of them have a `name:` header. */
  queuedWithHeader(name: string): Promise<{ queued: number; withHeader: number }>;
}

/**
 * A relay instance's extra settings: only SASL-authenticated clients may relay (not
 * mynetworks), each only as its own address (as Tern's submission checks the sender),
 * everything goes to the relay port, delivery waits for release().
 */
function relayCf(o: PostfixOptions, relayPort: number, conf: string): string {
  const milter = o.milter
    ? `smtpd_milters = ${o.milter}
non_smtpd_milters = $smtpd_milters
# When the milter does not answer, the message is refused (4xx), not queued unsigned.
milter_default_action = tempfail
`
    : '';
  return `relayhost = [127.0.0.1]:${relayPort}
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = ${conf}/sasl
smtpd_sasl_security_options = noanonymous
smtpd_sender_login_maps = texthash:${conf}/senders
smtpd_sender_restrictions = reject_sender_login_mismatch
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtp_tls_security_level = none
defer_transports = smtp
${milter}`;
}

/** Cyrus SASL for smtpd, in process: PLAIN and LOGIN checked against a sasldb only this instance reads. */
async function writeSasl(conf: string, login: { user: string; pass: string }, domain: string): Promise<void> {
  const dir = join(conf, 'sasl');
  const db = join(dir, 'sasldb2');
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await writeFile(join(dir, 'smtpd.conf'), `pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: ${db}\n`);
  // The login is user@realm; sasldb keys it by the part before the @ and the realm.
  const name = login.user.slice(0, login.user.lastIndexOf('@'));
  await mustRun('/usr/sbin/saslpasswd2', ['-c', '-p', '-f', db, '-u', domain, name], { input: login.pass, timeoutMs: 30_000 });
  // smtpd reads it after dropping to the postfix user.
  const postfixGid = Number((await mustRun('id', ['-g', 'postfix'])).stdout.trim());
  await chown(db, 0, postfixGid);
  await chmod(db, 0o640);
  await writeFile(join(conf, 'senders'), `${login.user} ${login.user}\n`);
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
export async function createPostfix(o: PostfixOptions): Promise<PostfixServer> {
  const base = join(o.root, o.name ?? 'postfix');
  const dirs = { base, conf: join(base, 'conf'), queue: join(base, 'queue'), data: join(base, 'data'), mail: join(base, 'mail') };
  // postfix check creates the queue's subdirectories and data_directory, not the queue itself.
  for (const dir of [dirs.conf, dirs.queue]) await mkdir(dir, { recursive: true, mode: 0o755 });
  await chmod(base, 0o755);
  await mkdir(dirs.mail, { recursive: true });
  await chown(dirs.mail, o.user.uid, o.user.gid);
  await writeFile(join(dirs.conf, 'main.cf'), mainCf(o, dirs) + (o.relayPort ? relayCf(o, o.relayPort, dirs.conf) : ''));
  const login = { user: `${o.localPart}@${o.domain}`, pass: randomBytes(12).toString('hex') };
  if (o.relayPort) await writeSasl(dirs.conf, login, o.domain);
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
  const queuedWithHeader = async (name: string): Promise<{ queued: number; withHeader: number }> => {
    const ids = await queueIds(dirs.queue);
    const header = new RegExp(`^${name}:`, 'im');
    let withHeader = 0;
    // postcat -q finds each file in whichever queue it is in by then; -h prints its headers as they will be sent, -e the
    // envelope, whose "*** ENVELOPE RECORDS" line starts each message.
    for (let at = 0; at < ids.length; at += 500) {
      const out = await mustRun('/usr/sbin/postcat', ['-c', dirs.conf, '-e', '-h', '-q', ...ids.slice(at, at + 500)], { timeoutMs: 120_000 });
      withHeader += out.stdout.split(/^\*\*\* ENVELOPE RECORDS /m).filter((message) => header.test(message)).length;
    }
    return { queued: ids.length, withHeader };
  };
  return { name: 'Postfix', maildirNew, logFile: join(base, 'maillog'), deliveryLogText: 'status=sent', start, stop, release, login, queuedWithHeader };
}

/** The ids of the messages in a queue directory's incoming, active, deferred and hold queues (hashed subdirectories included). */
async function queueIds(queueDir: string): Promise<string[]> {
  // A set: a message qmgr moves from active to deferred while these are read is seen twice.
  const ids = new Set<string>();
  for (const queue of ['incoming', 'active', 'deferred', 'hold']) {
    const entries = await readdir(join(queueDir, queue), { recursive: true, withFileTypes: true }).catch(() => []);
    for (const entry of entries) if (entry.isFile()) ids.add(entry.name);
  }
  return [...ids];
}
