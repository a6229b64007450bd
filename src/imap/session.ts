/**
 * One IMAP connection (RFC 3501 with the extensions in capabilities.ts): reads commands
 * with the CommandReader, runs them one at a time through the command registry, and
 * writes answers through a buffer flushed at the end of each command or when it grows
 * (waiting for the socket to drain, so a FETCH of a huge mailbox streams with
 * back-pressure). APPEND bodies stream from the socket into a MessageSink.
 *
 * State is a discriminated union (not authenticated / authenticated / selected / logout).
 * Store errors become NO answers in errors.ts; unknown ones are logged and answered
 * "NO [SERVERBUG]"; malformed commands get BAD and the connection survives.
 */
import type { Socket } from 'node:net';
import { mayUsePlaintext } from '../auth/authenticate.js';
import { MessageSink } from '../mail/message-sink.js';
import type { MailboxConfig, MailboxDeps } from '../net/mailbox-deps.js';
import { startTls, type ListenerSession } from '../net/tcp-listener.js';
import type { Account } from '../store/store.js';
import { capabilities } from './capabilities.js';
import { NO_ANSWER } from './commands/auth.js';
import { COMMANDS, type CommandContext } from './commands/registry.js';
import { answerFor, BrokenAnswer, ImapNo, responseText } from './errors.js';
import { ArgReader, BadArgs } from './proto/args.js';
import { CommandReader, DEFAULT_READER_LIMITS, type ReaderEvent, type Token } from './proto/command-reader.js';
import type { MailboxViews } from './mailbox-views.js';
import type { RecentTracker } from './recent.js';
import type { RenderedStructures } from './render/cache.js';
import type { SelectedMailbox } from './selected.js';

export type ImapConfig = MailboxConfig;

export interface ImapDeps extends MailboxDeps {
  recent: RecentTracker;
  views: MailboxViews;
  rendered: RenderedStructures;
}

export type SessionState =
  | { kind: 'not-authenticated' }
  | { kind: 'authenticated'; account: Account }
  | { kind: 'selected'; account: Account; selected: SelectedMailbox }
  | { kind: 'logout' };

/** RFC 3501 5.4: the autologout timer is at least 30 minutes. */
const AUTOLOGOUT_MS = 30 * 60_000;
/** Before login, a silent client is dropped sooner. */
const PRE_AUTH_TIMEOUT_MS = 60_000;
/** Answer bytes buffered before they are written out (and back-pressure awaited). */
const FLUSH_AT = 64 * 1024;
/** Unread input bytes past which reading from the socket pauses. */
const MAX_PENDING_INPUT = 1024 * 1024;
/** Bad commands in a row before the connection is closed. */
const MAX_BAD = 50;

export class ImapSession implements ListenerSession {
  private current: SessionState = { kind: 'not-authenticated' };
  private unwatch: (() => void) | null = null;
  /** Extensions the client turned on (ENABLE, or implicitly by using CONDSTORE features). */
  readonly enabled = new Set<'CONDSTORE' | 'QRESYNC'>();
  secure: boolean;
  readonly remoteAddress: string;
  failedLogins = 0;
  /** Set when the connection ends after the current answer ("* BYE" with this text). */
  private closing: string | null = null;
  private socket: Socket;
  private reader = new CommandReader(DEFAULT_READER_LIMITS);
  /** The answer so far: Buffers (literals) and, between them, text joined as it is written (one conversion per flush, not per piece). */
  private output: Buffer[] = [];
  private outputText = '';
  private outputBytes = 0;
  private waiter: (() => void) | null = null;
  private closed = false;
  private badInARow = 0;
  private timer: NodeJS.Timeout | null = null;
  private shuttingDown = false;
  /** Bodies of the APPEND being read (one per message literal). */
  private appendSinks: MessageSink[] = [];
  /** Set by the store's watch when the selected mailbox changed; IDLE waits on it. */
  private mailboxChanged: (() => void) | null = null;
  private dirty = false;
  /** When the watch last said the selected mailbox changed (performance.now()). */
  private dirtyAt = 0;

