/**
 * The fuzzer's independent model of how an IMAP server must cut a client's byte stream
 * into commands (RFC 3501 2.2, 4.3, 7.5; RFC 7888 LITERAL+; RFC 2177 IDLE), so it knows
 * which answer is due, and when none is (an extra one is unsolicited):
 *
 * - a line ends at LF (one CR before it is dropped); empty lines between commands are
 *   ignored; a line starts with a tag, and a line whose first word is no valid tag can only
 *   be answered with an untagged BAD;
 * - a line ending in `{n}` announces a synchronizing literal: the server must answer at once,
 *   with "+" (then the next n bytes are the literal and the command goes on after them) or
 *   with the command's tagged answer (the literal is never sent);
 * - `{n+}` (LITERAL+) is followed by its n bytes whatever the server thinks of the command
 *   (unless n is no valid number: then the server may answer at once and read on);
 * - a complete command gets one tagged answer, in the order commands were sent; a "+" to a
 *   complete command (IDLE, AUTHENTICATE) makes the next line part of it (DONE, a response);
 * - a line longer than the server's limit may be refused as soon as the limit is passed, with
 *   its tag or untagged, and its literal marker, if any, means nothing;
 * - an OK to STARTTLS starts TLS (bytes sent after it are discarded by the server), an OK to
 *   LOGOUT and any BYE end the session: nothing is owed after them.
 *
 * The model frames one command at a time and learns outcomes from the answers.
 */
import type { ImapResponse, Status } from './response-check.js';

export interface ImapUnit {
  /** Position among the commands framed. */
  index: number;
  /** The tag when the line starts with a valid one; null for a line that can only get "* BAD". */
  tag: string | null;
  /** The start of the command line, for reports. */
  head: string;
  /** Upper-cased command name, with "UID " before the UID forms. */
  verb: string;
  /** 'unsure': a LITERAL+ of a size no literal can have (over 2^32 - 1); whether the server reads it shows in whether it answers. */
  phase: 'framing' | 'decide' | 'literal' | 'unsure' | 'complete' | 'raw';
  /** Announced size of a synchronizing literal ('decide'), or bytes of a literal still to come ('literal'). */
  size: number;
  /** Longer than the server's line limit. */
  overlong: boolean;
  /** The line is still being read (no LF yet). */
  partial: boolean;
  /** Answered before it was complete: the rest of it is read without another answer. */
  answered: Status | null;
}

type SessionPhase = 'greeting' | 'commands' | 'tls' | 'closing';

const EMPTY = Buffer.alloc(0);
const LF = 10;
const CR = 13;
const LITERAL = /\{(\d+)(\+?)\}$/;
/** RFC 3501 9: number = unsigned 32-bit integer. */
const MAX_LITERAL = 4294967295;

