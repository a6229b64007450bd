/**
 * One POP3 connection (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH PLAIN): the
 * AUTHORIZATION → TRANSACTION → UPDATE state machine over a maildrop snapshot of INBOX.
 *
 * Rules: commands run strictly in order, one at a time (PIPELINING), yielding to the event
 * loop between them; replies are flushed when the input runs dry. Message bodies stream
 * from the store with back-pressure (we wait on 'drain'), never whole in memory.
 * Passwords are taken only over TLS, from loopback, or with --insecure-auth. Deletions
 * happen only in the UPDATE state after QUIT; a dropped connection, an autologout or a
 * server shutdown deletes nothing. Every input is bounded: line length, bad commands,
 * failed logins, idle time, unsent output. Store failures become `-ERR [SYS/TEMP]` and
 * are logged; the process never goes down with a session.
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { decodeSaslPlain, mayUsePlaintext } from '../auth/authenticate.js';
import { NotFoundError } from '../errors.js';
import type { MailboxConfig, MailboxDeps } from '../net/mailbox-deps.js';
import { startTls, type ListenerSession } from '../net/tcp-listener.js';
import { parseCommand, parseSaslResponse, type Pop3Command } from './commands.js';
import { Maildrop, type DropMessage } from './maildrop.js';
import { DotStuffer, TopLimiter } from './multiline.js';
import { formatMultiline, formatReply, Replies, type Pop3Reply } from './replies.js';

export type Pop3Config = MailboxConfig & {
  /** Autologout after this much client silence; RFC 1939 3 asks for at least 10 minutes (the default). */
  idleTimeoutMs?: number;
  /** A command line must be finished within this of its first byte (a client dribbling bytes); the idle time by default. */
  lineTimeoutMs?: number;
};

type Verb = Exclude<Pop3Command['verb'], 'ERROR'>;

type State =
  /** `pending`: a USER name waiting for PASS, or an AUTH PLAIN waiting for the client's response line. */
  | { phase: 'authorization'; pending: { kind: 'user'; user: string } | { kind: 'sasl' } | null }
  | { phase: 'transaction'; maildrop: Maildrop }
  | { phase: 'update' }
  | { phase: 'closed' };

/** Which commands each state accepts (RFC 1939 4-6; CAPA in both, RFC 2449 5; STLS before login, RFC 2595 4). */
const ALLOWED: Record<Verb, ReadonlyArray<State['phase']>> = {
  USER: ['authorization'],
  PASS: ['authorization'],
  AUTH: ['authorization'],
  STLS: ['authorization'],
  CAPA: ['authorization', 'transaction'],
  QUIT: ['authorization', 'transaction'],
  STAT: ['transaction'],
  LIST: ['transaction'],
  UIDL: ['transaction'],
  RETR: ['transaction'],
  TOP: ['transaction'],
  DELE: ['transaction'],
  RSET: ['transaction'],
  NOOP: ['transaction'],
};

const EMPTY = Buffer.alloc(0);
/** RFC 2449 4 allows 255 octets per command; we accept more. */
const MAX_COMMAND_LINE = 1000;
/** An AUTH continuation line: base64 of a user name and a password of up to 1 KB each. */
const MAX_SASL_LINE = 4096;
const MAX_BAD_COMMANDS = 20;
const MAX_LOGIN_FAILURES = 3;
const DEFAULT_IDLE_MS = 10 * 60_000;
/** Unprocessed input held while a command runs; past it, reading pauses. */
const MAX_PENDING = 64 * 1024;
/** Reply bytes the socket may hold for a client that does not read; past it, commands wait. */
const MAX_UNSENT = 256 * 1024;
/** Lines of a LIST or UIDL listing written at a time. */
const LISTING_BATCH = 1000;

export class Pop3Session implements ListenerSession {
  private state: State = { phase: 'authorization', pending: null };
  private socket: Socket;
  private secure: boolean;
  private pending: Buffer = EMPTY;
  private out: string[] = [];
  private busy = false;
  private lineTimer: NodeJS.Timeout | null = null;
  private streaming = false;
  private closing = false;
  private waitingForDrain = false;
  private discardingLongLine = false;
  private badCommands = 0;
  private loginFailures = 0;
  private readonly remoteAddress: string;
  private readonly log: Logger;
  private readonly onSocketData = (chunk: Buffer) => this.onData(chunk);

