/**
 * `tern serve` and `tern init`: flags and TERN_* variables for ports, host, limits and
 * TLS, first-run initialisation, and the process signals (SIGTERM/SIGINT drain and exit
 * 0, SIGHUP reloads certificates).
 */
import { Option, type Command } from 'commander';
import { DEFAULT_HOST, DEFAULT_LIMITS, DEFAULT_PORTS, ROLE_PORTS, type PortName, type Role } from '../config/defaults.js';
import { initDataDir, siteHostname } from '../config/init-data-dir.js';
import { parseDnsServers, parseDuration, parseHostPort, parseInteger, parsePort, parseSize } from '../config/parse.js';
import { DEFAULT_RETIRE_AFTER_MS } from '../queue/dkim.js';
import { DEFAULT_QUEUE_OPTIONS, type Smarthost } from '../queue/worker.js';
import type { Store } from '../store/store.js';
import { defaultTlsPaths } from '../config/tls.js';
import { UserError } from '../errors.js';
import { createLogger } from '../log.js';
import { startServer } from '../server.js';
import { openStore } from '../store/open.js';
import { dataDir, withStore, type GlobalOptions } from './context.js';
import { DEFAULT_WEBHOOK_OPTIONS } from '../http/webhooks.js';
import { DEFAULT_TRUSTED_NETWORKS, TRUSTED_NETWORKS_SETTING, TrustedNetworks } from '../config/trusted-networks.js';
import { DEFAULT_GREYLIST } from '../auth/guard.js';
import { normalizeDomain } from '../mail/address.js';
import { DMARC_REPORTS_SETTING, parseDmarcReports } from '../delivery/dmarc-reports.js';

type Globals = () => GlobalOptions;

const LIMIT_FLAGS = [
  { key: 'maxMessageSize', flag: 'max-message-size', env: 'TERN_MAX_MESSAGE_SIZE', help: 'largest message accepted, e.g. 25M', size: true },
  { key: 'maxRecipients', flag: 'max-recipients', env: 'TERN_MAX_RECIPIENTS', help: 'recipients per message' },
  { key: 'maxConnections', flag: 'max-connections', env: 'TERN_MAX_CONNECTIONS', help: 'open connections per listener' },
  { key: 'maxConnectionsPerIp', flag: 'max-connections-per-ip', env: 'TERN_MAX_CONNECTIONS_PER_IP', help: 'open connections per client IP and listener' },
  { key: 'maxLineLength', flag: 'max-line-length', env: 'TERN_MAX_LINE_LENGTH', help: 'longest command line in bytes' },
  { key: 'maxErrors', flag: 'max-errors', env: 'TERN_MAX_ERRORS', help: 'bad commands before a connection is closed' },
  { key: 'idleTimeoutSeconds', flag: 'idle-timeout', env: 'TERN_IDLE_TIMEOUT', help: 'seconds of client silence before 421' },
  {
    key: 'greetingDelayMs',
    flag: 'greeting-delay',
    env: 'TERN_GREETING_DELAY',
    help: 'MX only: ms to wait before the greeting; clients that talk first are refused',
    min: 0,
  },
  { key: 'shutdownGraceSeconds', flag: 'shutdown-grace', env: 'TERN_SHUTDOWN_GRACE', help: 'seconds open transactions get to finish on SIGTERM' },
  {
    key: 'memoryBudget',
    flag: 'memory-budget',
    env: 'TERN_MEMORY_BUDGET',
    help: 'message bytes all connections may buffer in memory, e.g. 256M; past it new messages get 452 4.3.1',
    size: true,
  },
  {
    key: 'dbTimeoutSeconds',
    flag: 'db-timeout',
    env: 'TERN_DB_TIMEOUT',
    help: 'PostgreSQL: seconds a query may take before the transaction is abandoned (451)',
  },
  {
    key: 'banAfter',
    flag: 'ban-after',
    env: 'TERN_BAN_AFTER',
    help: 'failed logins from one address within --ban-window that ban it on every port (0: never)',
    min: 0,
  },
  { key: 'banWindowSeconds', flag: 'ban-window', env: 'TERN_BAN_WINDOW', help: 'seconds in which --ban-after failed logins count' },
  { key: 'banSeconds', flag: 'ban-time', env: 'TERN_BAN_TIME', help: 'seconds a ban lasts (tern ban del lifts one)' },
  { key: 'connectionRate', flag: 'connection-rate', env: 'TERN_CONNECTION_RATE', help: 'new connections per client address per minute (0: no limit)', min: 0 },
  { key: 'messageRate', flag: 'message-rate', env: 'TERN_MESSAGE_RATE', help: 'MX messages per client address per hour (0: no limit)', min: 0 },
  {
    key: 'accountHourlyMessages',
    flag: 'account-hourly-messages',
    env: 'TERN_ACCOUNT_HOURLY_MESSAGES',
    help: 'submission messages per account per hour (0: no limit)',
    min: 0,
  },
  {
    key: 'accountDailyMessages',
    flag: 'account-daily-messages',
    env: 'TERN_ACCOUNT_DAILY_MESSAGES',
    help: 'submission messages per account per day (0: no limit)',
    min: 0,
  },
] as const;