  constructor(
    socket: Socket,
    readonly config: ImapConfig,
    readonly deps: ImapDeps,
    private readonly onClose: () => void,
  ) {
    this.socket = socket;
    this.secure = config.implicitTls;
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    this.attach(socket);
    this.send(`* OK [CAPABILITY ${this.capabilities()}] ${config.hostname} Tern IMAP4rev1 ready`);
    this.flushNow();
    this.resetTimer();
    void this.run();
  }

  get state(): SessionState {
    return this.current;
  }

  /** Changes state; selecting a mailbox watches it for changes committed by others. */
  set state(next: SessionState) {
    const before = this.current.kind === 'selected' ? this.current.selected.id : null;
    const after = next.kind === 'selected' ? next.selected.id : null;
    this.current = next;
    if (before === after && (after === null || this.unwatch)) return;
    this.unwatch?.();
    this.unwatch = null;
    this.dirty = false;
    if (after !== null && !this.closed) {
      this.unwatch = this.deps.store.mailboxes.watch(after, () => {
        this.dirty = true;
        this.dirtyAt = performance.now();
        this.mailboxChanged?.();
      });
    }
  }

  capabilities(): string {
    return capabilities({
      authenticated: this.state.kind !== 'not-authenticated',
      secure: this.secure,
      plaintextAllowed: this.plaintextAllowed(),
    }).join(' ');
  }

  plaintextAllowed(): boolean {
    return mayUsePlaintext({ secure: this.secure, remoteAddress: this.remoteAddress, insecureAuth: this.config.insecureAuth });
  }

  get condstore(): boolean {
    return this.enabled.has('CONDSTORE');
  }

  get qresync(): boolean {
    return this.enabled.has('QRESYNC');
  }

  /** Queues one untagged response ("* " is added). */
  untagged(text: string): void {
    this.send(`* ${text}`);
  }

  /** Queues a line (CRLF is added). */
  send(line: string): void {
    this.write(`${line}\r\n`);
  }

  /** Queues raw bytes or text (literals). */
  write(data: string | Buffer): void {
    if (typeof data === 'string') this.outputText += data;
    else {
      if (this.outputText) this.output.push(Buffer.from(this.outputText));
      this.outputText = '';
      this.output.push(data);
    }
    this.outputBytes += data.length;
  }

  /** Writes the buffer out once it is big, waiting while the socket is full (back-pressure for large answers). */
  async flushIfFull(): Promise<void> {
    if (this.outputBytes >= FLUSH_AT) await this.flush();
  }

  async flush(): Promise<void> {
    if (!this.flushNow()) await this.drained();
  }

  private flushNow(): boolean {
    if ((this.output.length === 0 && !this.outputText) || this.closed) return true;
    if (this.outputText) this.output.push(Buffer.from(this.outputText));
    const data = this.output.length === 1 ? this.output[0]! : Buffer.concat(this.output);
    this.output = [];
    this.outputText = '';
    this.outputBytes = 0;
    return this.socket.write(data);
  }

