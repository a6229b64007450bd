/**
 * STARTTLS (RFC 3501 6.2.1, RFC 2595), LOGIN and AUTHENTICATE PLAIN with SASL-IR (RFC
 * 4959). Passwords in clear are refused unless the connection is TLS, from loopback, or the
 * operator allowed it (`--insecure-auth`). Every failure is logged by the authenticator.
 */
import { decodeSaslPlain } from '../../auth/authenticate.js';
import { ImapNo } from '../errors.js';
import { BadArgs } from '../proto/args.js';
import type { ImapSession } from '../session.js';
import { type Command } from './context.js';

const NOT_AUTHENTICATED = ['not-authenticated'] as const;

/** Failed logins before the connection is closed. */
const MAX_FAILED_LOGINS = 3;

async function login(session: ImapSession, user: string, password: string): Promise<string> {
  const account = await session.deps.auth.login(user, password, { protocol: 'imap', remoteAddress: session.remoteAddress });
  if (!account) {
    if (++session.failedLogins >= MAX_FAILED_LOGINS) session.closeAfterAnswer('Too many failed logins');
    throw new ImapNo('AUTHENTICATIONFAILED', 'Authentication failed');
  }
  session.state = { kind: 'authenticated', account };
  return `[CAPABILITY ${session.capabilities()}] Logged in`;
}

function requirePlaintext(session: ImapSession): void {
  if (!session.plaintextAllowed()) throw new ImapNo('PRIVACYREQUIRED', 'Use STARTTLS (or port 993-style implicit TLS) before sending a password');
}

export const AUTH_COMMANDS: Record<string, Command> = {
  STARTTLS: {
    states: NOT_AUTHENTICATED,
    async run({ session, tag, args }) {
      args.end();
      if (session.secure) throw new BadArgs('TLS is already active');
      session.send(`${tag} OK Begin TLS negotiation now`);
      await session.upgradeTls();
      return NO_ANSWER;
    },
  },
  LOGIN: {
    states: NOT_AUTHENTICATED,
    async run({ session, args }) {
      const user = args.astring('user name');
      const password = args.astring('password');
      args.end();
      requirePlaintext(session);
      return login(session, user, password);
    },
  },
  AUTHENTICATE: {
    states: NOT_AUTHENTICATED,
    async run({ session, args }) {
      const mechanism = args.atom('mechanism').toUpperCase();
      let response = args.done ? null : args.atom('initial response');
      args.end();
      if (mechanism !== 'PLAIN') throw new ImapNo('CANNOT', `Unsupported mechanism ${mechanism.slice(0, 30)}; use PLAIN`);
      requirePlaintext(session);
      if (response === null) {
        session.send('+ ');
        response = await session.readLine();
        if (response === null) return NO_ANSWER;
      }
      if (response === '*') throw new BadArgs('Authentication cancelled');
      const plain = decodeSaslPlain(response === '=' ? '' : response);
      if (!plain) throw new BadArgs('Malformed PLAIN response');
      if (plain.authzid && plain.authzid.toLowerCase() !== plain.user.toLowerCase()) throw new ImapNo('AUTHORIZATIONFAILED', 'Cannot log in as another user');
      return login(session, plain.user, plain.password);
    },
  },
};

/** Returned by a handler that has answered itself (STARTTLS) or whose connection is gone. */
export const NO_ANSWER = '\0';
