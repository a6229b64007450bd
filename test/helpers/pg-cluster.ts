/**
 * Throwaway PostgreSQL clusters for tests and benchmarks, so nothing ever stops or changes
 * a cluster it did not start. Used by scripts/run-tests.mjs (one cluster for a whole run),
 * by tests that stop, restart or freeze a server (each starts its own), and by bench/.
 *
 *   const pg = await startPgCluster();   // initdb in a temp dir, pg_ctl -w start
 *   pg.url            postgres://postgres@127.0.0.1:<port>/postgres (trust auth, no password)
 *   pg.port           free loopback port, kept across stop()/start()
 *   pg.dataDir        the cluster's data directory (socketDir holds its unix socket)
 *   pg.postmasterPid()  the running postmaster's pid, or undefined when stopped
 *   pg.pids()         postmaster and all its children: SIGSTOP them all to simulate a hung server
 *   await pg.stop()   fast shutdown (pg_ctl -m fast -w); data kept
 *   await pg.start()  starts the same cluster again on the same port
 *   await pg.destroy()  immediate shutdown and removal of the temp dir (idempotent)
 *   pg.destroySync()  the same, synchronously, for process 'exit' handlers
 *
 * The server listens on 127.0.0.1 only, with its unix socket in the temp dir, and keeps
 * PostgreSQL's default durability (fsync, synchronous_commit, full_page_writes on); extra
 * settings can be passed. Binaries come from the highest /usr/lib/postgresql/<version>/bin
 * (Debian's `postgresql` package). initdb refuses to run as root, so under root the
 * cluster belongs to and runs as the `postgres` system user the package creates.
 * Clusters whose creating process has died (e.g. a SIGKILLed test run) are removed by
 * the next startPgCluster().
 */
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const DIR_PREFIX = 'tern-pg-';
const OWNER_FILE = 'owner.pid';
const COMMAND_TIMEOUT_MS = 120_000;

export interface PgClusterOptions {
  /** Extra postgresql.conf settings (name → value, written as `name = 'value'`). */
  settings?: Record<string, string | number>;
}

export interface PgCluster {
  url: string;
  port: number;
  dataDir: string;
  socketDir: string;
  postmasterPid(): number | undefined;
  pids(): number[];
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
  destroySync(): void;
}

