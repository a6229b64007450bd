/**
 * A throwaway rspamd (Debian's package) for tests: its normal worker on a free loopback
 * port, Debian's configuration with the test's overrides in a temp dir passed as
 * LOCAL_CONFDIR (nothing under /etc is touched), no DNS (a resolver that does not answer),
 * and actions set so a verdict depends on the message only: GTUBE is rejected, a message
 * scoring 2.5 or more (missing Date and Message-ID, +3.5) gets "add header".
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, tempDir } from './tern.js';

export const RSPAMD_BIN = '/usr/bin/rspamd';
export const rspamdInstalled = () => existsSync(RSPAMD_BIN);

export interface TestRspamd {
  url: string;
  stop(): Promise<void>;
}

export async function startRspamd(): Promise<TestRspamd> {
  const dir = tempDir('tern-rspamd-');
  for (const d of ['local.d', 'db', 'run', 'log']) mkdirSync(join(dir, d), { recursive: true });
  const [normal, controller, proxy] = [await freePort(), await freePort(), await freePort()];
  const conf = (name: string, text: string) => writeFileSync(join(dir, 'local.d', name), text);
  conf('worker-normal.inc', `bind_socket = "127.0.0.1:${normal}";\n`);
  conf('worker-controller.inc', `bind_socket = "127.0.0.1:${controller}";\n`);
  conf('worker-proxy.inc', `bind_socket = "127.0.0.1:${proxy}";\n`);
  conf('options.inc', 'gtube_patterns = "all";\ndns { nameserver = ["127.0.0.1:9"]; timeout = 1s; retransmits = 1; }\n');
  conf('actions.conf', 'reject = 1000;\nadd_header = 2.5;\ngreylist = null;\n');
  conf('logging.inc', 'type = "file";\nfilename = "$LOGDIR/rspamd.log";\nlevel = "warning";\n');
  const vars = ['LOCAL_CONFDIR', dir, 'DBDIR', join(dir, 'db'), 'RUNDIR', join(dir, 'run'), 'LOGDIR', join(dir, 'log')];
  const args = ['-f', '-i', '-c', '/etc/rspamd/rspamd.conf'];
  for (let i = 0; i < vars.length; i += 2) args.push('--var', `${vars[i]}=${vars[i + 1]}`);
  if (process.getuid?.() === 0) args.push('-u', 'root', '-g', 'root');
  const proc: ChildProcess = spawn(RSPAMD_BIN, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${normal}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1000) })).ok) break;
    } catch {
      // not listening yet
    }
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`rspamd did not start:\n${out.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
