/**
 * One SMTP, LMTP or submission connection (RFC 5321, RFC 2033, RFC 6409): reads commands,
 * keeps the transaction state, streams DATA or BDAT chunks (RFC 3030) into a MessageSink
 * and hands accepted messages to local delivery. The three are one session with a mode:
 * LMTP differs in the greeting verb (LHLO) and in its one reply per recipient at the end
 * of a message; submission asks for AUTH (RFC 4954) before MAIL, lets the account send
 * only as itself (smtp/sender-policy.ts), queues recipients in other domains, and adds a
 * Message-ID and a Date to a message that lacks them.
 *
 * Rules: input is processed strictly in order (PIPELINING), one command at a time,
 * yielding to the event loop between commands so one client's pipeline cannot starve
 * the others; replies are flushed when the input buffer runs dry; nothing is
 * acknowledged before the store has committed; every input is bounded (line length,
 * errors, recipients, size, idle time, bytes buffered: a body streams into the store in
 * chunks and reading pauses while they are written).
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { decodeSaslPlain, mayUsePlaintext, type Authenticator } from '../auth/authenticate.js';
import { outboundDomains, type Injector } from '../delivery/inject.js';
import { readOriginal, sendDeliveryReport } from '../queue/delivery-report.js';
import { UserError } from '../errors.js';
import { normalizeSender } from '../mail/address.js';
import { receivedHeader, rfc5322Date } from '../mail/trace-headers.js';
import type { ByteBudget } from '../mail/byte-budget.js';
import type { RecipientResolver } from '../delivery/recipient-resolver.js';
import type { LocalDelivery } from '../delivery/local-delivery.js';
import type { Account, BlobRef, BlobStore, DeliveryOutcome, OutboundMessage } from '../store/store.js';
import type { TrustedNetworks } from '../config/trusted-networks.js';
import { authservId, HeaderFilter } from '../mail/header-filter.js';
import type { InboundAuth } from './inbound-auth.js';
import type { Dnsbl } from './dnsbl.js';
import type { SpamFilter, SpamVerdict } from './spam-filter.js';
import type { GreylistOptions, Guard } from '../auth/guard.js';
import { parseCommand, type Command, type MailParams, type RcptParams } from './command-parser.js';
import { DataReader, type DataResult } from './data-reader.js';
import { formatMultiline, formatReply, Replies, type Reply } from './replies.js';
import { addressLiteral, deliveryRecipients, startMessage, withProtocol, type MessageBody, type Transaction } from './transaction.js';
import type { TlsProvider } from '../config/tls.js';
import type { SenderPolicy } from './sender-policy.js';

export interface SessionConfig {
  mode: 'smtp' | 'lmtp' | 'submission';
  /** Submission: allow AUTH without TLS from any client (loopback always may). */
  insecureAuth?: boolean;
  hostname: string;
  maxMessageSize: number;
  maxRecipients: number;
  maxLineLength: number;
  maxErrors: number;
  idleTimeoutMs: number;
  /** Pause before the greeting to catch clients that talk first (MX only); 0 = off. */
  greetingDelayMs: number;
}

export interface SessionDeps {
  resolver: RecipientResolver;
  delivery: LocalDelivery;
  blobs: BlobStore;
  /** Message bytes all sessions may hold in memory together. */
  budget: ByteBudget;
  tls: TlsProvider | null;
  log: Logger;
  /** Submission only: logins and who may send as whom. */
  auth?: Authenticator;
  senders?: SenderPolicy;
  /** Sends success notices (RFC 3461 NOTIFY=SUCCESS) for local recipients. */
  injector?: Injector;
  /** Clients that skip the checks for strangers (MX only). */
  trusted?: TrustedNetworks;
  /** SPF, DKIM, DMARC and ARC for mail from untrusted clients on the MX. */
  inboundAuth?: InboundAuth;
  /** Rates and greylisting for strangers (MX), and per-account rates (submission). */
  guard?: Guard;
  /** MX: the spam filter (rspamd) that sees strangers' messages. */
  spamFilter?: SpamFilter;
  /** MX: DNS blocklists asked about strangers before the greeting. */
  dnsbl?: Dnsbl;
  /** MX: greylisting for every domain (`all`), else per domain policy, with its timings. */
  greylist?: { all: boolean } & GreylistOptions;
}

type MailState = Extract<State, { phase: 'mail' }>;

type State =
  | { phase: 'greeting' }
  | { phase: 'connected' }
  | { phase: 'ready'; helo: string; esmtp: boolean }
  | { phase: 'mail'; helo: string; esmtp: boolean; tx: Transaction }
  | { phase: 'data'; helo: string; esmtp: boolean; tx: Transaction; reader: DataReader; body: MessageBody }
  /** Reading the client's SASL responses (AUTH PLAIN without an initial response, AUTH LOGIN). */
  | { phase: 'auth'; helo: string; esmtp: boolean; mechanism: 'PLAIN' | 'LOGIN'; user: string | null }
  /** Reading a BDAT chunk; `tx` null means the chunk is read and discarded, then `error` is sent. */
  | { phase: 'chunk'; remaining: number; last: boolean; tx: Transaction | null; error: Reply | null; resume: State }
  | { phase: 'closed' };

