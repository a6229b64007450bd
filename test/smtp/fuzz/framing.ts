/**
 * The fuzzer's independent model of how an SMTP/LMTP server must cut a client's byte
 * stream into units that each get replies (RFC 5321, 2920, 3030, 3207, 2033): a command
 * line gets one reply; DATA accepted with 354 makes the following bytes a message that
 * ends at the first <CRLF>.<CRLF> not preceded by a bare LF (the smuggling rule); a
 * well-formed BDAT line owns the next N bytes whatever its reply; LMTP answers a message
 * once per accepted recipient; 221 and 421 end the session; a 220 to STARTTLS discards
 * what was pipelined after it.
 *
 * The model frames one unit at a time and learns outcomes from the replies, so it knows
 * when a reply is due (a missing one is a hang) and when one is not (an extra one is an
 * unsolicited reply). It does not judge which code a reply has.
 */
import type { ServerReply } from './reply-check.js';

export type Mode = 'smtp' | 'lmtp';

export interface Unit {
  kind: 'greeting' | 'line' | 'data' | 'chunk';
  /** Position among the units after the greeting (expectations are indexed by it). */
  index: number;
  /** Upper-cased verb of a command line ('' for an over-long line). */
  verb: string;
  /** Replies this unit must get. */
  expected: number;
  received: ServerReply[];
  /** BDAT … LAST. */
  last: boolean;
}

type Phase =
  | { name: 'command' }
  /** Reading a message after 354: the state of the line being read and of the one before. */
  | { name: 'data'; previousEnd: 'none' | 'crlf' | 'bare'; lineLength: number; head: [number, number]; lastByte: number }
  | { name: 'chunk'; remaining: number; unit: Unit }
  /** 220 to STARTTLS seen; the client must now start TLS. */
  | { name: 'tls' }
  /** 221 or 421 seen; the server must close the connection. */
  | { name: 'closing' };

const EMPTY = Buffer.alloc(0);
const LF = 10;
const CR = 13;
const DOT = 46;
const BDAT_ARGS = /^(\d{1,15})(?: +(LAST))? *$/i;

export class FramingModel {
  private unframed: Buffer = EMPTY;
  private current: Unit | null;
  private phase: Phase = { name: 'command' };
  private nextIndex = 0;
  private inTransaction = false;
  private recipients = 0;
  /** Bytes were sent after a STARTTLS that the server accepted, before the handshake. */
  tainted = false;

  constructor(
    private readonly mode: Mode,
    private readonly maxLineLength: number,
  ) {
    this.current = { kind: 'greeting', index: -1, verb: '', expected: 1, received: [], last: false };
  }

  get phaseName(): Phase['name'] {
    return this.phase.name;
  }

  /** Records bytes the client is about to send, in order. */
  feed(bytes: Buffer): void {
    if (bytes.length === 0 || this.phase.name === 'closing') return;
    if (this.phase.name === 'tls') {
      this.tainted = true;
      return;
    }
    this.unframed = this.unframed.length === 0 ? bytes : Buffer.concat([this.unframed, bytes]);
  }

  /** The unit whose replies are due now, or null when the server owes nothing. */
  due(): Unit | null {
    if (!this.current) this.frame();
    return this.current;
  }

  /** Assigns a reply; returns false when no reply was due (an unsolicited reply). */
  onReply(reply: ServerReply): boolean {
    const unit = this.due();
    if (reply.code === 421) {
      // The server may end the session at any point (error limit, idle, shutdown).
      unit?.received.push(reply);
      this.close();
      return true;
    }
    if (!unit) return false;
    unit.received.push(reply);
    if (unit.received.length < unit.expected) return true;
    this.current = null;
    this.settle(unit, reply.code);
    return true;
  }

  /**
   * A STARTTLS line among the bytes not yet answered, with more bytes after it: clear text
   * the server's TLS layer must refuse (RFC 3207 4.2 forbids pipelining past STARTTLS).
   */
  startTlsWithPipelinedBytes(): boolean {
    if (this.current?.verb === 'STARTTLS' && this.unframed.length > 0) return true;
    return /(?:^|\n)starttls\r?\n[\s\S]/i.test(this.unframed.toString('latin1'));
  }

  /** The client finished the TLS handshake after a 220 to STARTTLS. */
  tlsStarted(): void {
    this.phase = { name: 'command' };
    this.inTransaction = false;
  }

  private close(): void {
    this.phase = { name: 'closing' };
    this.current = null;
    this.unframed = EMPTY;
  }

