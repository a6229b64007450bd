/**
 * Defaults for every flag and limit, in one place. Each can be set by a flag or a
 * TERN_* environment variable (see cli/serve-command.ts, `tern serve --help`).
 */

/** Default listening ports (non-privileged); 0 disables a listener. */
export const DEFAULT_PORTS = {
  smtp: 2525,
  submission: 2587,
  submissions: 2465,
  lmtp: 2424,
  imap: 2143,
  imaps: 2993,
  pop3: 2110,
  pop3s: 2995,
  http: 8080,
} as const;

export type PortName = keyof typeof DEFAULT_PORTS;

/** Roles `tern serve` can run today, and the ports each one opens (the queue role delivers outbound mail and opens none; http serves the API). */
export const ROLE_PORTS = {
  smtp: ['smtp'],
  submission: ['submission', 'submissions'],
  lmtp: ['lmtp'],
  imap: ['imap', 'imaps'],
  pop3: ['pop3', 'pop3s'],
  queue: [],
  http: ['http'],
} as const satisfies Record<string, readonly PortName[]>;

export type Role = keyof typeof ROLE_PORTS;

export const DEFAULT_LIMITS = {
  maxMessageSize: 25 * 1024 * 1024, // bytes, advertised in EHLO SIZE
  maxRecipients: 100, // per message (RFC 5321 4.5.3.1.8 minimum)
  maxConnections: 1000, // per listener
  maxConnectionsPerIp: 100,
  maxLineLength: 4096, // command line bytes (RFC 5321 asks for at least 512)
  maxErrors: 20, // bad commands before 421
  idleTimeoutSeconds: 300, // RFC 5321 4.5.3.2.7: at least 5 minutes
  greetingDelayMs: 0, // MX early-talker pause; off by default
  shutdownGraceSeconds: 30,
  memoryBudget: 256 * 1024 * 1024, // message bytes all sessions may buffer; past it new messages get 452 4.3.1
  dbTimeoutSeconds: 30, // PostgreSQL: deadline of every query; a commit past it is answered 451
  // Abuse controls for clients outside the trusted networks (auth/guard.ts); 0 turns one off.
  banAfter: 10, // failed logins from one address within banWindowSeconds that ban it
  banWindowSeconds: 600,
  banSeconds: 3600,
  connectionRate: 600, // new connections per address per minute
  messageRate: 3600, // MX messages per address per hour
  accountHourlyMessages: 1000, // submission messages per account per hour
  accountDailyMessages: 10000, // and per day
};

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_DATA_DIR = './data';