const EMPTY = Buffer.alloc(0);
/** Unprocessed input held while a command runs or a body chunk is written; past it, reading pauses. */
const MAX_PENDING = 64 * 1024;
/** NOOP, RSET, VRFY, HELP allowed before each further one counts as an error (as Postfix's smtpd_junk_command_limit). */
const JUNK_COMMAND_LIMIT = 100;
/** Reply bytes the socket may hold for a client that does not read; past it, input waits. */
const MAX_UNSENT = 256 * 1024;
/** Replies collected before they are handed to the socket within one burst of input. */
const FLUSH_EVERY = 256;

const hasNonAscii = (s: string) => /[^\x00-\x7f]/.test(s);

export class SmtpSession {
  private state: State = { phase: 'greeting' };
  private socket: Socket;
  private pending: Buffer = EMPTY;
  private out: string[] = [];
  private busy = false;
  private waitingForDrain = false;
  private discardingLongLine = false;
  private errors = 0;
  private junkCommands = 0;
  private greetingTimer: NodeJS.Timeout | null = null;
  /** Runs while a command line is incomplete: a client dribbling a byte at a time (which keeps the socket from idling) still has only the idle time to finish the line. */
  private lineTimer: NodeJS.Timeout | null = null;
  private secure = false;
  private closing = false;
  private commitsInFlight = 0;
  /** Submission: the account that authenticated. */
  private account: Account | null = null;
  private readonly remoteAddress: string;
  /** MX only: a client from outside the trusted networks, whose mail is authenticated and may be refused by policy. */
  private readonly stranger: boolean;
  private readonly log: Logger;
  private readonly onSocketData = (chunk: Buffer) => this.onData(chunk);

  constructor(
    socket: Socket,
    private readonly config: SessionConfig,
    private readonly deps: SessionDeps,
    private readonly onClose: () => void,
  ) {
    this.socket = socket;
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    this.stranger = config.mode === 'smtp' && !(deps.trusted?.has(this.remoteAddress) ?? false);
    this.log = deps.log.child({ mode: config.mode, remote: this.remoteAddress });
    this.secure = socket instanceof TLSSocket; // implicit TLS (submissions)
    this.attach(socket);
    // A stranger is looked up in the blocklists while the greeting waits (and the delay runs).
    const listed = this.stranger && deps.dnsbl?.zones.length ? deps.dnsbl.listed(this.remoteAddress) : null;
    const start = () => {
      if (!listed) return this.greet();
      void listed.then((zone) => (zone ? this.refuseListed(zone) : this.greet()));
    };
    if (config.greetingDelayMs > 0) this.greetingTimer = setTimeout(start, config.greetingDelayMs);
    else start();
  }

  /** True while a mail transaction is open (used when draining on shutdown). */
  get inTransaction(): boolean {
    return this.inTransactionState() || this.busy;
  }

  /** Ask the session to end: now if idle, else right after its current transaction. */
  shutdown(): void {
    this.closing = true;
    if (!this.inTransaction) this.close(Replies.shuttingDown);
  }

