/**
 * Pure SMTP/LMTP command parser: one command line (without CRLF) in, a typed command
 * or a syntax error reply out. No sockets, no store; tested table-driven in
 * test/smtp/command-parser.test.ts.
 */
import { Replies, type Reply } from './replies.js';

export type MailParams = {
  size?: number;
  body?: '7BIT' | '8BITMIME';
  smtputf8?: boolean;
  /** RFC 3461 4.3: return the whole message or only its headers in a failure notice. */
  ret?: 'FULL' | 'HDRS';
  /** RFC 3461 4.4: the sender's envelope id (xtext decoded). */
  envid?: string;
};

/** RFC 3461 RCPT parameters. */
export type RcptParams = {
  /** NEVER, or a comma-separated subset of SUCCESS, FAILURE, DELAY (upper-cased). */
  notify?: string;
  /** "addr-type;address", the original recipient (xtext decoded). */
  orcpt?: string;
};

/** RFC 3461 4: xtext ("+" and two hex digits stand for a byte); null when malformed. */
export function decodeXtext(value: string): string | null {
  if (!/^(?:[!-*,-<>-~]|\+[0-9A-F]{2})*$/.test(value)) return null;
  return value.replace(/\+([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

function parseRcptParams(rest: string): RcptParams | Reply {
  const params: RcptParams = {};
  for (const token of rest.trim().split(/\s+/).filter(Boolean)) {
    const eq = token.indexOf('=');
    const key = (eq < 0 ? token : token.slice(0, eq)).toUpperCase();
    const value = eq < 0 ? '' : token.slice(eq + 1);
    if (key === 'NOTIFY') {
      const list = value.toUpperCase().split(',');
      const valid = list.every((v) => ['SUCCESS', 'FAILURE', 'DELAY'].includes(v)) || (list.length === 1 && list[0] === 'NEVER');
      if (!valid || params.notify !== undefined) return Replies.paramSyntax('Syntax: NOTIFY=NEVER or NOTIFY=SUCCESS,FAILURE,DELAY');
      params.notify = [...new Set(list)].join(',');
    } else if (key === 'ORCPT') {
      const decoded = decodeXtext(value);
      if (decoded === null || !/^[A-Za-z0-9-]+;.+/.test(decoded) || decoded.length > 500 || params.orcpt !== undefined) {
        return Replies.paramSyntax('Syntax: ORCPT=addr-type;xtext');
      }
      params.orcpt = decoded;
    } else {
      return Replies.paramNotImplemented(`Unsupported RCPT parameter ${key}`);
    }
  }
  return params;
}

export type Command =
  | { verb: 'HELO' | 'EHLO' | 'LHLO'; domain: string }
  | { verb: 'MAIL'; address: string; params: MailParams }
  | { verb: 'RCPT'; address: string; params: RcptParams }
  | { verb: 'DATA' | 'RSET' | 'NOOP' | 'QUIT' | 'STARTTLS' | 'HELP' }
  | { verb: 'VRFY' | 'EXPN'; arg: string }
  | { verb: 'BDAT'; size: number; last: boolean }
  | { verb: 'AUTH'; mechanism: string; initial: string | null }
  | { verb: 'ERROR'; reply: Reply };

const error = (reply: Reply): Command => ({ verb: 'ERROR', reply });

/** Extracts the mailbox between `<` and `>`; returns the rest of the line after `>`. */
export function parsePath(input: string): { address: string; rest: string } | null {
  let s = input.trimStart();
  if (!s.startsWith('<')) {
    // Tolerate a bare address without brackets (some old clients), RFC 5321 requires them.
    const m = /^(\S+)(.*)$/.exec(s);
    return m && m[1]!.includes('@') ? { address: m[1]!, rest: m[2]! } : null;
  }
  let inQuote = false;
  for (let i = 1; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && inQuote) {
      i++;
      continue;
    }
    if (c === '"') inQuote = !inQuote;
    else if (c === '>' && !inQuote) {
      let address = s.slice(1, i);
      // Drop a source route "@a,@b:" (RFC 5321 4.1.2, must be accepted and ignored).
      const route = /^@[^:]+:/.exec(address);
      if (route) address = address.slice(route[0].length);
      s = s.slice(i + 1);
      return { address, rest: s };
    }
  }
  return null;
}

function parseMailParams(rest: string): MailParams | Reply {
  const params: MailParams = {};
  for (const token of rest.trim().split(/\s+/).filter(Boolean)) {
    const eq = token.indexOf('=');
    const key = (eq < 0 ? token : token.slice(0, eq)).toUpperCase();
    const value = eq < 0 ? undefined : token.slice(eq + 1);
    switch (key) {
      case 'SIZE': {
        if (!value || !/^\d{1,15}$/.test(value)) return Replies.paramSyntax('Bad SIZE parameter');
        params.size = Number(value);
        break;
      }
      case 'BODY': {
        const body = value?.toUpperCase();
        if (body !== '7BIT' && body !== '8BITMIME') return Replies.paramNotImplemented('Unsupported BODY type');
        params.body = body;
        break;
      }
      case 'SMTPUTF8':
        if (value !== undefined) return Replies.paramSyntax('SMTPUTF8 takes no value');
        params.smtputf8 = true;
        break;
      case 'RET': {
        const ret = value?.toUpperCase();
        if ((ret !== 'FULL' && ret !== 'HDRS') || params.ret) return Replies.paramSyntax('Syntax: RET=FULL or RET=HDRS');
        params.ret = ret;
        break;
      }
      case 'ENVID': {
        const envid = value === undefined ? null : decodeXtext(value);
        if (envid === null || envid.length > 100 || params.envid !== undefined) return Replies.paramSyntax('Syntax: ENVID=xtext of at most 100 characters');
        params.envid = envid;
        break;
      }
      default:
        return Replies.paramNotImplemented(`Unsupported MAIL parameter ${key}`);
    }
  }
  return params;
}

export function parseCommand(line: string): Command {
  const sp = line.indexOf(' ');
  const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
  const arg = sp < 0 ? '' : line.slice(sp + 1);
  switch (verb) {
    case 'HELO':
    case 'EHLO':
    case 'LHLO': {
      const domain = arg.trim();
      if (!domain || /\s/.test(domain)) return error(Replies.paramSyntax(`Syntax: ${verb} hostname`));
      return { verb, domain };
    }
    case 'MAIL': {
      const m = /^FROM:/i.exec(arg);
      if (!m) return error(Replies.paramSyntax('Syntax: MAIL FROM:<address>'));
      const path = parsePath(arg.slice(m[0].length));
      if (!path) return error(Replies.paramSyntax('Syntax: MAIL FROM:<address>'));
      const params = parseMailParams(path.rest);
      if ('code' in params) return error(params);
      return { verb, address: path.address, params };
    }
    case 'RCPT': {
      const m = /^TO:/i.exec(arg);
      if (!m) return error(Replies.paramSyntax('Syntax: RCPT TO:<address>'));
      const path = parsePath(arg.slice(m[0].length));
      if (!path || !path.address) return error(Replies.paramSyntax('Syntax: RCPT TO:<address>'));
      const params = parseRcptParams(path.rest);
      if ('code' in params) return error(params);
      return { verb, address: path.address, params };
    }
    case 'DATA':
    case 'RSET':
    case 'QUIT':
    case 'STARTTLS':
      if (arg.trim()) return error(Replies.paramSyntax(`Syntax: ${verb} takes no arguments`));
      return { verb };
    case 'NOOP':
    case 'HELP':
      return { verb };
    case 'VRFY':
    case 'EXPN':
      return { verb, arg };
    case 'AUTH': {
      // RFC 4954 4: AUTH mechanism [initial-response]
      const m = /^([A-Za-z0-9_-]{1,20})(?: ([A-Za-z0-9+/]+={0,2}|=))?$/.exec(arg.trim());
      if (!m) return error(Replies.paramSyntax('Syntax: AUTH mechanism [initial-response]'));
      return { verb, mechanism: m[1]!.toUpperCase(), initial: m[2] ?? null };
    }
    case 'BDAT': {
      // RFC 3030 2: BDAT chunk-size [LAST]
      const m = /^(\d{1,15})(?: +(LAST))? *$/i.exec(arg);
      if (!m) return error(Replies.paramSyntax('Syntax: BDAT size [LAST]'));
      return { verb, size: Number(m[1]), last: Boolean(m[2]) };
    }
    default:
      return error(Replies.syntaxError());
  }
}