/** The highest installed PostgreSQL server's bin directory, or undefined. */
export function findPgBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => /^\d+(\.\d+)?$/.test(v) && existsSync(join(root, v, 'bin/initdb')) && existsSync(join(root, v, 'bin/pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

interface RunAs {
  uid: number;
  gid: number;
}

/** Under root: the `postgres` system user's ids; otherwise run as ourselves. */
function serverUser(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  const uid = id('-u');
  const gid = id('-g');
  if (uid.status !== 0 || gid.status !== 0) {
    throw new Error('running as root, but there is no "postgres" system user to own a throwaway cluster (install Debian\'s postgresql package)');
  }
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Runs a PostgreSQL program (as the server user); resolves on exit 0, else rejects with its output. */
function run(file: string, args: string[], cwd: string, user: RunAs | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], ...(user ?? {}), env: { ...process.env, LC_ALL: 'C' } });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), COMMAND_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // 'exit', not 'close': a started postmaster may inherit the pipes.
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${file} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${output}`));
    });
  });
}

function readPostmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return pid > 0 && isAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `pid` and all its descendants, from /proc. */
function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Fields after the parenthesised command name: state, ppid, ...
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // The process exited while we looked.
    }
  }
  const out: number[] = [];
  const visit = (p: number) => {
    out.push(p);
    for (const c of children.get(p) ?? []) visit(c);
  };
  visit(pid);
  return out;
}

/** Asks the postmaster for an immediate shutdown (SIGQUIT); returns its pid, or undefined when not running. */
function shutdownImmediately(dataDir: string): number | undefined {
  const pid = readPostmasterPid(dataDir);
  if (pid === undefined) return undefined;
  try {
    process.kill(pid, 'SIGQUIT');
  } catch {
    // Already gone.
  }
  return pid;
}

function killTree(pid: number): void {
  for (const p of processTree(pid)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/** Immediate shutdown and removal of a cluster's temp dir, synchronously (for 'exit' handlers). */
function removeSync(baseDir: string, dataDir: string): void {
  const pid = shutdownImmediately(dataDir);
  if (pid !== undefined) {
    const deadline = Date.now() + 10_000;
    while (isAlive(pid) && Date.now() < deadline) spawnSync('sleep', ['0.05']);
    if (isAlive(pid)) killTree(pid);
  }
  rmSync(baseDir, { recursive: true, force: true });
}

async function remove(baseDir: string, dataDir: string): Promise<void> {
  const pid = shutdownImmediately(dataDir);
  if (pid !== undefined) {
    const deadline = Date.now() + 10_000;
    while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (isAlive(pid)) killTree(pid);
  }
  rmSync(baseDir, { recursive: true, force: true });
}

/** Removes clusters left behind by processes that no longer exist (those we may remove: root, or our own). */
function sweepStaleClusters(): void {
  const root = tmpdir();
  const uid = process.getuid?.();
  for (const name of readdirSync(root)) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const baseDir = join(root, name);
    try {
      if (uid !== 0 && statSync(baseDir).uid !== uid) continue;
      const owner = Number(readFileSync(join(baseDir, OWNER_FILE), 'utf8'));
      if (owner > 0 && !isAlive(owner)) removeSync(baseDir, join(baseDir, 'data'));
    } catch {
      // Not (yet) one of ours, or already gone: never a reason to fail a new cluster.
    }
  }
}

/** Creates and starts a throwaway cluster; see the header comment for the API. */
export async function startPgCluster(opts: PgClusterOptions = {}): Promise<PgCluster> {
  const binDir = findPgBinDir();
  if (!binDir) throw new Error("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (install Debian's postgresql package)");
  const user = serverUser();
  sweepStaleClusters();

  const baseDir = mkdtempSync(join(tmpdir(), DIR_PREFIX));
  writeFileSync(join(baseDir, OWNER_FILE), String(process.pid));
  const dataDir = join(baseDir, 'data');
  const logFile = join(baseDir, 'server.log');
  if (user) chownSync(baseDir, user.uid, user.gid);
  const pgCtl = (args: string[]) => run(join(binDir, 'pg_ctl'), ['-D', dataDir, ...args], baseDir, user);
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n') : '');

  try {
    // --no-sync only skips initdb's own final fsync of a directory that is thrown away anyway.
    await run(join(binDir, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-locale', '--no-sync'], baseDir, user);
    const baseConfig = readFileSync(join(dataDir, 'postgresql.conf'), 'utf8');
    const settings: Record<string, string | number> = {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: baseDir,
      fsync: 'on',
      synchronous_commit: 'on',
      full_page_writes: 'on',
      max_connections: 300,
      ...opts.settings,
    };
    // A free port can be taken between our probe and the server's bind: try a few.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const lines = Object.entries({ ...settings, port }).map(([k, v]) => `${k} = '${String(v).replace(/'/g, "''")}'`);
      writeFileSync(join(dataDir, 'postgresql.conf'), `${baseConfig}\n# tern throwaway test cluster\n${lines.join('\n')}\n`);
      try {
        await pgCtl(['-l', logFile, '-w', '-t', '60', 'start']);
      } catch (err) {
        if (attempt < 5 && /could not bind|already in use/i.test(log())) continue;
        throw new Error(`${(err as Error).message}\nserver log:\n${log()}`, { cause: err });
      }
      let destroyed = false;
      const cluster: PgCluster = {
        url: `postgres://postgres@127.0.0.1:${port}/postgres`,
        port,
        dataDir,
        socketDir: baseDir,
        postmasterPid: () => readPostmasterPid(dataDir),
        pids() {
          const pid = readPostmasterPid(dataDir);
          return pid === undefined ? [] : processTree(pid);
        },
        async stop() {
          await pgCtl(['-m', 'fast', '-w', '-t', '60', 'stop']);
        },
        async start() {
          await pgCtl(['-l', logFile, '-w', '-t', '60', 'start']).catch((err: Error) => {
            throw new Error(`${err.message}\nserver log:\n${log()}`, { cause: err });
          });
        },
        async destroy() {
          if (destroyed) return;
          destroyed = true;
          await remove(baseDir, dataDir);
        },
        destroySync() {
          if (destroyed) return;
          destroyed = true;
          removeSync(baseDir, dataDir);
        },
      };
      return cluster;
    }
  } catch (err) {
    await remove(baseDir, dataDir);
    throw err;
  }
}
