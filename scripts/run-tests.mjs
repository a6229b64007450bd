#!/usr/bin/env node
// The whole test command (`npm test`), so a fresh Debian 12 machine passes it right after
// `npm install`:
//  1. removes dist/ and builds (`tsc -p .`, then the admin portal's front end with
//     `node scripts/build-web.mjs`, as `npm run build` does), so a deleted test never runs from a stale file;
//  2. checks the Debian packages the tests drive (swaks with Net::SSLeay for STARTTLS,
//     postfix for smtp-source, openssl, python3, fetchmail, isync, mutt, opendkim-tools, rspamd, pebble, dovecot-imapd and dovecot-lmtpd,
//     the PostgreSQL server binaries, dovecot-core and whois for the password hashes of doveadm pw and mkpasswd,
//     chromium for the admin portal's browser tests); as root
//     it installs the missing ones, otherwise it names them with the apt-get command and
//     exits non-zero;
//  3. starts one throwaway PostgreSQL cluster for the run (test/helpers/pg-cluster.ts) and
//     passes its URL in TERN_TEST_PG_URL, unless TERN_TEST_PG_URL already points at a
//     server; the cluster is removed at the end, also on failure or Ctrl-C;
//  4. runs every compiled test file (dist/test/**/*.test.js) with Node's test runner, one
//     file at a time. Arguments filter files by substring: `node scripts/run-tests.mjs smtp/`.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? find(p) : p.endsWith('.test.js') ? [p] : [];
  });
}

/** What the tests run, and the Debian package that provides it. */
const REQUIRED = [
  { pkg: 'swaks', present: () => existsSync('/usr/bin/swaks') },
  // swaks only recommends it, but needs it for -tls (STARTTLS).
  { pkg: 'libnet-ssleay-perl', present: () => spawnSync('perl', ['-MNet::SSLeay', '-e', '1'], { stdio: 'ignore' }).status === 0 },
  { pkg: 'postfix', present: () => existsSync('/usr/sbin/smtp-source') },
  { pkg: 'openssl', present: () => existsSync('/usr/bin/openssl') },
  { pkg: 'python3', present: () => existsSync('/usr/bin/python3') },
  // A real POP3 client (test/pop3/fetchmail.test.ts).
  { pkg: 'fetchmail', present: () => existsSync('/usr/bin/fetchmail') },
  // Real IMAP clients (test/imap/clients.test.ts): isync syncs a mailbox, mutt reads and deletes.
  { pkg: 'isync', present: () => existsSync('/usr/bin/mbsync') },
  { pkg: 'mutt', present: () => existsSync('/usr/bin/mutt') },
  // Verifies Tern's DKIM signatures (test/queue/dkim.test.ts).
  { pkg: 'opendkim-tools', present: () => existsSync('/usr/sbin/opendkim-testmsg') },
  // The spam filter the MX asks (test/smtp/spam-filter.test.ts runs its own instance).
  { pkg: 'rspamd', present: () => existsSync('/usr/bin/rspamd') },
  // `doveadm pw` and `mkpasswd` make the legacy password hashes that test/auth/legacy-hashes.test.ts and
  // test/cli/import-users.test.ts import. Only the tools are used; dovecot-core alone has no IMAP or POP3
  // listener (those are dovecot-imapd and dovecot-pop3d), and Tern's tests use free ports above 1024 anyway.
  { pkg: 'dovecot-core', present: () => existsSync('/usr/bin/doveadm') },
  { pkg: 'whois', present: () => existsSync('/usr/bin/mkpasswd') },
  // Let's Encrypt's test CA (test/config/acme.test.ts runs its own instance).
  { pkg: 'pebble', present: () => existsSync('/usr/bin/pebble') },
  // Dovecot reads what Tern's Maildir export wrote and writes what its import reads (test/delivery/maildir-dovecot.test.ts runs its own instance).
  { pkg: 'dovecot-imapd', present: () => existsSync('/usr/lib/dovecot/imap') },
  { pkg: 'dovecot-lmtpd', present: () => existsSync('/usr/lib/dovecot/lmtp') },
  // The browser that test/web/portal.test.ts drives (through playwright-core) to click through the admin portal.
  { pkg: 'chromium', present: () => existsSync('/usr/bin/chromium') },
  {
    pkg: 'postgresql',
    present: () =>
      existsSync('/usr/lib/postgresql') &&
      readdirSync('/usr/lib/postgresql').some((v) => existsSync(`/usr/lib/postgresql/${v}/bin/initdb`) && existsSync(`/usr/lib/postgresql/${v}/bin/pg_ctl`)),
  },
];