/** Commander's attribute name for a flag: max-line-length → maxLineLength. */
const camelCase = (flag: string) => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

function parseRoles(value: string | undefined): Role[] {
  if (!value) return Object.keys(ROLE_PORTS) as Role[];
  const roles = value
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);
  for (const r of roles) {
    if (!(r in ROLE_PORTS)) throw new UserError(`unknown role ${JSON.stringify(r)} (available: ${Object.keys(ROLE_PORTS).join(', ')})`);
  }
  return roles as Role[];
}

/** The site-wide smarthost: the flag (or TERN_SMARTHOST), else the database setting `smarthost`; credentials only from the environment. */
async function smarthostOf(store: Store, opts: Record<string, string | undefined>): Promise<Smarthost | null> {
  const value = opts.smarthost ?? (await store.directory.getSetting('smarthost'));
  if (!value || value === 'none') return null;
  const { host, port } = parseHostPort(opts.smarthost ? '--smarthost' : 'setting smarthost', value);
  const user = opts.smarthostUser;
  const pass = process.env.TERN_SMARTHOST_PASSWORD;
  if (user && pass === undefined) throw new UserError('--smarthost-user needs the password in TERN_SMARTHOST_PASSWORD');
  return { host, port, secure: port === 465, requireTls: Boolean(opts.smarthostRequireTls), auth: user ? { user, pass: pass! } : undefined };
}

function queueOptions(opts: Record<string, string | undefined>) {
  return {
    dnsServers: parseDnsServers('--dns-server', opts.dnsServer),
    mxPort: parsePort('--mx-port', opts.mxPort!),
    mtaStsPort: parsePort('--mta-sts-port', opts.mtaStsPort!),
    retry: {
      firstMs: parseDuration('--retry-delay', opts.retryDelay!),
      maxMs: parseDuration('--retry-max', opts.retryMax!),
      lifetimeMs: parseDuration('--queue-lifetime', opts.queueLifetime!),
      delayWarningMs: parseDuration('--delay-warning', opts.delayWarning!),
    },
    concurrency: {
      total: parseInteger('--queue-concurrency', opts.queueConcurrency!, 1),
      perDestination: parseInteger('--destination-concurrency', opts.destinationConcurrency!, 1),
    },
    connectTimeoutMs: parseDuration('--connect-timeout', opts.connectTimeout!),
    leaseMs: parseDuration('--queue-lease', opts.queueLease!),
    pollMs: DEFAULT_QUEUE_OPTIONS.pollMs,
    dkim: {
      checkMs: parseDuration('--dkim-check-interval', opts.dkimCheckInterval!),
      retireAfterMs: parseDuration('--dkim-retire-after', opts.dkimRetireAfter!),
    },
  };
}

const seconds = (ms: number) => `${ms / 1000}s`;

