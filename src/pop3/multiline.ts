/**
 * Streaming transforms for POP3 multi-line message responses (RETR, TOP), chunk by chunk
 * so a message is never held whole. Pure: Buffers in, Buffers out.
 *
 * - DotStuffer: byte-stuffs lines that start with "." (RFC 1939 3), ends every line with
 *   CRLF (a bare LF, which a BDAT-delivered message may hold, becomes CRLF), and writes
 *   the terminating "." line.
 * - TopLimiter: passes the header and the first n lines of the body (RFC 1939 7, TOP).
 */

const CR = 13;
const LF = 10;
const DOT = 46;
const EMPTY = Buffer.alloc(0);
const DOT_BUF = Buffer.from('.');
const CR_BUF = Buffer.from('\r');

export class DotStuffer {
  private atLineStart = true;
  private lastWasCr = false;

  push(chunk: Buffer): Buffer {
    if (chunk.length === 0) return EMPTY;
    const out: Buffer[] = [];
    let from = 0;
    if (this.atLineStart && chunk[0] === DOT) out.push(DOT_BUF);
    for (let i = chunk.indexOf(LF); i >= 0; i = chunk.indexOf(LF, i + 1)) {
      const crBefore = i > 0 ? chunk[i - 1] === CR : this.lastWasCr;
      if (!crBefore) {
        out.push(chunk.subarray(from, i), CR_BUF);
        from = i;
      }
      if (chunk[i + 1] === DOT) {
        out.push(chunk.subarray(from, i + 1), DOT_BUF);
        from = i + 1;
      }
    }
    const last = chunk[chunk.length - 1];
    this.atLineStart = last === LF;
    this.lastWasCr = last === CR;
    if (out.length === 0) return chunk;
    out.push(chunk.subarray(from));
    return Buffer.concat(out);
  }

  /** The end of the response: a CRLF if the message did not end with one, then ".CRLF". */
  end(): Buffer {
    if (this.atLineStart) return Buffer.from('.\r\n');
    return Buffer.from(this.lastWasCr ? '\n.\r\n' : '\r\n.\r\n');
  }
}

export class TopLimiter {
  private inHeader = true;
  /** Octets of the current line so far, and whether that line is just a CR. */
  private lineLength = 0;
  private lineIsCr = false;
  private bodyLinesLeft: number;
  private finished = false;

  constructor(bodyLines: number) {
    this.bodyLinesLeft = bodyLines;
  }

  /** True once everything TOP sends has been passed: the caller may stop reading. */
  get done(): boolean {
    return this.finished;
  }

  /** The part of `chunk` that TOP sends. */
  push(chunk: Buffer): Buffer {
    if (this.finished) return EMPTY;
    let from = 0;
    for (;;) {
      if (!this.inHeader && this.bodyLinesLeft === 0) {
        this.finished = true;
        return chunk.subarray(0, from);
      }
      const nl = chunk.indexOf(LF, from);
      if (nl < 0) {
        const tail = chunk.subarray(from);
        if (tail.length > 0) {
          this.lineIsCr = this.lineLength === 0 && tail.length === 1 && tail[0] === CR;
          this.lineLength += tail.length;
        }
        return chunk;
      }
      const length = this.lineLength + (nl - from);
      const empty = length === 0 || (length === 1 && (nl > from ? chunk[from] === CR : this.lineIsCr));
      if (this.inHeader) {
        if (empty) this.inHeader = false;
      } else {
        this.bodyLinesLeft--;
      }
      this.lineLength = 0;
      this.lineIsCr = false;
      from = nl + 1;
    }
  }
}