function sh(file, args, input) {
  console.log(`run-tests: ${file} ${args.join(' ')}`);
  const r = spawnSync(file, args, {
    stdio: [input === undefined ? 'ignore' : 'pipe', 'inherit', 'inherit'],
    input,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.status !== 0) {
    console.error(`run-tests: ${file} failed (${r.error?.message ?? r.signal ?? `exit ${r.status}`})`);
    process.exit(1);
  }
}

function ensurePackages() {
  const missing = REQUIRED.filter((r) => !r.present()).map((r) => r.pkg);
  if (missing.length === 0) return;
  const command = `apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (process.getuid?.() !== 0) {
    console.error(`run-tests: the tests need these Debian packages, which are missing: ${missing.join(' ')}`);
    console.error(`install them as root, then run the tests again:`);
    if (missing.includes('postfix')) console.error(`  echo "postfix postfix/main_mailer_type select No configuration" | sudo debconf-set-selections`);
    console.error(`  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive ${command}`);
    process.exit(1);
  }
  console.log(`run-tests: installing missing Debian packages: ${missing.join(' ')}`);
  // Postfix is only here for its smtp-source client: no mail system configuration, no daemon.
  if (missing.includes('postfix')) sh('debconf-set-selections', [], 'postfix postfix/main_mailer_type select No configuration\n');
  sh('apt-get', ['update', '-q']);
  sh('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing]);
  const still = REQUIRED.filter((r) => !r.present()).map((r) => r.pkg);
  if (still.length > 0) {
    console.error(`run-tests: still missing after apt-get install: ${still.join(' ')}`);
    process.exit(1);
  }
}

// 1. A clean build: the TypeScript, then the portal's front end into dist/web/ (what `npm run build` runs).
rmSync('dist', { recursive: true, force: true });
const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', '.'], { stdio: 'inherit' });
if (tsc.status !== 0) {
  console.error('run-tests: tsc failed');
  process.exit(1);
}
const web = spawnSync(process.execPath, [join(root, 'scripts/build-web.mjs')], { stdio: 'inherit' });
if (web.status !== 0) {
  console.error('run-tests: scripts/build-web.mjs failed');
  process.exit(1);
}

// `npm run lint` (ESLint and Prettier) is part of the whole test run; a filtered run skips it.
if (process.argv.length <= 2) {
  const lint = spawnSync('npm', ['run', '--silent', 'lint'], { stdio: 'inherit' });
  if (lint.status !== 0) {
    console.error('run-tests: lint failed');
    process.exit(1);
  }
}

// 2. Debian packages.
ensurePackages();

const filters = process.argv.slice(2);
const files = find('dist/test')
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}

// Ctrl-C (or a kill) stops the tests and still removes the cluster.
let child;
let interrupted;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    interrupted = signal;
    if (child) child.kill(signal);
    else process.exit(1); // the 'exit' handler below removes the cluster
  });
}

// 3. One throwaway PostgreSQL cluster for the run.
let cluster;
process.once('exit', () => cluster?.destroySync());
if (!process.env.TERN_TEST_PG_URL) {
  const { startPgCluster } = await import(pathToFileURL(join(root, 'dist/test/helpers/pg-cluster.js')).href);
  try {
    cluster = await startPgCluster();
  } catch (err) {
    console.error(`run-tests: could not start a throwaway PostgreSQL cluster: ${err.message}`);
    process.exit(1);
  }
  console.log(`run-tests: throwaway PostgreSQL cluster at ${cluster.url} (${cluster.dataDir})`);
}

// 4. The tests, one file at a time.
child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=300000', ...files], {
  stdio: 'inherit',
  env: { ...process.env, ...(cluster ? { TERN_TEST_PG_URL: cluster.url } : {}) },
});
const [code, signal] = await new Promise((res) => child.on('exit', (c, s) => res([c, s])));
await cluster?.destroy();
if (interrupted) console.error(`run-tests: interrupted (${interrupted})`);
process.exit(interrupted || signal ? 1 : (code ?? 1));