  private drained(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** The next raw line from the client (AUTHENTICATE responses, IDLE's DONE); null when the connection closed. */
  async readLine(): Promise<string | null> {
    this.reader.expectLine();
    await this.flush();
    const event = await this.nextEvent();
    if (!event) return null;
    if (event.kind === 'line') return event.text;
    // A line the reader refused (too long) stands in as an unusable one: the command still gets its answer.
    return event.kind === 'error' ? '' : null;
  }

  /** Resolves when the selected mailbox changes (watch), or at once if it already has. */
  mailboxChange(): { promise: Promise<void>; cancel: () => void } {
    let cancel = () => undefined as void;
    const promise = new Promise<void>((resolve) => {
      if (this.dirty) return resolve();
      this.mailboxChanged = resolve;
      cancel = () => {
        this.mailboxChanged = null;
      };
    });
    return { promise, cancel };
  }

  /** Sends what changed in the selected mailbox; expunges only when the command allows them. */
  async syncSelected(opts: { expunges: boolean; force?: boolean }): Promise<void> {
    if (this.state.kind !== 'selected') return;
    if (!this.dirty && !opts.force) return;
    // A forced sync (NOOP, CHECK, IDLE's poll) must see commits by other processes too.
    const fresherThan = opts.force ? performance.now() : this.dirtyAt;
    if (opts.expunges) this.dirty = false;
    const selected = this.state.selected;
    const lines = await selected.sync(this.deps.views, (uids) => (selected.readOnly ? [] : this.deps.recent.claim(selected.mailbox, uids)), {
      expunges: opts.expunges,
      condstore: this.condstore,
      qresync: this.qresync,
      fresherThan,
    });
    for (const l of lines) this.untagged(l);
  }

  /** STARTTLS: the answer is flushed, then the handshake; input already buffered is dropped (no command injection). */
  async upgradeTls(): Promise<void> {
    await this.flush();
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    this.reader = new CommandReader(DEFAULT_READER_LIMITS);
    const secure = startTls(plain, this.deps.tls);
    this.socket = secure;
    this.secure = true;
    this.attach(secure);
  }

  /** Starts an APPEND body (a message literal); returns the refusal when it must be refused. */
  private startAppendBody(size: number): string | null {
    if (size > this.config.maxMessageSize) return `NO [TOOBIG] Message larger than ${this.config.maxMessageSize} octets`;
    if (this.deps.budget.exhausted) return 'NO [UNAVAILABLE] Server busy, try again later';
    this.appendSinks.push(new MessageSink(this.deps.store.blobs, this.deps.budget));
    return null;
  }

  /** Takes the bodies read for the current APPEND (the command now owns them). */
  takeAppendBodies(): MessageSink[] {
    const sinks = this.appendSinks;
    this.appendSinks = [];
    return sinks;
  }

  private abortAppend(): void {
    for (const s of this.appendSinks) s.abort();
    this.appendSinks = [];
  }

  logout(): void {
    this.state = { kind: 'logout' };
  }

  /** Ends the connection once the current command is answered. */
  closeAfterAnswer(text: string): void {
    this.closing = text;
  }

  shutdown(): void {
    if (this.closed) return;
    this.shuttingDown = true;
    // Between commands the goodbye goes out now; a running command finishes first.
    if (this.waiter) this.bye('Server shutting down');
  }

  destroy(): void {
    this.socket.destroy();
  }

  private bye(text: string): void {
    this.untagged(`BYE ${text}`);
    this.flushNow();
    this.state = { kind: 'logout' };
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  private attach(socket: Socket): void {
    socket.on('data', (data: Buffer) => {
      this.reader.push(data);
      if (this.reader.pending > MAX_PENDING_INPUT) socket.pause();
      // Before login, only finished commands count: a client dribbling a byte at a time is logged out as an idle one would be.
      if (this.state.kind !== 'not-authenticated') this.resetTimer();
      const w = this.waiter;
      this.waiter = null;
      w?.();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.closed) return;
      this.closed = true;
      if (this.timer) clearTimeout(this.timer);
      this.unwatch?.();
      this.unwatch = null;
      this.abortAppend();
      const w = this.waiter;
      this.waiter = null;
      w?.();
      this.mailboxChanged?.();
      this.onClose();
    });
  }

  private resetTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    const ms = this.state.kind === 'not-authenticated' ? PRE_AUTH_TIMEOUT_MS : AUTOLOGOUT_MS;
    this.timer = setTimeout(() => this.bye('Autologout; idle for too long'), ms);
    this.timer.unref();
  }

  private async nextEvent(): Promise<ReaderEvent | null> {
    for (;;) {
      if (this.closed) return null;
      const event = this.reader.next();
      if (event) return event;
      if (this.socket.isPaused() && this.reader.pending < MAX_PENDING_INPUT / 2) this.socket.resume();
      await this.flush();
      if (this.shuttingDown && this.state.kind !== 'logout') {
        this.bye('Server shutting down');
        return null;
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        const event = await this.nextEvent();
        if (!event || this.state.kind === 'logout') break;
        await this.handle(event);
        if ((this.state as SessionState).kind === 'logout') {
          await this.flush();
          this.socket.end();
          break;
        }
        if (this.badInARow >= MAX_BAD || this.closing) {
          this.bye(this.closing ?? 'Too many bad commands');
          break;
        }
        await this.flushIfFull();
      }
    } catch (err) {
      this.deps.log.error({ err, ip: this.remoteAddress }, 'IMAP session failed');
      this.socket.destroy();
    }
  }

  private async handle(event: ReaderEvent): Promise<void> {
    switch (event.kind) {
      case 'error':
        this.abortAppend();
        this.badInARow++;
        this.send(`${event.tag ?? '*'} ${responseText(event.answer ?? `BAD ${event.text}`)}`);
        return;
      case 'line':
        return; // a raw line nobody asked for any more (after a closed IDLE): ignored
      case 'literal-data': {
        const sink = this.appendSinks[this.appendSinks.length - 1];
        if (!sink) return;
        sink.write(event.data);
        if (sink.full) await sink.writable();
        return;
      }
      case 'literal': {
        const isMessage = event.name === 'APPEND' && event.args.length >= 1 && this.state.kind !== 'not-authenticated';
        let refusal: string | null = null;
        if (isMessage) refusal = this.startAppendBody(event.size);
        else if (event.size > DEFAULT_READER_LIMITS.maxInlineLiteral) refusal = 'BAD Literal too large';
        else if (!this.reader.fitsCommand(event.size)) refusal = 'BAD Command too long';
        if (refusal) {
          this.abortAppend();
          this.reader.reject(refusal);
          if (event.sync) this.send(`${event.tag} ${refusal}`);
          return;
        }
        this.reader.accept(isMessage ? 'stream' : 'buffer');
        if (event.sync) {
          this.send('+ Ready for literal data');
          await this.flush();
        }
        return;
      }
      case 'command':
        return this.runCommand(event.tag, event.name, event.args);
    }
  }

  private async runCommand(tag: string, name: string, tokens: Token[]): Promise<void> {
    const args = new ArgReader(tokens);
    let uid = false;
    let commandName = name;
    try {
      if (name === 'UID') {
        uid = true;
        commandName = args.atom('UID command').toUpperCase();
        if (!['FETCH', 'STORE', 'SEARCH', 'COPY', 'MOVE', 'EXPUNGE'].includes(commandName)) throw new BadArgs(`UID ${commandName} is not a command`);
      }
      const command = COMMANDS[commandName];
      if (!command) throw new BadArgs(`Unknown command ${commandName.slice(0, 40)}`);
      if (!command.states.includes(this.state.kind)) throw new BadArgs(`${commandName} is not allowed ${STATE_TEXT[this.state.kind]}`);
      const ctx: CommandContext = { session: this, tag, name: commandName, uid, args };
      const result = await command.run(ctx);
      this.badInARow = 0;
      if (result === NO_ANSWER) return;
      // Untagged changes from others go out before the tagged answer, where the command allows them.
      if (this.state.kind === 'selected' && !NO_SYNC.has(commandName))
        await this.syncSelected({ expunges: !uid && NO_EXPUNGE.has(commandName) ? false : true });
      this.send(`${tag} OK ${responseText(result ?? `${uid ? 'UID ' : ''}${commandName} completed`)}`);
    } catch (err) {
      this.abortAppend();
      if (err instanceof BadArgs) {
        this.badInARow++;
        this.send(`${tag} BAD ${responseText(err.message)}`);
        return;
      }
      if (err instanceof BrokenAnswer) {
        // Part of an answer is on the wire and the rest cannot follow: only closing keeps the client from misreading.
        this.deps.log.warn({ err, ip: this.remoteAddress, command: commandName }, 'IMAP answer broken off; closing the connection');
        this.socket.destroy();
        return;
      }
      const answer = answerFor(err);
      if (!(err instanceof ImapNo) && answer.startsWith('NO [SERVERBUG]'))
        this.deps.log.error({ err, ip: this.remoteAddress, command: commandName }, 'IMAP command failed');
      this.send(`${tag} ${responseText(answer)}`);
    } finally {
      this.resetTimer();
    }
  }
}

const STATE_TEXT: Record<SessionState['kind'], string> = {
  'not-authenticated': 'before login',
  authenticated: 'without a selected mailbox',
  selected: 'with a mailbox selected',
  logout: 'after logout',
};

/** Commands whose answers may not carry EXPUNGE (RFC 3501 7.4.1); their UID forms may. */
const NO_EXPUNGE = new Set(['FETCH', 'STORE', 'SEARCH']);
/** Commands that manage the selection themselves. */
const NO_SYNC = new Set(['SELECT', 'EXAMINE', 'CLOSE', 'UNSELECT', 'LOGOUT', 'IDLE']);