/** tag = 1*<any ASTRING-CHAR except "+"> (RFC 3501 9): printable ASCII but ( ) { SP % * " \ and +. */
export function validTag(tag: string): boolean {
  return /^[\x21-\x7e]+$/.test(tag) && !/[(){%*"\\+]/.test(tag);
}

export class ImapFramingModel {
  private unframed: Buffer = EMPTY;
  private current: ImapUnit | null = null;
  private nextIndex = 0;
  phase: SessionPhase = 'greeting';
  /** The server said BYE: it owes nothing more and may close. */
  bye = false;
  /** Bytes were sent after a STARTTLS the server accepted, before the handshake. */
  tainted = false;

  constructor(private readonly maxLine: number) {}

  /** Records bytes the client is about to send, in order. */
  feed(bytes: Buffer): void {
    if (bytes.length === 0 || this.phase === 'closing') return;
    if (this.phase === 'tls') {
      this.tainted = true;
      return;
    }
    this.unframed = this.unframed.length === 0 ? bytes : Buffer.concat([this.unframed, bytes]);
  }

  /** What the server owes now: the greeting, a command's answer (or "+"), or nothing. */
  due(): ImapUnit | 'greeting' | null {
    if (this.phase === 'greeting') return 'greeting';
    this.advance();
    if (this.phase !== 'commands' || this.bye) return null;
    const u = this.current;
    return u && !u.answered && (u.phase === 'decide' || u.phase === 'complete') ? u : null;
  }

  /** The unit being read or answered (for what untagged data may be sent during it). */
  get currentUnit(): ImapUnit | null {
    return this.current;
  }

  /**
   * A STARTTLS among the commands not yet answered, with bytes sent after it: clear text the
   * server's TLS layer must refuse, and the reset that follows may discard answers unread.
   */
  startTlsWithPipelinedBytes(): boolean {
    this.advance();
    if (this.current?.verb === 'STARTTLS' && this.unframed.length > 0) return true;
    return /(?:^|\n)[^ \r\n]+ starttls\r?\n[\s\S]/i.test(this.unframed.toString('latin1'));
  }

  /** The client finished the TLS handshake after an OK to STARTTLS. */
  tlsStarted(): void {
    this.phase = 'commands';
  }

  /** Takes one response in; returns what is wrong with it as an answer (empty when fine). */
  onResponse(resp: ImapResponse): string[] {
    if (this.phase === 'greeting') {
      if (resp.kind === 'untagged' && (resp.keyword === 'OK' || resp.keyword === 'PREAUTH')) this.phase = 'commands';
      else if (resp.kind === 'untagged' && resp.keyword === 'BYE') this.bye = true;
      else return [`the greeting is not "* OK": ${resp.show}`];
      return [];
    }
    if (this.phase === 'closing') return [`response after LOGOUT completed: ${resp.show}`];
    this.advance();
    const u = this.current;
    if (resp.kind === 'continuation') {
      if (u && !u.answered && u.phase === 'decide') {
        u.phase = 'literal';
        this.advance();
        return [];
      }
      if (u && !u.answered && u.phase === 'complete') {
        u.phase = 'raw';
        this.advance();
        return [];
      }
      return [`unsolicited continuation request ${resp.show}${u ? ` while reading ${describeUnit(u)}` : ''}`];
    }
    if (resp.kind === 'untagged') {
      if (resp.keyword === 'BYE') {
        this.bye = true;
        return [];
      }
      if (resp.keyword !== 'BAD') return [];
      if (u && !u.answered && (u.tag === null || u.overlong)) return this.answer(u, 'BAD');
      if (u && !u.answered) return [`untagged BAD while the answer to ${describeUnit(u)} was due: ${resp.show}`];
      return [`untagged BAD with no command to answer: ${resp.show}`];
    }
    if (!u || u.answered) return [`tagged answer with no command waiting for one: ${resp.show}`];
    if (u.tag !== resp.tag) {
      return [`answer out of order: got ${resp.show} while the answer to ${describeUnit(u)} was due`];
    }
    return this.answer(u, resp.status);
  }

  private answer(u: ImapUnit, status: Status): string[] {
    if (u.phase === 'decide' || u.phase === 'complete' || u.phase === 'raw' || u.phase === 'unsure') {
      this.current = null;
      if (status === 'OK' && u.verb === 'STARTTLS') {
        this.tainted = this.unframed.length > 0;
        this.unframed = EMPTY;
        this.phase = 'tls';
      } else if (status === 'OK' && u.verb === 'LOGOUT') {
        this.phase = 'closing';
        this.unframed = EMPTY;
      }
      return [];
    }
    // An answer before the command is complete (a refused over-long line): the rest is read without another.
    u.answered = status;
    this.advance();
    return [];
  }

  private takeLine(): Buffer | null {
    const nl = this.unframed.indexOf(LF);
    if (nl < 0) return null;
    const end = nl > 0 && this.unframed[nl - 1] === CR ? nl - 1 : nl;
    const line = this.unframed.subarray(0, end);
    this.unframed = this.unframed.subarray(nl + 1);
    return line;
  }

  private newUnit(firstBytes: Buffer): ImapUnit {
    const sp = firstBytes.indexOf(0x20);
    const tagText = firstBytes.subarray(0, sp < 0 ? firstBytes.length : sp).toString('latin1');
    const tag = validTag(tagText) ? tagText : null;
    const text = firstBytes.subarray(sp < 0 ? 0 : sp + 1, (sp < 0 ? 0 : sp + 1) + 300).toString('latin1');
    const words = ['', ...text.split(' ', 2)];
    const name = (words[1] ?? '').toUpperCase();
    const verb = name === 'UID' ? `UID ${(words[2] ?? '').toUpperCase()}` : name;
    return {
      index: this.nextIndex++,
      tag,
      head: `${tagText.slice(0, 40)}${tagText.length > 40 ? '…' : ''} ${text.slice(0, 60)}`,
      verb,
      phase: 'framing',
      size: 0,
      overlong: false,
      partial: false,
      answered: null,
    };
  }

  /** A command line (or the line after a literal) is complete. */
  private afterLine(u: ImapUnit, line: Buffer): void {
    u.partial = false;
    if (line.length + 1 > this.maxLine) u.overlong = true; // with its CR: where a server counts it is its choice
    const literal = u.overlong ? null : LITERAL.exec(line.toString('latin1'));
    if (literal && literal[2] === '+') {
      u.size = Number(literal[1]);
      u.phase = u.size > MAX_LITERAL && !u.answered ? 'unsure' : 'literal';
    } else if (literal && !u.answered) {
      u.phase = 'decide';
      u.size = Number(literal[1]);
    } else {
      u.phase = 'complete';
      // A refused command ends with its line (a synchronizing literal after a refusal is never sent).
      if (u.answered) this.current = null;
    }
  }

  /** Frames as far as the bytes sent and the answers seen allow. */
  private advance(): void {
    while (this.phase === 'commands') {
      const u = this.current;
      if (!u) {
        const line = this.takeLine();
        if (line === null) {
          // A line over the limit may be refused before its end arrives.
          if (this.unframed.length > this.maxLine) {
            const unit = this.newUnit(this.unframed);
            Object.assign(unit, { overlong: true, partial: true });
            this.current = unit;
          }
          return;
        }
        if (line.length === 0) continue; // an empty line between commands
        const unit = this.newUnit(line);
        this.current = unit;
        this.afterLine(unit, line);
        continue;
      }
      if (u.phase === 'literal') {
        const n = Math.min(u.size, this.unframed.length);
        this.unframed = this.unframed.subarray(n);
        u.size -= n;
        if (u.size > 0) return;
        u.phase = 'framing';
        continue;
      }
      if (u.phase === 'framing') {
        const line = this.takeLine();
        if (line === null) {
          if (!u.partial && this.unframed.length > this.maxLine) Object.assign(u, { overlong: true, partial: true });
          return;
        }
        this.afterLine(u, line);
        continue;
      }
      if (u.phase === 'raw') {
        if (this.takeLine() === null) return;
        u.phase = 'complete';
        continue;
      }
      return; // 'decide' or 'complete': the server must answer ('unsure': it may)
    }
  }
}

export function describeUnit(u: ImapUnit): string {
  const what = u.tag === null ? 'the line' : `command ${JSON.stringify(u.tag)}`;
  return `${what} ${JSON.stringify(u.head.slice(0, 50))} (#${u.index}${u.overlong ? ', over-long' : ''}${u.phase === 'decide' ? `, literal {${u.size}} announced` : ''})`;
}