  constructor(
    socket: Socket,
    private readonly config: Pop3Config,
    private readonly deps: MailboxDeps,
    private readonly onClose: () => void,
  ) {
    this.socket = socket;
    this.secure = config.implicitTls || socket instanceof TLSSocket;
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    this.log = deps.log.child({ protocol: 'pop3', remote: this.remoteAddress });
    this.attach(socket);
    this.reply(Replies.greeting(config.hostname));
    this.flush();
  }

  /** Server draining: goodbye now if idle, else after the current command; never enters UPDATE. */
  shutdown(): void {
    this.closing = true;
    if (!this.busy) this.close(Replies.shuttingDown);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private attach(socket: Socket): void {
    socket.on('data', this.onSocketData);
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'socket error'));
    socket.on('close', () => this.closed());
    socket.setTimeout(this.config.idleTimeoutMs ?? DEFAULT_IDLE_MS, () => {
      // A message half sent cannot take a status line: just drop the connection.
      if (this.streaming) this.socket.destroy();
      else this.close(Replies.idleTimeout);
    });
  }

  private isClosed(): boolean {
    return this.state.phase === 'closed';
  }

  private clearLineTimer(): void {
    if (this.lineTimer) clearTimeout(this.lineTimer);
    this.lineTimer = null;
  }

  private closed(): void {
    if (this.isClosed()) return;
    this.clearLineTimer();
    this.state = { phase: 'closed' };
    this.onClose();
  }

  private close(reply?: Pop3Reply): void {
    if (this.isClosed()) return;
    if (reply) this.reply(reply);
    this.flush();
    this.state = { phase: 'closed' };
    this.socket.end();
    // Do not wait forever for a peer that never reads.
    setTimeout(() => this.socket.destroy(), 5000).unref();
    this.onClose();
  }

  private reply(r: Pop3Reply): void {
    this.out.push(formatReply(r));
  }

  private flush(): void {
    if (this.out.length === 0 || this.socket.destroyed) return;
    this.socket.write(this.out.length === 1 ? this.out[0]! : this.out.join(''));
    this.out = [];
  }

  /** Writes after what is queued; resolves once the socket can take more (false if it closed meanwhile). */
  private send(data: Buffer | string): Promise<boolean> {
    this.flush();
    const socket = this.socket;
    if (socket.destroyed) return Promise.resolve(false);
    if (socket.write(data)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        socket.off('drain', onDrain);
        socket.off('close', onGone);
        resolve(ok);
      };
      const onDrain = () => done(true);
      const onGone = () => done(false);
      socket.on('drain', onDrain);
      socket.on('close', onGone);
    });
  }

  private onData(chunk: Buffer): void {
    if (this.isClosed()) return;
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.pending.length > MAX_PENDING) this.socket.pause();
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (!this.isClosed()) {
        if (this.closing) {
          this.close(Replies.shuttingDown);
          break;
        }
        // A pipelining client that does not read its replies must not grow our memory.
        if (this.socket.writableLength > MAX_UNSENT) {
          this.waitForDrain();
          break;
        }
        const line = this.takeLine();
        if (line === null) {
          // A client dribbling a byte at a time (which keeps the socket from idling) still has only the idle time to finish a line.
          if (this.pending.length > 0 || this.discardingLongLine)
            this.lineTimer ??= setTimeout(() => this.close(Replies.idleTimeout), this.config.lineTimeoutMs ?? this.config.idleTimeoutMs ?? DEFAULT_IDLE_MS);
          break;
        }
        this.clearLineTimer();
        await this.handleLine(line);
        if (this.pending.length > 0) await new Promise((r) => setImmediate(r));
      }
    } catch (err) {
      this.log.error({ err }, 'pop3 session failed');
      this.close(Replies.temporaryFailure);
    } finally {
      this.busy = false;
      this.flush();
      this.resumeReading();
    }
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
      if (!this.isClosed()) void this.pump();
    });
  }

  /** Next complete line, `false` for an over-long one (discarded as it arrived), null when none is buffered. */
  private takeLine(): string | false | null {
    const limit = this.state.phase === 'authorization' && this.state.pending?.kind === 'sasl' ? MAX_SASL_LINE : MAX_COMMAND_LINE;
    const nl = this.pending.indexOf(10);
    if (nl < 0) {
      if (this.pending.length > limit) {
        this.discardingLongLine = true;
        this.pending = EMPTY;
      }
      return null;
    }
    const raw = this.pending.subarray(0, nl);
    this.pending = this.pending.subarray(nl + 1);
    if (this.discardingLongLine || raw.length > limit) {
      this.discardingLongLine = false;
      return false;
    }
    const end = raw.length > 0 && raw[raw.length - 1] === 13 ? raw.length - 1 : raw.length;
    return raw.toString('utf8', 0, end);
  }

  /** A client mistake: -ERR, and past MAX_BAD_COMMANDS the connection closes. */
  private fail(r: Pop3Reply): void {
    this.reply(r);
    if (++this.badCommands >= MAX_BAD_COMMANDS) this.close(Replies.tooManyErrors);
  }

  private async handleLine(line: string | false): Promise<void> {
    const s = this.state;
    let step: () => Promise<void> | void;
    if (s.phase === 'authorization' && s.pending?.kind === 'sasl') {
      // The line answers AUTH's "+ " continuation: it is no command.
      this.state = { phase: 'authorization', pending: null };
      if (line === false) return this.fail(Replies.lineTooLong);
      step = () => this.saslResponse(line);
    } else {
      if (line === false) return this.fail(Replies.lineTooLong);
      const cmd = parseCommand(line);
      if (cmd.verb === 'ERROR') return this.fail(cmd.reason === 'unknown' ? Replies.unknownCommand : Replies.syntax(cmd.text));
      if (!ALLOWED[cmd.verb].includes(s.phase)) {
        return this.fail(Replies.wrongState(s.phase === 'transaction' ? `${cmd.verb} is not allowed after login` : `Log in before ${cmd.verb}`));
      }
      step = () => this.run(cmd);
    }
    try {
      await step();
    } catch (err) {
      // Unknown failures (the store down, a bug): logged with their cause, shown only as a temporary failure.
      if (this.isClosed()) return;
      this.log.error({ err }, 'pop3 command failed');
      this.reply(Replies.temporaryFailure);
    }
  }

  private async run(cmd: Exclude<Pop3Command, { verb: 'ERROR' }>): Promise<void> {
    switch (cmd.verb) {
      case 'CAPA':
        return void this.out.push(formatMultiline(Replies.capaFollows, this.capabilities()));
      case 'QUIT':
        return this.quit();
      case 'USER':
        return this.user(cmd.user);
      case 'PASS':
        return this.pass(cmd.password);
      case 'AUTH':
        return this.auth(cmd.mechanism, cmd.initialResponse);
      case 'STLS':
        return this.stls();
      default:
        return this.transaction(cmd);
    }
  }

  // ---- AUTHORIZATION

  private plaintextAllowed(): boolean {
    return mayUsePlaintext({ secure: this.secure, remoteAddress: this.remoteAddress, insecureAuth: this.config.insecureAuth });
  }

  /** RFC 2449 6; USER and SASL only where a password may be sent (RFC 2595 2.2), STLS only before TLS and login. */
  private capabilities(): string[] {
    const plaintext = this.plaintextAllowed();
    const caps = ['TOP', 'UIDL'];
    if (plaintext) caps.push('USER');
    caps.push('RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING');
    if (plaintext) caps.push('SASL PLAIN');
    if (!this.secure && this.state.phase === 'authorization') caps.push('STLS');
    caps.push('IMPLEMENTATION Tern');
    return caps;
  }

  private user(user: string): void {
    if (!this.plaintextAllowed()) return this.fail(Replies.plaintextNeedsTls);
    this.state = { phase: 'authorization', pending: { kind: 'user', user } };
    this.reply(Replies.sendPass);
  }

  private async pass(password: string): Promise<void> {
    const s = this.state;
    if (s.phase !== 'authorization' || s.pending?.kind !== 'user') return this.fail(Replies.passWithoutUser);
    this.state = { phase: 'authorization', pending: null };
    if (!this.plaintextAllowed()) return this.fail(Replies.plaintextNeedsTls);
    await this.login(s.pending.user, password);
  }

  private auth(mechanism: string | null, initialResponse: string | null): Promise<void> | void {
    const plaintext = this.plaintextAllowed();
    // AUTH without a mechanism lists them (the pre-RFC 5034 form many clients still send).
    if (mechanism === null) return void this.out.push(formatMultiline(Replies.mechanismsFollow, plaintext ? ['PLAIN'] : []));
    if (mechanism !== 'PLAIN') return this.fail(Replies.unsupportedMechanism);
    if (!plaintext) return this.fail(Replies.plaintextNeedsTls);
    if (initialResponse === null) {
      this.state = { phase: 'authorization', pending: { kind: 'sasl' } };
      return void this.out.push(Replies.saslContinue);
    }
    // RFC 5034 4: "=" is an empty initial response.
    return this.saslResponse(initialResponse === '=' ? '' : initialResponse);
  }

  private async saslResponse(line: string): Promise<void> {
    const response = parseSaslResponse(line);
    if (response.kind === 'cancel') return this.fail(Replies.saslCancelled);
    const plain = decodeSaslPlain(response.base64);
    if (!plain) return this.fail(Replies.badSaslResponse);
    // No proxy logins: an authorization identity, if given, must be the user itself.
    if (plain.authzid !== '' && plain.authzid.toLowerCase() !== plain.user.toLowerCase()) return this.loginFailed(Replies.noProxyAuth);
    await this.login(plain.user, plain.password);
  }

  private async login(user: string, password: string): Promise<void> {
    const account = await this.deps.auth.login(user, password, { protocol: 'pop3', remoteAddress: this.remoteAddress });
    if (this.isClosed()) return;
    if (!account) return this.loginFailed(Replies.badCredentials);
    let maildrop: Maildrop;
    try {
      maildrop = await Maildrop.open(this.deps.store, account.id);
    } catch (err) {
      if (this.isClosed()) return;
      // RFC 1939 7: the maildrop could not be opened; stay in AUTHORIZATION.
      if (err instanceof NotFoundError) return this.reply(Replies.noInbox);
      this.log.error({ err, user: account.address }, 'cannot open the maildrop');
      return this.reply(Replies.maildropUnavailable);
    }
    if (this.isClosed()) return;
    this.state = { phase: 'transaction', maildrop };
    const { count, octets } = maildrop.stat();
    this.reply(Replies.loggedIn(count, octets));
  }

  private loginFailed(r: Pop3Reply): void {
    if (++this.loginFailures >= MAX_LOGIN_FAILURES) return this.close(Replies.tooManyFailures);
    this.reply(r);
  }

  private stls(): void {
    if (this.secure) return this.fail(Replies.alreadyTls);
    this.reply(Replies.beginTls);
    this.flush();
    // Anything pipelined after STLS was sent in clear text: drop it (CVE-2011-0411 class).
    this.pending = EMPTY;
    const plain = this.socket;
    plain.removeListener('data', this.onSocketData);
    plain.removeAllListeners('timeout');
    plain.setTimeout(0);
    const secure = startTls(plain, this.deps.tls);
    this.socket = secure;
    this.secure = true;
    // RFC 2595 4: a fresh AUTHORIZATION state; a USER sent before is forgotten.
    this.state = { phase: 'authorization', pending: null };
    this.attach(secure);
  }

  private async quit(): Promise<void> {
    const s = this.state;
    if (s.phase !== 'transaction') return this.close(Replies.bye);
    // RFC 1939 6: the UPDATE state removes the messages marked deleted.
    this.state = { phase: 'update' };
    let reply: Pop3Reply;
    try {
      reply = Replies.byeAfterUpdate(await s.maildrop.commit());
    } catch (err) {
      this.log.error({ err }, 'expunge at QUIT failed');
      reply = Replies.notAllRemoved;
    }
    this.close(reply); // does nothing if the client has gone meanwhile
  }

  // ---- TRANSACTION

  private async transaction(cmd: Extract<Pop3Command, { verb: 'STAT' | 'LIST' | 'UIDL' | 'RETR' | 'TOP' | 'DELE' | 'RSET' | 'NOOP' }>): Promise<void> {
    const s = this.state;
    if (s.phase !== 'transaction') return this.fail(Replies.wrongState(`Log in before ${cmd.verb}`));
    const drop = s.maildrop;
    switch (cmd.verb) {
      case 'STAT': {
        const { count, octets } = drop.stat();
        return this.reply(Replies.stat(count, octets));
      }
      case 'NOOP':
        return this.reply(Replies.noop);
      case 'RSET': {
        drop.reset();
        const { count, octets } = drop.stat();
        return this.reply(Replies.reset(count, octets));
      }
      case 'LIST':
      case 'UIDL': {
        const value = (m: DropMessage) => (cmd.verb === 'LIST' ? String(m.size) : drop.uniqueId(m));
        if (cmd.msg === null) {
          const { count, octets } = drop.stat();
          const lines = drop.live().map((m) => `${m.msg} ${value(m)}`);
          return this.listing(cmd.verb === 'LIST' ? Replies.listAll(count, octets) : Replies.uidlAll, lines);
        }
        const m = this.message(drop, cmd.msg);
        if (m) this.reply(cmd.verb === 'LIST' ? Replies.listOne(m.msg, m.size) : Replies.uidlOne(m.msg, drop.uniqueId(m)));
        return;
      }
      case 'DELE': {
        const m = this.message(drop, cmd.msg);
        if (!m) return;
        drop.markDeleted(m);
        return this.reply(Replies.deleted(m.msg));
      }
      case 'RETR': {
        const m = this.message(drop, cmd.msg);
        if (m && (await this.sendMessage(drop, m, Replies.retr(m.size), null))) {
          try {
            await drop.markSeen(m);
          } catch (err) {
            // The message went out; a lost \Seen flag is not worth failing the session over.
            this.log.warn({ err, uid: m.uid }, 'could not set \\Seen after RETR');
          }
        }
        return;
      }
      case 'TOP': {
        const m = this.message(drop, cmd.msg);
        if (m) await this.sendMessage(drop, m, Replies.top, new TopLimiter(cmd.lines));
        return;
      }
    }
  }

  /** The message a number names, or null after answering -ERR. */
  private message(drop: Maildrop, msg: number): DropMessage | null {
    const found = drop.lookup(msg);
    if (found.kind === 'message') return found.message;
    this.fail(found.kind === 'deleted' ? Replies.alreadyDeleted(msg) : Replies.noSuchMessage);
    return null;
  }

  /** A LIST or UIDL listing, written in batches so a large maildrop does not build one huge string. */
  private async listing(first: Pop3Reply, lines: string[]): Promise<void> {
    this.reply(first);
    for (let i = 0; i < lines.length; i += LISTING_BATCH) {
      const batch = lines.slice(i, i + LISTING_BATCH).join('\r\n') + '\r\n';
      if (!(await this.send(batch))) return;
    }
    this.out.push('.\r\n');
  }

  /**
   * Streams a message (RETR) or its top (TOP), byte-stuffed, waiting on 'drain'. Returns
   * true when all of it was sent. A message expunged since login gets -ERR; a store
   * failure after "+OK" cannot be told to the client, so the connection is dropped.
   */
  private async sendMessage(drop: Maildrop, m: DropMessage, first: Pop3Reply, top: TopLimiter | null): Promise<boolean> {
    const chunks = drop.read(m)[Symbol.asyncIterator]();
    let next: IteratorResult<Buffer>;
    try {
      next = await chunks.next();
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      this.reply(Replies.messageGone(m.msg));
      return false;
    }
    this.reply(first);
    this.flush();
    const stuffer = new DotStuffer();
    this.streaming = true;
    try {
      while (!next.done) {
        const piece = top ? top.push(next.value) : next.value;
        if (piece.length > 0 && !(await this.send(stuffer.push(piece)))) return false;
        if (top?.done) {
          await chunks.return?.();
          break;
        }
        next = await chunks.next();
      }
    } catch (err) {
      this.log.error({ err, uid: m.uid }, 'reading a message failed while sending it; dropping the connection');
      this.socket.destroy();
      return false;
    } finally {
      this.streaming = false;
    }
    return this.send(stuffer.end());
  }
}
