/** What the mailbox protocols (IMAP, POP3) are given by server.ts: the store, logins, TLS and the logger. */
import type { Logger } from 'pino';
import type { Authenticator } from '../auth/authenticate.js';
import type { TlsProvider } from '../config/tls.js';
import type { ByteBudget } from '../mail/byte-budget.js';
import type { Store } from '../store/store.js';

export interface MailboxDeps {
  store: Store;
  auth: Authenticator;
  tls: TlsProvider;
  log: Logger;
  /** Message bytes all sessions may hold in memory together (IMAP APPEND). */
  budget: ByteBudget;
}

/** Settings every mailbox-protocol session gets. */
export interface MailboxConfig {
  hostname: string;
  /** The connection is already TLS (imaps, pop3s): STARTTLS/STLS are not offered. */
  implicitTls: boolean;
  /** Passwords may be sent without TLS by any client (loopback always may). */
  insecureAuth: boolean;
  /** Largest message accepted (IMAP APPEND). */
  maxMessageSize: number;
}
