/**
 * POP3 replies as named constants with the RFC section they come from, and the one place
 * replies are serialised. Status is `+OK` or `-ERR` (RFC 1939 3); `-ERR` may carry an
 * extended response code in brackets (RFC 2449 8, RFC 3206). Sessions send these, never
 * literals. Pure: no sockets.
 */
import { safeReplyText } from '../net/reply-text.js';

/** Extended response codes (RFC 2449 8.1, RFC 3206 4-5, RFC 5034 AUTH-RESP-CODE). */
export type RespCode = 'AUTH' | 'SYS/TEMP' | 'SYS/PERM' | 'IN-USE' | 'LOGIN-DELAY';

export interface Pop3Reply {
  ok: boolean;
  code?: RespCode;
  text: string;
}

const ok = (text: string): Pop3Reply => ({ ok: true, text });
const err = (text: string, code?: RespCode): Pop3Reply => (code ? { ok: false, code, text } : { ok: false, text });

export const Replies = {
  // RFC 1939 4: the greeting (no APOP timestamp: APOP is not offered)
  greeting: (host: string) => ok(`${host} POP3 Tern ready`),
  // RFC 2449 5
  capaFollows: ok('Capability list follows'),
  // RFC 1939 7 USER/PASS, RFC 5034 4 AUTH
  sendPass: ok('Send your password'),
  loggedIn: (count: number, octets: number) => ok(`Logged in, ${count} messages (${octets} octets)`),
  mechanismsFollow: ok('Supported SASL mechanisms follow'),
  saslContinue: '+ \r\n', // RFC 5034 4: an empty server challenge
  // RFC 2595 4
  beginTls: ok('Begin TLS negotiation'),
  // RFC 1939 5
  stat: (count: number, octets: number) => ok(`${count} ${octets}`),
  listAll: (count: number, octets: number) => ok(`${count} messages (${octets} octets)`),
  listOne: (msg: number, octets: number) => ok(`${msg} ${octets}`),
  uidlAll: ok('Unique-id listing follows'),
  uidlOne: (msg: number, uid: string) => ok(`${msg} ${uid}`),
  retr: (octets: number) => ok(`${octets} octets`),
  top: ok('Top of message follows'),
  deleted: (msg: number) => ok(`Message ${msg} deleted`),
  reset: (count: number, octets: number) => ok(`Maildrop has ${count} messages (${octets} octets)`),
  noop: ok('OK'),
  // RFC 1939 6: QUIT in AUTHORIZATION, and after the UPDATE state
  bye: ok('Tern POP3 server signing off'),
  byeAfterUpdate: (left: number) => ok(`Tern POP3 server signing off (${left} messages left)`),

  // -ERR: the client's mistakes (RFC 1939 3: the connection survives them)
  unknownCommand: err('Unknown command'),
  syntax: (text: string) => err(text),
  lineTooLong: err('Line too long'),
  wrongState: (text: string) => err(text),
  noSuchMessage: err('No such message'),
  alreadyDeleted: (msg: number) => err(`Message ${msg} already deleted`),
  /** Expunged by another client (IMAP) since this session's snapshot. */
  messageGone: (msg: number) => err(`Message ${msg} no longer exists`),
  tooManyErrors: err('Too many errors, closing connection'),
  alreadyTls: err('Already using TLS'),

  // Logins (RFC 2449 8.1.2 / RFC 3206 5 [AUTH]: the credentials, not the server, are the problem)
  plaintextNeedsTls: err('Plaintext authentication requires TLS; use STLS first', 'AUTH'), // RFC 2595 2.2
  passWithoutUser: err('Send USER first'),
  badCredentials: err('Invalid user name or password', 'AUTH'),
  tooManyFailures: err('Too many failed logins, closing connection', 'AUTH'),
  badSaslResponse: err('Invalid SASL PLAIN response'),
  saslCancelled: err('Authentication cancelled'), // RFC 5034 4: client sent "*"
  unsupportedMechanism: err('Unsupported SASL mechanism'),
  noProxyAuth: err('Not authorized to act as another user', 'AUTH'),

  // Server trouble (RFC 3206 4: SYS/TEMP is transient, SYS/PERM needs an administrator)
  temporaryFailure: err('Temporary server error, try again later', 'SYS/TEMP'),
  maildropUnavailable: err('Unable to open the maildrop, try again later', 'SYS/TEMP'),
  noInbox: err('The account has no INBOX', 'SYS/PERM'),
  notAllRemoved: err('Some deleted messages were not removed, try again later', 'SYS/TEMP'), // RFC 1939 6
  shuttingDown: err('Server shutting down, try again later', 'SYS/TEMP'),
  idleTimeout: err('Autologout: idle for too long'), // RFC 1939 3
} as const;

/** Longest status line we send (RFC 2449 4: 512 octets with CRLF). */
const MAX_REPLY_LINE = 510;

/** Serialises a status line: `+OK text` or `-ERR [CODE] text`, CRLF-terminated. */
export function formatReply(reply: Pop3Reply): string {
  const prefix = reply.ok ? '+OK ' : `-ERR ${reply.code ? `[${reply.code}] ` : ''}`;
  return `${prefix}${safeReplyText(reply.text, MAX_REPLY_LINE - prefix.length)}\r\n`;
}

/**
 * Serialises a multi-line response made of short text lines (CAPA, LIST, UIDL): the status
 * line, each line byte-stuffed (RFC 1939 3: a leading "." is doubled), then ".".
 */
export function formatMultiline(first: Pop3Reply, lines: readonly string[]): string {
  return formatReply(first) + lines.map((l) => `${l.startsWith('.') ? '.' : ''}${safeReplyText(l, MAX_REPLY_LINE)}\r\n`).join('') + '.\r\n';
}
