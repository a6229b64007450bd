/**
 * Pure POP3 command parser (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH): one
 * command line (without CRLF) in, a typed command or a syntax error out. No sockets, no
 * store; tested table-driven in test/pop3/commands.test.ts. Which commands are allowed in
 * which state is the session's business, not the parser's.
 */

export type Pop3Command =
  | { verb: 'USER'; user: string }
  | { verb: 'PASS'; password: string }
  /** `AUTH` alone lists mechanisms (mechanism null); `initialResponse` is base64, '=' for empty (RFC 5034 4). */
  | { verb: 'AUTH'; mechanism: string | null; initialResponse: string | null }
  | { verb: 'CAPA' }
  | { verb: 'STLS' }
  | { verb: 'STAT' }
  | { verb: 'RSET' }
  | { verb: 'NOOP' }
  | { verb: 'QUIT' }
  /** `msg` null: the whole listing. */
  | { verb: 'LIST' | 'UIDL'; msg: number | null }
  | { verb: 'RETR' | 'DELE'; msg: number }
  | { verb: 'TOP'; msg: number; lines: number }
  | { verb: 'ERROR'; reason: 'unknown' | 'syntax'; text: string };

/** A client's answer to the `+ ` continuation of AUTH: base64, or "*" to cancel (RFC 5034 4). */
export type SaslResponse = { kind: 'cancel' } | { kind: 'response'; base64: string };

const unknown: Pop3Command = { verb: 'ERROR', reason: 'unknown', text: 'Unknown command' };
const syntax = (text: string): Pop3Command => ({ verb: 'ERROR', reason: 'syntax', text });

/** Message numbers and TOP line counts: decimal digits only; anything longer than this is no message number. */
const MAX_DIGITS = 10;
/** Largest TOP line count we keep (a larger one means "all of it" anyway). */
const MAX_TOP_LINES = 2 ** 31 - 1;

function number(arg: string | undefined): number | null {
  if (arg === undefined || !/^[0-9]+$/.test(arg)) return null;
  const digits = arg.replace(/^0+(?=.)/, '');
  return digits.length > MAX_DIGITS ? Infinity : Number(digits);
}

/** A message number (RFC 1939 5: "msg"); 0 and overflow pass as numbers and are refused by the session as no such message. */
function messageNumber(arg: string | undefined, verb: string): number | string {
  const n = number(arg);
  return n === null ? `${verb} needs a message number` : n;
}

export function parseCommand(line: string): Pop3Command {
  const space = line.indexOf(' ');
  const verb = (space < 0 ? line : line.slice(0, space)).toUpperCase();
  const rest = space < 0 ? '' : line.slice(space + 1);
  // RFC 1939 3: arguments are separated by single spaces; tolerate runs of them and a trailing one.
  const args = rest.split(' ').filter((a) => a.length > 0);
  const noArgs = (v: 'CAPA' | 'STLS' | 'STAT' | 'RSET' | 'NOOP' | 'QUIT'): Pop3Command => (args.length > 0 ? syntax(`${v} takes no arguments`) : { verb: v });

  switch (verb) {
    case 'USER':
      // The name is the rest of the line: some sites have user names with spaces.
      return rest.trim().length > 0 ? { verb, user: rest.trim() } : syntax('USER needs a user name');
    case 'PASS':
      // RFC 1939 7: the password may contain spaces; it is everything after "PASS ".
      return rest.length > 0 ? { verb, password: rest } : syntax('PASS needs a password');
    case 'AUTH':
      if (args.length > 2) return syntax('AUTH takes a mechanism and an optional initial response');
      return { verb, mechanism: args[0]?.toUpperCase() ?? null, initialResponse: args[1] ?? null };
    case 'CAPA':
    case 'STLS':
    case 'STAT':
    case 'RSET':
    case 'NOOP':
    case 'QUIT':
      return noArgs(verb);
    case 'LIST':
    case 'UIDL': {
      if (args.length === 0) return { verb, msg: null };
      if (args.length > 1) return syntax(`${verb} takes at most one message number`);
      const msg = messageNumber(args[0], verb);
      return typeof msg === 'string' ? syntax(msg) : { verb, msg };
    }
    case 'RETR':
    case 'DELE': {
      if (args.length !== 1) return syntax(`${verb} needs one message number`);
      const msg = messageNumber(args[0], verb);
      return typeof msg === 'string' ? syntax(msg) : { verb, msg };
    }
    case 'TOP': {
      if (args.length !== 2) return syntax('TOP needs a message number and a line count');
      const msg = messageNumber(args[0], verb);
      const lines = number(args[1]);
      if (typeof msg === 'string') return syntax(msg);
      if (lines === null) return syntax('TOP needs a non-negative line count');
      return { verb, msg, lines: Math.min(lines, MAX_TOP_LINES) };
    }
    default:
      return unknown;
  }
}

export function parseSaslResponse(line: string): SaslResponse {
  return line.trim() === '*' ? { kind: 'cancel' } : { kind: 'response', base64: line.trim() };
}
