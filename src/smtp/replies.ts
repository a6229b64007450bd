/**
 * SMTP/LMTP reply codes as named constants, with the RFC section they come from.
 * Enhanced status codes follow RFC 3463. Sessions send these, never literals.
 */
import { safeReplyText } from '../net/reply-text.js';

export interface Reply {
  code: number;
  /** Enhanced status code (RFC 3463) or '' for replies that carry none (greeting, EHLO). */
  status: string;
  text: string;
}

const r = (code: number, status: string, text: string): Reply => ({ code, status, text });

export const Replies = {
  // RFC 5321 4.2.2 / 4.3.2
  serviceReady: (host: string) => r(220, '', `${host} ESMTP Tern ready`),
  earlyTalker: r(554, '5.5.1', 'Protocol error: data sent before greeting'), // RFC 5321 4.3.1
  spamRejected: r(550, '5.7.1', 'Message rejected as spam'),
  spamDeferred: r(451, '4.7.1', 'Message deferred by the spam filter; try again later'),
  blocklisted: (ip: string, zone: string) => r(554, '5.7.1', `Service unavailable; client [${ip}] blocked using ${zone}`),
  heloOk: (host: string) => r(250, '', host),
  lmtpReady: (host: string) => r(220, '', `${host} LMTP Tern ready`),
  closing: r(221, '2.0.0', 'Bye'),
  ok: r(250, '2.0.0', 'OK'),
  senderOk: r(250, '2.1.0', 'Sender OK'),
  recipientOk: r(250, '2.1.5', 'Recipient OK'),
  queued: (id: string) => r(250, '2.0.0', `OK: queued as ${id}`),
  delivered: (id: string, rcpt: string) => r(250, '2.0.0', `<${rcpt}> delivered as ${id}`),
  resetOk: r(250, '2.0.0', 'Reset OK'),
  chunkReceived: (octets: number) => r(250, '2.0.0', `${octets} octets received`), // RFC 3030 2
  vrfyCannot: r(252, '2.5.0', 'Cannot VRFY user; try RCPT to attempt delivery'), // RFC 5321 3.5.3
  help: r(214, '2.0.0', 'See https://www.rfc-editor.org/rfc/rfc5321'),
  startData: r(354, '', 'End data with <CR><LF>.<CR><LF>'),
  readyToStartTls: r(220, '2.0.0', 'Ready to start TLS'), // RFC 3207
  submissionReady: (host: string) => r(220, '', `${host} ESMTP Tern submission ready`),
  authOk: r(235, '2.7.0', 'Authentication successful'), // RFC 4954 6
  authChallenge: (text: string) => r(334, '', text),

  // 4yz transient (RFC 5321 4.2.3)
  tooManyConnections: r(421, '4.7.0', 'Too many connections, try again later'),
  tooManyConnectionsFromIp: r(421, '4.7.0', 'Too many connections from your address, try again later'),
  banned: r(421, '4.7.0', 'Your address is banned for repeated failed logins; try again later'),
  connectionRate: r(421, '4.7.0', 'Too many new connections from your address; try again in a minute'),
  messageRate: (seconds: number) => r(451, '4.7.1', `Too many messages from your address; try again in ${seconds} s`),
  accountRate: (per: 'hour' | 'day') => r(450, '4.7.1', `You have sent as many messages as your account may this ${per}; try again later`),
  greylisted: (seconds: number) => r(451, '4.7.1', `Greylisted: please try again in ${seconds} s`), // RFC 6647
  idleTimeout: r(421, '4.4.2', 'Idle timeout, closing connection'),
  shuttingDown: r(421, '4.3.2', 'Service shutting down, try again later'),
  tooManyErrors: r(421, '4.7.0', 'Too many errors, closing connection'),
  storeUnavailable: r(451, '4.3.0', 'Temporary storage failure, try again later'),
  localError: r(451, '4.3.0', 'Temporary local problem, try again later'),
  tooManyRecipients: r(452, '4.5.3', 'Too many recipients'), // RFC 5321 4.5.3.1.10
  mailboxFull: (rcpt: string) => r(452, '4.2.2', `<${rcpt}> Mailbox full, try again later`), // RFC 3463 X.2.2
  insufficientStorage: r(452, '4.3.1', 'Insufficient system storage, try again later'), // RFC 3463 X.3.1: memory budget spent
  tlsUnavailable: r(454, '4.7.0', 'TLS not available'),
  authUnavailable: r(454, '4.7.0', 'Temporary authentication failure'),

  // 5yz permanent
  syntaxError: (text = 'Syntax error, command unrecognized') => r(500, '5.5.2', text),
  lineTooLong: r(500, '5.5.2', 'Line too long'),
  paramSyntax: (text: string) => r(501, '5.5.4', text),
  notImplemented: r(502, '5.5.1', 'Command not implemented'),
  badSequence: (text: string) => r(503, '5.5.1', text),
  paramNotImplemented: (text: string) => r(555, '5.5.4', text), // RFC 5321 4.1.1.11
  noSuchUser: (rcpt: string) => r(550, '5.1.1', `<${rcpt}> No such user here`),
  mailboxGone: (rcpt: string) => r(550, '5.1.1', `<${rcpt}> Recipient mailbox no longer exists`),
  overQuotaAtCommit: (rcpt: string) => r(552, '5.2.2', `<${rcpt}> Mailbox full`), // RFC 3463 X.2.2, checked at commit
  badSender: (text: string) => r(553, '5.1.7', text),
  relayDenied: (rcpt: string) => r(554, '5.7.1', `<${rcpt}> Relay access denied`),
  badAddress: (text: string) => r(553, '5.1.3', text),
  messageTooBig: (max: number) => r(552, '5.3.4', `Message size exceeds fixed maximum of ${max} bytes`), // RFC 1870
  smuggling: r(554, '5.5.2', 'Bare LF around the end-of-data marker; message rejected'),
  dmarcReject: (domain: string) => r(550, '5.7.1', `DMARC policy of ${domain} says reject, and this message fails it`), // RFC 7489 6.7
  spfFail: (domain: string, ip: string) => r(550, '5.7.23', `SPF of ${domain} does not allow ${ip} to send its mail`), // RFC 7372 3.2
  noValidRecipients: r(554, '5.5.1', 'No valid recipients'), // RFC 5321 3.3
  noValidRecipientsLmtp: r(503, '5.5.1', 'No valid recipients'), // RFC 2033 4.2
  utf8NotDeclared: r(553, '5.6.7', 'Non-ASCII address requires SMTPUTF8'), // RFC 6531 3.5
  // RFC 4954 6
  authRequired: r(530, '5.7.0', 'Authentication required'),
  authFailed: r(535, '5.7.8', 'Authentication credentials invalid'),
  authNeedsTls: r(538, '5.7.11', 'Encryption required for requested authentication mechanism'),
  authCancelled: r(501, '5.0.0', 'Authentication cancelled'),
  authBadResponse: r(501, '5.5.2', 'Cannot decode the response'),
  authMechanism: r(504, '5.5.4', 'Unrecognized authentication type'),
  authNotOffered: r(503, '5.5.1', 'Authentication is not enabled here; use the submission port'),
  notOwner: (address: string, user: string) => r(553, '5.7.1', `<${address}> Sender address not owned by ${user}`),
} as const;

/** Longest reply line (RFC 5321 4.5.3.1.5: 512 octets with CRLF); longer client text is cut. */
const MAX_REPLY_LINE = 510;

/** Serialises a one-line reply. */
export function formatReply(reply: Reply): string {
  const prefix = `${reply.code} ${reply.status ? `${reply.status} ` : ''}`;
  return `${prefix}${safeReplyText(reply.text, MAX_REPLY_LINE - prefix.length)}\r\n`;
}

/** Serialises a multi-line reply (EHLO): `250-…` lines, then `250 …`. */
export function formatMultiline(code: number, lines: string[]): string {
  return lines.map((l, i) => `${code}${i === lines.length - 1 ? ' ' : '-'}${safeReplyText(l, MAX_REPLY_LINE - 4)}\r\n`).join('');
}