  /** True while a message is being committed: its reply must still go out, even on shutdown. */
  get committing(): boolean {
    return this.commitsInFlight > 0;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private attach(socket: Socket): void {
    socket.on('data', this.onSocketData);
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'socket error'));
    socket.on('close', () => this.closed());
    socket.setTimeout(this.config.idleTimeoutMs, () => this.close(Replies.idleTimeout));
  }

  private greet(): void {
    if (this.state.phase !== 'greeting') return;
    if (this.pending.length > 0) {
      // RFC 5321 4.3.1: the client must wait for the greeting; early talkers are spam engines.
      this.close(Replies.earlyTalker);
      return;
    }
    this.state = { phase: 'connected' };
    const host = this.config.hostname;
    const mode = this.config.mode;
    this.reply(mode === 'lmtp' ? Replies.lmtpReady(host) : mode === 'submission' ? Replies.submissionReady(host) : Replies.serviceReady(host));
    this.flush();
  }

  private refuseListed(zone: string): void {
    if (this.state.phase !== 'greeting') return;
    this.log.info({ zone }, 'refused: listed by a DNS blocklist');
    this.close(Replies.blocklisted(addressLiteral(this.remoteAddress).replace(/^IPv6:/, ''), zone));
  }

  /** Drops a body being received (client gone, transaction over without a commit). */
  private abortBody(): void {
    const s = this.state;
    if (s.phase === 'data') s.body.sink.abort();
    else if (s.phase === 'mail') s.tx.chunked?.sink.abort();
    else if (s.phase === 'chunk') s.tx?.chunked?.sink.abort();
  }

  private closed(): void {
    if (this.state.phase === 'closed') return;
    this.abortBody();
    if (this.greetingTimer) clearTimeout(this.greetingTimer);
    this.clearLineTimer();
    this.state = { phase: 'closed' };
    this.onClose();
  }

  private close(reply?: Reply): void {
    if (this.state.phase === 'closed') return;
    this.abortBody();
    if (this.greetingTimer) clearTimeout(this.greetingTimer);
    if (reply) this.reply(reply);
    this.flush();
    this.state = { phase: 'closed' };
    this.socket.end();
    // Do not wait forever for a peer that never reads.
    setTimeout(() => this.socket.destroy(), 5000).unref();
    this.onClose();
  }

  private reply(r: Reply): void {
    this.out.push(formatReply(r));
  }

  private flush(): void {
    if (this.out.length === 0 || this.socket.destroyed) return;
    this.socket.write(this.out.length === 1 ? this.out[0]! : this.out.join(''));
    this.out = [];
  }

  private onData(chunk: Buffer): void {
    if (this.state.phase === 'closed') return;
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.pending.length > MAX_PENDING) this.socket.pause();
    if (this.state.phase === 'greeting') return;
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.state.phase !== 'closed') {
        if (this.state.phase === 'data') {
          if (this.pending.length === 0) break;
          const chunk = this.pending;
          this.pending = EMPTY;
          const data = this.state;
          const result = data.reader.push(chunk);
          if (!result) {
            // Stop reading while the store catches up: what the client sends meanwhile
            // waits in the kernel's socket buffer, not in our memory.
            if (data.body.sink.full) {
              this.socket.pause();
              await data.body.sink.writable();
              this.resumeReading();
            }
            continue;
          }
          this.pending = result.rest;
          await this.endData(data, result);
          continue;
        }
        if (this.state.phase === 'chunk') {
          const chunk = this.state;
          const complete = this.readChunk(chunk);
          await chunk.tx?.chunked?.sink.writable();
          if (!complete) {
            if (this.pending.length === 0) break;
            continue;
          }
          await this.endChunk(chunk);
          continue;
        }
        if (this.closing && !this.inTransactionState()) {
          this.close(Replies.shuttingDown);
          break;
        }
        // A pipelining client that does not read its replies must not grow our memory:
        // stop taking commands until the socket has drained.
        if (this.out.length >= FLUSH_EVERY) this.flush();
        if (this.socket.writableLength > MAX_UNSENT) {
          this.waitForDrain();
          break;
        }
        const line = this.takeLine();
        if (line === null) {
          if (this.pending.length > 0 || this.discardingLongLine)
            this.lineTimer ??= setTimeout(() => this.close(Replies.idleTimeout), this.config.idleTimeoutMs);
          break;
        }
        this.clearLineTimer();
        await this.handleLine(line);
        // Let other connections run before the next pipelined command.
        if (this.pending.length > 0) await new Promise((r) => setImmediate(r));
      }
    } catch (err) {
      this.log.error({ err }, 'session failed');
      this.close(Replies.localError);
    } finally {
      this.busy = false;
      this.flush();
      this.resumeReading();
    }
  }

  private clearLineTimer(): void {
    if (this.lineTimer) clearTimeout(this.lineTimer);
    this.lineTimer = null;
  }

  private resumeReading(): void {
    if (!this.waitingForDrain && this.pending.length < MAX_PENDING && this.socket.isPaused()) this.socket.resume();
  }

  private waitForDrain(): void {
    if (this.waitingForDrain) return;
    this.waitingForDrain = true;
    this.socket.pause();
    this.socket.once('drain', () => {
      this.waitingForDrain = false;
      if (this.state.phase !== 'closed') void this.pump(); // resumes reading when done
    });
  }

  private inTransactionState(): boolean {
    return this.state.phase === 'mail' || this.state.phase === 'data' || this.state.phase === 'chunk';
  }

  /** Next complete command line, `false` for an over-long one, null when none is buffered. */
  private takeLine(): string | false | null {
    const nl = this.pending.indexOf(10);
    if (nl < 0) {
      if (this.pending.length > this.config.maxLineLength) {
        this.discardingLongLine = true;
        this.pending = EMPTY;
      }
      return null;
    }
    const raw = this.pending.subarray(0, nl);
    this.pending = this.pending.subarray(nl + 1);
    if (this.discardingLongLine || raw.length > this.config.maxLineLength) {
      this.discardingLongLine = false;
      return false;
    }
    const end = raw.length > 0 && raw[raw.length - 1] === 13 ? raw.length - 1 : raw.length;
    return raw.toString('utf8', 0, end);
  }

  private fail(r: Reply): void {
    this.reply(r);
    if (++this.errors >= this.config.maxErrors) this.close(Replies.tooManyErrors);
  }

  /** Harmless commands that cost nothing to send: past a limit, each counts as an error. */
  private junk(r: Reply): void {
    if (++this.junkCommands > JUNK_COMMAND_LIMIT) this.fail(r);
    else this.reply(r);
  }

  private async handleLine(line: string | false): Promise<void> {
    if (line === false) return this.fail(Replies.lineTooLong);
    if (this.state.phase === 'auth') return this.authResponse(this.state, line);
    const cmd = parseCommand(line);
    switch (cmd.verb) {
      case 'ERROR':
        return this.fail(cmd.reply);
      case 'HELO':
      case 'EHLO':
      case 'LHLO':
        return this.hello(cmd);
      case 'MAIL':
        return this.mail(cmd.address, cmd.params);
      case 'AUTH':
        return this.auth(cmd.mechanism, cmd.initial);
      case 'RCPT':
        return this.rcpt(cmd.address, cmd.params);
      case 'DATA':
        return this.data();
      case 'BDAT':
        return this.bdat(cmd.size, cmd.last);
      case 'RSET':
        if (this.state.phase === 'mail') {
          this.abortBody();
          this.state = { phase: 'ready', helo: this.state.helo, esmtp: this.state.esmtp };
        }
        return this.junk(Replies.resetOk);
      case 'NOOP':
        return this.junk(Replies.ok);
      case 'HELP':
        return this.junk(Replies.help);
      case 'VRFY':
        return this.junk(Replies.vrfyCannot);
      case 'EXPN':
        return this.fail(Replies.notImplemented);
      case 'QUIT':
        return this.close(Replies.closing);
      case 'STARTTLS':
        return this.startTls();
    }
  }

  private hello(cmd: Extract<Command, { domain: string }>): void {
    const lmtp = this.config.mode === 'lmtp';
    if (lmtp !== (cmd.verb === 'LHLO')) {
      return this.fail(Replies.syntaxError(lmtp ? 'This is an LMTP server: use LHLO' : 'Use EHLO or HELO'));
    }
    const esmtp = cmd.verb !== 'HELO';
    this.state = { phase: 'ready', helo: cmd.domain, esmtp };
    if (!esmtp) return this.reply(Replies.heloOk(this.config.hostname));
    const lines = [
      `${this.config.hostname} greets ${cmd.domain}`,
      'PIPELINING',
      `SIZE ${this.config.maxMessageSize}`,
      '8BITMIME',
      'ENHANCEDSTATUSCODES',
      'SMTPUTF8',
      'CHUNKING',
      ...(lmtp ? [] : ['DSN']),
    ];
    if (this.deps.tls && !this.secure) lines.push('STARTTLS');
    if (this.config.mode === 'submission' && !this.account && this.mayAuthenticate()) lines.push('AUTH PLAIN LOGIN');
    this.out.push(formatMultiline(250, lines));
  }

  /** Submission: whether the authenticated account may send as `address` (the null sender never). */
  private async mayUse(address: string): Promise<boolean> {
    return address !== '' && (await this.deps.senders!.mayUse(this.account!, address));
  }

  private mayAuthenticate(): boolean {
    return mayUsePlaintext({ secure: this.secure, remoteAddress: this.remoteAddress, insecureAuth: Boolean(this.config.insecureAuth) });
  }

  /** AUTH (RFC 4954): PLAIN (with or without an initial response) and LOGIN, only where passwords may travel. */
  private async auth(mechanism: string, initial: string | null): Promise<void> {
    const s = this.state;
    if (this.config.mode !== 'submission' || !this.deps.auth) return this.fail(Replies.authNotOffered);
    if (s.phase !== 'ready') return this.fail(Replies.badSequence(s.phase === 'mail' ? 'AUTH not allowed during a mail transaction' : 'Send EHLO first'));
    if (this.account) return this.fail(Replies.badSequence('Already authenticated'));
    if (!this.mayAuthenticate()) return this.fail(Replies.authNeedsTls);
    if (mechanism !== 'PLAIN' && mechanism !== 'LOGIN') return this.fail(Replies.authMechanism);
    const next: Extract<State, { phase: 'auth' }> = { phase: 'auth', helo: s.helo, esmtp: s.esmtp, mechanism, user: null };
    if (mechanism === 'PLAIN') {
      if (initial === null) {
        this.state = next;
        return this.reply(Replies.authChallenge(''));
      }
      return this.authResponse(next, initial);
    }
    if (initial !== null && initial !== '=') return this.authResponse(next, initial);
    this.state = next;
    this.reply(Replies.authChallenge(Buffer.from('Username:').toString('base64')));
  }

  private async authResponse(s: Extract<State, { phase: 'auth' }>, line: string): Promise<void> {
    const ready: State = { phase: 'ready', helo: s.helo, esmtp: s.esmtp };
    this.state = ready;
    if (line === '*') return this.fail(Replies.authCancelled);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(line)) return this.fail(Replies.authBadResponse);
    let user: string;
    let password: string;
    if (s.mechanism === 'PLAIN') {
      const plain = decodeSaslPlain(line);
      if (!plain || (plain.authzid && plain.authzid.toLowerCase() !== plain.user.toLowerCase())) return this.fail(Replies.authFailed);
      ({ user, password } = plain);
    } else if (s.user === null) {
      this.state = { ...s, user: Buffer.from(line, 'base64').toString('utf8') };
      return this.reply(Replies.authChallenge(Buffer.from('Password:').toString('base64')));
    } else {
      user = s.user;
      password = Buffer.from(line, 'base64').toString('utf8');
    }
    let account: Account | null;
    try {
      account = await this.deps.auth!.login(user, password, { protocol: 'submission', remoteAddress: this.remoteAddress });
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'login check failed');
      return this.reply(Replies.authUnavailable);
    }
    if (!account) return this.fail(Replies.authFailed);
    this.account = account;
    this.reply(Replies.authOk);
  }

  private async mail(rawAddress: string, params: MailParams): Promise<void> {
    const s = this.state;
    if (s.phase === 'mail') return this.fail(Replies.badSequence('Nested MAIL command'));
    if (s.phase !== 'ready') return this.fail(Replies.badSequence(`Send ${this.config.mode === 'lmtp' ? 'LHLO' : 'EHLO/HELO'} first`));
    // RFC 5321 4.1.1.11 / 2.2.1: service extension parameters need EHLO (or LHLO).
    if (!s.esmtp && Object.keys(params).length > 0) {
      return this.fail(Replies.paramNotImplemented('MAIL parameters require EHLO'));
    }
    if (!params.smtputf8 && hasNonAscii(rawAddress)) return this.fail(Replies.utf8NotDeclared);
    let from = '';
    if (rawAddress !== '') {
      try {
        from = normalizeSender(rawAddress);
      } catch (err) {
        return this.fail(Replies.badSender((err as Error).message));
      }
    }
    if (params.size !== undefined && params.size > this.config.maxMessageSize) {
      return this.fail(Replies.messageTooBig(this.config.maxMessageSize));
    }
    if (this.config.mode === 'submission') {
      if (!this.account) return this.fail(Replies.authRequired);
      if (!(await this.mayUse(from))) return this.fail(Replies.notOwner(from, this.account.address));
      const guard = this.deps.guard;
      if (guard && !guard.isTrusted(this.remoteAddress)) {
        const over = guard.accountMessage(this.account.address);
        if (over !== 'ok') {
          this.log.warn({ user: this.account.address, per: over }, 'account message rate reached');
          return this.reply(Replies.accountRate(over));
        }
      }
    }
    if (this.stranger) {
      const wait = this.deps.guard?.messageWait(this.remoteAddress) ?? 0;
      if (wait > 0) return this.reply(Replies.messageRate(wait));
    }
    this.state = { phase: 'mail', helo: s.helo, esmtp: s.esmtp, tx: { from, params, recipients: [], refused: 0, startedAt: Date.now() } };
    this.reply(Replies.senderOk);
  }

  private async rcpt(rawAddress: string, params: RcptParams): Promise<void> {
    const s = this.state;
    if (s.phase !== 'mail') return this.fail(Replies.badSequence('Need MAIL before RCPT'));
    if ((params.notify || params.orcpt) && (this.config.mode === 'lmtp' || !s.esmtp))
      return this.fail(Replies.paramNotImplemented('RCPT parameters require EHLO'));
    if (s.tx.recipients.length + s.tx.refused >= this.config.maxRecipients) return this.reply(Replies.tooManyRecipients);
    if (!s.tx.params.smtputf8 && hasNonAscii(rawAddress)) return this.fail(Replies.utf8NotDeclared);
    let resolution;
    try {
      resolution = await this.deps.resolver.resolve(rawAddress, s.tx.params.size);
    } catch (err) {
      if (err instanceof UserError) return this.fail(Replies.badAddress(err.message));
      this.log.warn({ err: (err as Error).message }, 'recipient lookup failed');
      return this.reply(Replies.storeUnavailable);
    }
    const address = resolution.address;
    if (resolution.kind === 'not-local') {
      // Only an authenticated submission relays (never a trusted network: DESIGN.md).
      if (!this.account) return this.fail(Replies.relayDenied(address));
      s.tx.recipients.push({ address, accountIds: [], remote: true, ...params });
      return this.reply(Replies.recipientOk);
    }
    if (resolution.kind === 'unknown-user') return this.fail(Replies.noSuchUser(address));
    if (resolution.kind === 'over-quota') {
      s.tx.refused++;
      return this.fail(Replies.mailboxFull(address));
    }
    if (this.stranger && (await this.greylisted(s.tx.from, address))) return;
    s.tx.recipients.push({ address, accountIds: resolution.accountIds, ...params });
    this.reply(Replies.recipientOk);
  }

  /** rspamd's verdict on a stranger's message; null (the message goes through) when it gives none. */
  private async spamCheck(s: { helo: string; tx: Transaction }, blob: BlobRef, ternId: string): Promise<SpamVerdict | null> {
    try {
      return await this.deps.spamFilter!.check({
        message: this.deps.blobs.staged(blob),
        ip: addressLiteral(this.remoteAddress).replace(/^IPv6:/, ''),
        helo: s.helo,
        from: s.tx.from,
        rcpts: s.tx.recipients.map((r) => r.address),
        hostname: this.config.hostname,
        ternId,
      });
    } catch (err) {
      this.log.warn({ id: ternId, err: (err as Error).message }, 'spam filter gave no verdict; the message goes through');
      return null;
    }
  }

  /** Greylisting (RFC 6647) of a stranger's recipient, where it is on: true when the 451 went out. */
  private async greylisted(from: string, rcpt: string): Promise<boolean> {
    const { guard, greylist, inboundAuth } = this.deps;
    if (!guard || !greylist) return false;
    const domain = rcpt.slice(rcpt.lastIndexOf('@') + 1);
    if (!greylist.all && !(await inboundAuth?.policyFor(domain))?.greylist) return false;
    let wait: number;
    try {
      wait = await guard.greylistWait(this.remoteAddress, from, rcpt, greylist);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'greylist check failed; letting the message through');
      return false;
    }
    if (wait === 0) return false;
    this.log.info({ from, rcpt, wait }, 'greylisted');
    this.reply(Replies.greylisted(wait));
    return true;
  }

  /** Starts receiving the body: a new Tern id and a sink that streams it into the store. */
  private beginMessage(): MessageBody {
    // Only Tern may say what Tern's checks found (RFC 8601 5): a stranger's claims are dropped.
    const hostname = this.config.hostname.toLowerCase();
    const filter = this.stranger
      ? new HeaderFilter((name, value) => name.toLowerCase() === 'authentication-results' && authservId(value) === hostname)
      : undefined;
    return startMessage(this.deps.blobs, this.deps.budget, filter);
  }

  private noRecipients(): Reply {
    return this.config.mode === 'lmtp' ? Replies.noValidRecipientsLmtp : Replies.noValidRecipients;
  }

  private data(): void {
    const s = this.state;
    if (s.phase !== 'mail') return this.fail(Replies.badSequence('Need MAIL and RCPT before DATA'));
    if (s.tx.recipients.length === 0) return this.fail(this.noRecipients());
    if (s.tx.chunked) return this.fail(Replies.badSequence('DATA cannot follow BDAT in one transaction'));
    if (this.deps.budget.exhausted) return this.reply(Replies.insufficientStorage);
    const body = this.beginMessage();
    const reader = new DataReader(this.config.maxMessageSize, (piece) => body.write(piece));
    this.state = { phase: 'data', helo: s.helo, esmtp: s.esmtp, tx: s.tx, reader, body };
    this.reply(Replies.startData);
  }

  private async endData(s: Extract<State, { phase: 'data' }>, result: DataResult): Promise<void> {
    this.state = { phase: 'ready', helo: s.helo, esmtp: s.esmtp };
    if (result.tooBig || result.smuggling) s.body.sink.abort();
    if (result.tooBig) return this.answer(s.tx, Replies.messageTooBig(this.config.maxMessageSize));
    if (result.smuggling) {
      this.log.warn({ id: s.body.ternId }, 'rejected message with bare LF around end-of-data');
      return this.answer(s.tx, Replies.smuggling);
    }
    if (result.bareLineFeeds > 0) this.log.debug({ id: s.body.ternId, bareLineFeeds: result.bareLineFeeds }, 'normalised bare LFs to CRLF');
    await this.commit(s, s.body);
  }

  /** BDAT (RFC 3030): the chunk follows the command at once, so it is always read, even when refused. */
  private bdat(size: number, last: boolean): void {
    const s = this.state;
    const discard = (error: Reply) => {
      this.state = { phase: 'chunk', remaining: size, last, tx: null, error, resume: s };
    };
    if (s.phase !== 'mail') return discard(Replies.badSequence('Need MAIL and RCPT before BDAT'));
    if (s.tx.recipients.length === 0) return discard(this.noRecipients());
    if (!s.tx.chunked && this.deps.budget.exhausted) return discard(Replies.insufficientStorage);
    s.tx.chunked ??= this.beginMessage();
    this.state = { phase: 'chunk', remaining: size, last, tx: s.tx, error: null, resume: s };
  }

  /** Takes buffered chunk bytes; true once the whole chunk has been read. */
  private readChunk(s: Extract<State, { phase: 'chunk' }>): boolean {
    if (s.remaining > 0 && this.pending.length > 0) {
      const n = Math.min(s.remaining, this.pending.length);
      const piece = this.pending.subarray(0, n);
      this.pending = this.pending.subarray(n);
      s.remaining -= n;
      const body = s.tx?.chunked;
      if (body && !s.error) {
        if (body.sink.length + n > this.config.maxMessageSize) s.error = Replies.messageTooBig(this.config.maxMessageSize);
        else body.write(piece);
      }
    }
    return s.remaining === 0;
  }

  private async endChunk(s: Extract<State, { phase: 'chunk' }>): Promise<void> {
    const resume = s.resume as MailState;
    if (!s.tx) {
      this.state = s.resume;
      return this.fail(s.error!);
    }
    if (s.error) {
      // The transaction is over: later chunks of it get 503 (RFC 3030 2). LMTP answers
      // per recipient only after BDAT LAST (RFC 2033 4.3).
      s.tx.chunked?.sink.abort();
      this.state = { phase: 'ready', helo: resume.helo, esmtp: resume.esmtp };
      return s.last ? this.answer(s.tx, s.error) : this.reply(s.error);
    }
    if (!s.last) {
      this.state = resume;
      return this.reply(Replies.chunkReceived(s.tx.chunked!.sink.length));
    }
    this.state = { phase: 'ready', helo: resume.helo, esmtp: resume.esmtp };
    await this.commit(resume, s.tx.chunked!);
  }

  /** The final reply of a transaction: once for SMTP, once per recipient in RCPT order for LMTP (RFC 2033 4.2). */
  private answer(tx: Transaction, r: Reply | ((rcpt: string) => Reply)): void {
    const n = this.config.mode === 'lmtp' ? tx.recipients.length : 1;
    for (let i = 0; i < n; i++) this.reply(typeof r === 'function' ? r(tx.recipients[i]!.address) : r);
  }

  /** Commits the message; the 250 goes out only after the store has synced it. */
  private async commit(s: { helo: string; esmtp: boolean; tx: Transaction }, body: MessageBody): Promise<void> {
    const tx = s.tx;
    const submission = this.config.mode === 'submission';
    let outcomes: DeliveryOutcome[];
    let blobHash = '';
    this.commitsInFlight++;
    try {
      body.end();
      const blob = await body.sink.finish();
      blobHash = blob.hash;
      const verdict = this.stranger && this.deps.inboundAuth ? await this.authenticate(s, blob) : null;
      const spam = this.stranger && this.deps.spamFilter && verdict?.action !== 'reject' ? await this.spamCheck(s, blob, body.ternId) : null;
      const refusal =
        verdict?.action === 'reject'
          ? verdict.reply!
          : spam?.action === 'reject'
            ? Replies.spamRejected
            : spam?.action === 'defer'
              ? Replies.spamDeferred
              : null;
      if (refusal) {
        if ('upload' in blob) void this.deps.blobs.discard(blob.upload).catch(() => undefined);
        const why = verdict?.action === 'reject' ? { ...verdict.results, reason: verdict.reason } : { spam: spam!.rspamd };
        this.log.info({ id: body.ternId, from: tx.from, ...why }, `refused: ${refusal.text}`);
        return this.answer(tx, refusal);
      }
      const added = submission ? await this.submissionHeaders(tx, body) : '';
      if (added === null) return; // refused: the reply is out
      const date = new Date();
      const protocol = withProtocol({
        lmtp: this.config.mode === 'lmtp',
        esmtp: s.esmtp,
        utf8: Boolean(tx.params.smtputf8),
        secure: this.secure,
        authenticated: this.account !== null,
      });
      const trace = { ternId: body.ternId, helo: s.helo, protocol, remoteAddress: addressLiteral(this.remoteAddress), hostname: this.config.hostname, date };
      const recipients = deliveryRecipients({ tx, ...trace });
      if (added) for (const r of recipients) r.prefix = Buffer.concat([r.prefix, Buffer.from(added)]);
      if (verdict || spam) {
        const header = Buffer.from((verdict?.header ?? '') + (spam?.header ?? ''));
        for (const r of recipients) r.prefix = Buffer.concat([r.prefix, header]);
        if (verdict?.action === 'junk' || spam?.action === 'junk') {
          const why = verdict?.action === 'junk' ? { ...verdict.results, reason: verdict.reason } : { spam: spam!.rspamd };
          this.log.info({ id: body.ternId, from: tx.from, ...why }, 'delivered to Junk');
          for (const r of recipients) r.mailbox = await this.deps.inboundAuth!.junkMailbox(r.accountId);
        }
      }
      const remote = tx.recipients.filter((r) => r.remote);
      const outbound: OutboundMessage | undefined =
        remote.length === 0
          ? undefined
          : {
              prefix: Buffer.from(receivedHeader({ ...trace, localHostname: trace.hostname }) + added),
              domains: outboundDomains(remote.map((r) => ({ address: r.address, notify: r.notify ?? null, orcpt: r.orcpt ?? null }))),
              dsn: { ret: tx.params.ret ?? null, envid: tx.params.envid ?? null },
            };
      outcomes = await this.deps.delivery.deliver({
        ternId: body.ternId,
        blob,
        envelopeFrom: tx.from,
        recipients,
        internalDate: date,
        atomic: this.config.mode !== 'lmtp',
        outbound,
        rcptCount: tx.recipients.length,
        startedAt: tx.startedAt,
        via: this.config.mode,
      });
    } catch (err) {
      body.sink.abort();
      this.log.warn({ id: body.ternId, err: (err as Error).message }, 'delivery failed; replied 451');
      return this.answer(tx, Replies.storeUnavailable);
    } finally {
      this.commitsInFlight--;
    }
    const stored = new Set(outcomes.flatMap((o) => (o.status === 'stored' ? [o.accountId] : [])));
    const full = new Set(outcomes.flatMap((o) => (o.status === 'over-quota' ? [o.accountId] : [])));
    // What one RCPT address got: stored if any of its accounts was, else why not.
    const replyFor = (accountIds: number[], rcpt: string): Reply => {
      if (accountIds.some((id) => stored.has(id))) return this.config.mode === 'lmtp' ? Replies.delivered(body.ternId, rcpt) : Replies.queued(body.ternId);
      return accountIds.some((id) => full.has(id)) ? Replies.overQuotaAtCommit(rcpt) : Replies.mailboxGone(rcpt);
    };
    if (this.config.mode === 'lmtp') {
      for (const r of tx.recipients) this.reply(replyFor(r.accountIds, r.address));
      return;
    }
    // SMTP: one reply. Stored for anyone, or queued: accepted (accounts deleted since RCPT
    // are skipped; an atomic delivery is never stored or queued for only some of its
    // recipients over quota).
    const refused = stored.size === 0 && full.size > 0;
    if (stored.size > 0 || (!refused && tx.recipients.some((r) => r.remote))) {
      this.reply(Replies.queued(body.ternId));
      const delivered = tx.recipients.filter((r) => /(^|,)SUCCESS(,|$)/.test(r.notify ?? '') && r.accountIds.some((id) => stored.has(id)));
      if (delivered.length > 0 && tx.from) void this.reportDelivered(tx, body.ternId, blobHash, delivered);
      return;
    }
    const first = tx.recipients.find((r) => r.accountIds.some((id) => full.has(id))) ?? tx.recipients[0]!;
    this.reply(replyFor(first.accountIds, first.address));
  }

  /** The MX checks of a stranger's message (SPF for the client and MAIL FROM, the signatures and DMARC of the body). */
  private authenticate(s: { helo: string; tx: Transaction }, blob: BlobRef) {
    const domains = s.tx.recipients.map((r) => r.address.slice(r.address.lastIndexOf('@') + 1));
    const ip = addressLiteral(this.remoteAddress).replace(/^IPv6:/, '');
    return this.deps.inboundAuth!.check({ ip, helo: s.helo, sender: s.tx.from, message: this.deps.blobs.staged(blob), recipientDomains: domains });
  }

  /** RFC 3461: tells the sender, who asked with NOTIFY=SUCCESS, that local recipients have the message (after the 250; failures are only logged). */
  private async reportDelivered(tx: Transaction, ternId: string, hash: string, recipients: Transaction['recipients']): Promise<void> {
    const injector = this.deps.injector;
    if (!injector) return;
    try {
      const chunks = await this.deps.blobs.read(hash);
      if (!chunks) return;
      const original = await readOriginal(chunks, tx.params.ret === 'FULL');
      const entry = { ternId, envelopeFrom: tx.from, dsn: { ret: tx.params.ret ?? null, envid: tx.params.envid ?? null }, createdAt: new Date(tx.startedAt) };
      const list = recipients.map((r) => ({ address: r.address, reply: '250 2.0.0 delivered to the mailbox', orcpt: r.orcpt ?? null }));
      await sendDeliveryReport(injector, { hostname: this.config.hostname, ternId: `${ternId}S`, entry, action: 'delivered', recipients: list, original });
    } catch (err) {
      this.log.warn({ id: ternId, err: (err as Error).message }, 'success notice failed');
    }
  }

  /**
   * Submission (RFC 6409 8): every From address must be one the account may use (else the
   * message is refused and null returned); the header lines to add (Message-ID, Date, and
   * From when missing) are returned, to go before the message.
   */
  private async submissionHeaders(tx: Transaction, body: MessageBody): Promise<string | null> {
    const envelope = body.sink.structure?.envelope;
    const from = (envelope?.from ?? []).filter((a) => a.mailbox !== null).map((a) => `${a.mailbox}@${a.host ?? ''}`);
    for (const address of from) {
      if (!(await this.mayUse(address))) {
        body.sink.abort();
        this.reply(Replies.notOwner(address, this.account!.address));
        return null;
      }
    }
    let added = '';
    if (from.length === 0) added += `From: <${tx.from}>\r\n`;
    if (!envelope?.date) added += `Date: ${rfc5322Date(new Date())}\r\n`;
    if (!envelope?.messageId) added += `Message-ID: <${body.ternId}@${this.config.hostname}>\r\n`;
    return added;
  }

  private startTls(): void {
    const tls = this.deps.tls;
    if (!tls || this.secure) return this.fail(tls ? Replies.badSequence('Already using TLS') : Replies.tlsUnavailable);
    if (this.state.phase === 'mail') return this.fail(Replies.badSequence('STARTTLS not allowed during a mail transaction'));
    // Anything pipelined after STARTTLS was sent in clear text: drop it (CVE-2011-0411 class).
    this.pending = EMPTY;
    this.reply(Replies.readyToStartTls);
    this.flush();
    const plain = this.socket;
    plain.removeListener('data', this.onSocketData);
    plain.removeAllListeners('timeout');
    plain.setTimeout(0);
    const secure = new TLSSocket(plain, { isServer: true, secureContext: tls.context() });
    this.socket = secure;
    this.secure = true;
    this.state = { phase: 'connected' }; // RFC 3207 4.2: forget everything, expect EHLO again
    this.attach(secure);
  }
}