  /** What a fully answered unit changes (the session state as far as framing needs it). */
  private settle(unit: Unit, code: number): void {
    if (unit.kind === 'greeting') {
      if (code !== 220) this.close();
      return;
    }
    if (unit.kind === 'data') {
      this.inTransaction = false;
      return;
    }
    if (unit.kind === 'chunk') {
      const hadRecipients = this.inTransaction && this.recipients > 0;
      if (hadRecipients && (unit.last || code !== 250)) this.inTransaction = false;
      return;
    }
    switch (unit.verb) {
      case 'MAIL':
        if (code === 250) {
          this.inTransaction = true;
          this.recipients = 0;
        }
        break;
      case 'RCPT':
        if (code === 250) this.recipients++;
        break;
      case 'RSET':
      case 'HELO':
      case 'EHLO':
      case 'LHLO':
        if (code === 250) this.inTransaction = false;
        break;
      case 'DATA':
        if (code === 354) this.phase = { name: 'data', previousEnd: 'none', lineLength: 0, head: [0, 0], lastByte: 0 };
        break;
      case 'STARTTLS':
        if (code === 220) {
          this.tainted = this.unframed.length > 0;
          this.unframed = EMPTY;
          this.phase = { name: 'tls' };
        }
        break;
      case 'QUIT':
        if (code === 221) this.close();
        break;
    }
  }

  private newUnit(kind: Unit['kind'], verb: string, expected: number, last = false): Unit {
    return { kind, index: this.nextIndex++, verb, expected, received: [], last };
  }

  private frame(): void {
    const p = this.phase;
    if (p.name === 'command') this.frameCommand();
    else if (p.name === 'data') this.frameData(p);
    else if (p.name === 'chunk') this.frameChunk(p);
  }

  private frameCommand(): void {
    const nl = this.unframed.indexOf(LF);
    if (nl < 0) return;
    const raw = this.unframed.subarray(0, nl);
    this.unframed = this.unframed.subarray(nl + 1);
    if (raw.length > this.maxLineLength) {
      this.current = this.newUnit('line', '', 1);
      return;
    }
    const end = raw.length > 0 && raw[raw.length - 1] === CR ? raw.length - 1 : raw.length;
    const line = raw.toString('utf8', 0, end);
    const sp = line.indexOf(' ');
    const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
    const bdat = verb === 'BDAT' ? BDAT_ARGS.exec(sp < 0 ? '' : line.slice(sp + 1)) : null;
    if (!bdat) {
      this.current = this.newUnit('line', verb, 1);
      return;
    }
    const last = Boolean(bdat[2]);
    // LMTP answers the last chunk of a transaction with recipients once per recipient.
    const perRecipient = this.mode === 'lmtp' && last && this.inTransaction && this.recipients > 0;
    const unit = this.newUnit('chunk', 'BDAT', perRecipient ? this.recipients : 1, last);
    this.phase = { name: 'chunk', remaining: Number(bdat[1]), unit };
    this.frameChunk(this.phase);
  }

  private frameChunk(p: Extract<Phase, { name: 'chunk' }>): void {
    const n = Math.min(p.remaining, this.unframed.length);
    this.unframed = this.unframed.subarray(n);
    p.remaining -= n;
    if (p.remaining > 0) return;
    this.phase = { name: 'command' };
    this.current = p.unit;
  }

  private frameData(p: Extract<Phase, { name: 'data' }>): void {
    const buf = this.unframed;
    let pos = 0;
    while (pos < buf.length) {
      const nl = buf.indexOf(LF, pos);
      const end = nl < 0 ? buf.length : nl;
      for (let i = pos; i < end && p.lineLength + (i - pos) < 2; i++) p.head[p.lineLength + (i - pos)] = buf[i]!;
      if (end > pos) p.lastByte = buf[end - 1]!;
      p.lineLength += end - pos;
      if (nl < 0) break;
      const isDotLine = p.lineLength === 2 && p.head[0] === DOT && p.head[1] === CR;
      if (isDotLine && p.previousEnd !== 'bare') {
        this.unframed = buf.subarray(nl + 1);
        this.phase = { name: 'command' };
        this.current = this.newUnit('data', '', this.mode === 'lmtp' ? Math.max(1, this.recipients) : 1);
        return;
      }
      p.previousEnd = p.lineLength > 0 && p.lastByte === CR ? 'crlf' : 'bare';
      p.lineLength = 0;
      pos = nl + 1;
    }
    this.unframed = EMPTY;
  }
}