export function registerServeCommands(program: Command, globals: Globals): void {
  const serve = program
    .command('serve')
    .description(`run the mail server (roles available: ${Object.keys(ROLE_PORTS).join(', ')}); initialises the data dir on first run`)
    .addOption(new Option('--roles <list>', 'comma-separated roles to run (default: all available)').env('TERN_ROLES'))
    .addOption(new Option('--host <address>', 'address to listen on (0.0.0.0 or :: in production)').env('TERN_HOST').default(DEFAULT_HOST))
    .addOption(
      new Option('--hostname <name>', 'name used in greetings and Received headers (default: saved setting, else the machine name)').env('TERN_HOSTNAME'),
    )
    .addOption(new Option('--tls-cert <file>', 'PEM certificate chain (default: <data>/tls/cert.pem, self-signed on first run)').env('TERN_TLS_CERT'))
    .addOption(new Option('--tls-key <file>', 'PEM private key (default: <data>/tls/key.pem)').env('TERN_TLS_KEY'))
    .addOption(
      new Option('--insecure-auth', 'accept passwords without TLS from any client (IMAP LOGIN, POP3 USER/PASS); loopback clients always may').env(
        'TERN_INSECURE_AUTH',
      ),
    );
  for (const [name, port] of Object.entries(DEFAULT_PORTS)) {
    serve.addOption(new Option(`--${name}-port <port>`, `${name} port (0 disables)`).env(`TERN_${name.toUpperCase()}_PORT`).default(String(port)));
  }
  for (const l of LIMIT_FLAGS) {
    serve.addOption(new Option(`--${l.flag} <value>`, l.help).env(l.env).default(String(DEFAULT_LIMITS[l.key])));
  }
  const q = DEFAULT_QUEUE_OPTIONS;
  serve
    .addOption(
      new Option(
        '--smarthost <host:port>',
        'send outbound mail without a route (tern route) through this relay (default: tern setting set smarthost, else MX lookup)',
      ).env('TERN_SMARTHOST'),
    )
    .addOption(new Option('--smarthost-user <user>', 'AUTH user for the smarthost; the password comes from TERN_SMARTHOST_PASSWORD').env('TERN_SMARTHOST_USER'))
    .addOption(new Option('--smarthost-require-tls', 'never send to the smarthost without TLS (with a valid certificate)').env('TERN_SMARTHOST_REQUIRE_TLS'))
    .addOption(new Option('--dns-server <host:port,...>', 'DNS resolver(s) for MX lookups (default: the system resolver)').env('TERN_DNS_SERVER'))
    .addOption(new Option('--mx-port <port>', 'port of remote mail hosts').env('TERN_MX_PORT').default(String(q.mxPort)))
    .addOption(
      new Option('--mta-sts-port <port>', 'HTTPS port of remote MTA-STS policy hosts (mta-sts.<domain>)')
        .env('TERN_MTA_STS_PORT')
        .default(String(q.mtaStsPort)),
    )
    .addOption(
      new Option('--retry-delay <duration>', 'first retry of a deferred message; doubles each time').env('TERN_RETRY_DELAY').default(seconds(q.retry.firstMs)),
    )
    .addOption(new Option('--retry-max <duration>', 'longest wait between retries').env('TERN_RETRY_MAX').default(seconds(q.retry.maxMs)))
    .addOption(
      new Option('--queue-lifetime <duration>', 'give up (and bounce) after this long in the queue')
        .env('TERN_QUEUE_LIFETIME')
        .default(seconds(q.retry.lifetimeMs)),
    )
    .addOption(
      new Option('--delay-warning <duration>', 'tell a sender once when a message has waited this long (RFC 3461 DELAY; 0: never)')
        .env('TERN_DELAY_WARNING')
        .default(seconds(q.retry.delayWarningMs)),
    )
    .addOption(new Option('--queue-concurrency <n>', 'messages being delivered at once').env('TERN_QUEUE_CONCURRENCY').default(String(q.concurrency.total)))
    .addOption(
      new Option('--destination-concurrency <n>', 'connections at once to one destination domain')
        .env('TERN_DESTINATION_CONCURRENCY')
        .default(String(q.concurrency.perDestination)),
    )
    .addOption(
      new Option('--connect-timeout <duration>', 'outbound connection and greeting timeout').env('TERN_CONNECT_TIMEOUT').default(seconds(q.connectTimeoutMs)),
    )
    .addOption(
      new Option('--queue-lease <duration>', "how long a worker owns the messages it took; a crashed worker's come back after this")
        .env('TERN_QUEUE_LEASE')
        .default(seconds(q.leaseMs)),
    )
    .addOption(
      new Option('--dkim-check-interval <duration>', 'how often a rotated DKIM key is looked up in DNS before it starts signing')
        .env('TERN_DKIM_CHECK_INTERVAL')
        .default(seconds(q.dkimCheckMs)),
    )
    .addOption(
      new Option('--dkim-retire-after <duration>', 'how long a replaced DKIM key stays (keep its record published until then)')
        .env('TERN_DKIM_RETIRE_AFTER')
        .default(seconds(DEFAULT_RETIRE_AFTER_MS)),
    )
    .addOption(
      new Option(
        '--trusted-networks <cidr,...>',
        `clients that skip SPF/DKIM/DMARC enforcement on the MX ("none": no one; default: tern setting set ${TRUSTED_NETWORKS_SETTING}, else ${DEFAULT_TRUSTED_NETWORKS}); never a permission to relay`,
      ).env('TERN_TRUSTED_NETWORKS'),
    )
    .addOption(
      new Option(
        '--acme-directory <url>',
        "get the host name's certificate from this ACME CA (e.g. https://acme-v02.api.letsencrypt.org/directory) and renew it; port 80 must reach the http role",
      ).env('TERN_ACME_DIRECTORY'),
    )
    .addOption(new Option('--acme-email <address>', 'contact address for the ACME account').env('TERN_ACME_EMAIL'))
    .addOption(
      new Option(
        '--rspamd <url>',
        "show strangers' messages on the MX to this rspamd (e.g. http://127.0.0.1:11333) and follow its action (default: tern setting set rspamd, else none)",
      ).env('TERN_RSPAMD'),
    )
    .addOption(
      new Option(
        '--dnsbl <zones>',
        'DNS blocklist zones (comma-separated) that refuse a listed stranger at the MX greeting (default: tern setting set dnsbl, else none)',
      ).env('TERN_DNSBL'),
    )
    .addOption(
      new Option('--greylist', 'greylist strangers on the MX for every domain (else per domain: tern domain policy D --greylist on)').env('TERN_GREYLIST'),
    )
    .addOption(
      new Option('--greylist-delay <duration>', 'how long a greylisted sender must wait before its retry passes')
        .env('TERN_GREYLIST_DELAY')
        .default(seconds(DEFAULT_GREYLIST.delayMs)),
    )
    .addOption(
      new Option('--greylist-retry <duration>', 'a greylisted first attempt not retried within this starts over')
        .env('TERN_GREYLIST_RETRY')
        .default(seconds(DEFAULT_GREYLIST.retryMs)),
    )
    .addOption(
      new Option('--greylist-keep <duration>', 'a sender that passed greylisting passes at once while it writes at least this often')
        .env('TERN_GREYLIST_KEEP')
        .default(seconds(DEFAULT_GREYLIST.keepMs)),
    )
    .addOption(
      new Option(
        '--dmarc-reports <address>',
        'send daily DMARC aggregate reports, from this address, to the domains whose DMARC records ask for them; off turns them off (default: tern setting set dmarc_reports, else off)',
      ).env('TERN_DMARC_REPORTS'),
    )
    .addOption(
      new Option('--webhook-retry-delay <duration>', 'first retry of a webhook POST that failed; doubles each time, up to an hour')
        .env('TERN_WEBHOOK_RETRY_DELAY')
        .default(seconds(DEFAULT_WEBHOOK_OPTIONS.retryFirstMs)),
    )
    .addOption(
      new Option('--webhook-lifetime <duration>', 'give up on a webhook POST this long after its event')
        .env('TERN_WEBHOOK_LIFETIME')
        .default(seconds(DEFAULT_WEBHOOK_OPTIONS.lifetimeMs)),
    );
  serve.action(async (opts: Record<string, string | undefined>) => {
    const g = globals();
    const ports = Object.fromEntries(Object.keys(DEFAULT_PORTS).map((name) => [name, parsePort(`--${name}-port`, opts[`${name}Port`]!)])) as Record<
      PortName,
      number
    >;
    const limits = { ...DEFAULT_LIMITS };
    for (const l of LIMIT_FLAGS) {
      const raw = opts[camelCase(l.flag)]!;
      limits[l.key] = 'size' in l ? parseSize(`--${l.flag}`, raw) : parseInteger(`--${l.flag}`, raw, 'min' in l ? l.min : 1);
    }
    const roles = parseRoles(opts.roles);
    const queueSettings = queueOptions(opts);
    const greylist = {
      all: Boolean(opts.greylist),
      delayMs: parseDuration('--greylist-delay', opts.greylistDelay!),
      retryMs: parseDuration('--greylist-retry', opts.greylistRetry!),
      keepMs: parseDuration('--greylist-keep', opts.greylistKeep!),
    };
    const webhooks = {
      ...DEFAULT_WEBHOOK_OPTIONS,
      retryFirstMs: parseDuration('--webhook-retry-delay', opts.webhookRetryDelay!),
      lifetimeMs: parseDuration('--webhook-lifetime', opts.webhookLifetime!),
    };
    if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) throw new UserError('--tls-cert and --tls-key must be given together');
    if (opts.acmeDirectory && opts.tlsCert) throw new UserError('--acme-directory keeps its certificate in the data dir: leave out --tls-cert and --tls-key');
    if (opts.acmeDirectory && !/^https:\/\/\S+$/.test(opts.acmeDirectory))
      throw new UserError(`--acme-directory: expected an https:// URL, got ${JSON.stringify(opts.acmeDirectory)}`);
    const acme = opts.acmeDirectory ? { directoryUrl: opts.acmeDirectory, email: opts.acmeEmail } : null;

    const log = createLogger(g.logLevel);
    const dir = dataDir(g);
    const store = await openStore({
      dataDir: dir,
      dbUrl: g.db,
      dbTimeoutMs: limits.dbTimeoutSeconds * 1000,
      log: (fields, message) => log.info(fields, message),
    });
    let stopping = false;
    try {
      const init = await initDataDir(store, dir, opts.hostname);
      if (init.admin) {
        console.log(`First run: created domain ${init.hostname} and admin account ${init.admin.address}`);
        console.log(`Admin password (shown once, store it now): ${init.admin.password}`);
      }
      const hostname = await siteHostname(store, opts.hostname);
      const tls = opts.tlsCert ? { cert: opts.tlsCert, key: opts.tlsKey! } : defaultTlsPaths(dir);
      const queue = { ...queueSettings, smarthost: await smarthostOf(store, opts) };
      const dnsbl = (opts.dnsbl ?? (await store.directory.getSetting('dnsbl')) ?? '')
        .split(',')
        .map((z) => z.trim())
        .filter(Boolean)
        .map((z) => normalizeDomain(z));
      const rspamd = opts.rspamd ?? (await store.directory.getSetting('rspamd'));
      if (rspamd && !/^https?:\/\/[^\s/]+/.test(rspamd)) throw new UserError(`--rspamd: expected http://HOST:PORT, got ${JSON.stringify(rspamd)}`);
      const dmarcReports = parseDmarcReports(
        opts.dmarcReports ? '--dmarc-reports' : `setting ${DMARC_REPORTS_SETTING}`,
        opts.dmarcReports ?? (await store.directory.getSetting(DMARC_REPORTS_SETTING)),
      );
      const trustedSetting = await store.directory.getSetting(TRUSTED_NETWORKS_SETTING);
      const trusted = opts.trustedNetworks
        ? TrustedNetworks.parse('--trusted-networks', opts.trustedNetworks)
        : TrustedNetworks.parse(`setting ${TRUSTED_NETWORKS_SETTING}`, trustedSetting ?? DEFAULT_TRUSTED_NETWORKS);
      const server = await startServer(
        store,
        {
          host: opts.host!,
          hostname,
          roles,
          ports,
          tls,
          limits,
          insecureAuth: Boolean(opts.insecureAuth),
          queue,
          webhooks,
          trusted,
          greylist,
          dnsbl,
          rspamd,
          dmarcReports,
          acme,
          site: { dataDir: dir, dbUrl: g.db },
        },
        log,
      );

      process.on('SIGHUP', () => {
        try {
          server.tls.reload();
          log.info('TLS certificate reloaded');
        } catch (err) {
          log.error({ err: (err as Error).message }, 'TLS reload failed; keeping the previous certificate');
        }
      });
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, 'draining: no new connections, finishing open transactions');
        let code = 0;
        try {
          await server.stop();
          await store.close();
          log.info('stopped');
        } catch (err) {
          log.error({ err }, 'error while stopping');
          code = 1;
        }
        log.flush(() => process.exit(code));
      };
      process.on('SIGTERM', () => void stop('SIGTERM'));
      process.on('SIGINT', () => void stop('SIGINT'));
      // Printed last: once these lines appear, the server is up and signals are handled.
      for (const l of server.listening) console.log(`Tern listening: ${l.name} on ${l.host}:${l.port}`);
      console.log(`Store: ${store.kind}${store.kind === 'sqlite' ? ` in ${dir}` : ''}; hostname ${hostname}`);
    } catch (err) {
      await store.close();
      throw err;
    }
  });

  program
    .command('init')
    .description('initialise the data dir: TLS certificate, first domain and admin account (serve does this on first run)')
    .option('--hostname <name>', 'this server’s host name (default: the machine name)')
    .action(async (opts: { hostname?: string }) => {
      const g = globals();
      const result = await withStore(g, (s) => initDataDir(s, dataDir(g), opts.hostname));
      if (!result.created) return console.log(`already initialised (hostname ${result.hostname})`);
      console.log(`initialised ${dataDir(g)}: hostname ${result.hostname}`);
      if (result.admin) console.log(`admin account ${result.admin.address}; password (shown once): ${result.admin.password}`);
    });
}
