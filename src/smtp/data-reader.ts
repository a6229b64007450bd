/**
 * Pure streaming reader for the DATA phase (RFC 5321 4.5.2): finds the end-of-data
 * marker CRLF.CRLF, removes dot-stuffing and hands body pieces to `onBody` as they
 * arrive, so the caller can hash and store without buffering the message twice.
 *
 * SMTP smuggling defence: the only terminator is <CRLF>.<CRLF>. A dot line with a bare
 * LF on either side (<LF>.<LF>, <LF>.<CRLF>, <CRLF>.<LF>) does not end the data; it
 * marks the message as `smuggling` and the session rejects it once the real end
 * arrives. Other bare LFs are normalised to CRLF (as Postfix's "normalize" does).
 */

const CR = 13;
const LF = 10;
const DOT = 46;
const CRLF = Buffer.from('\r\n');

export interface DataResult {
  /** Bytes of the message after unstuffing, counting those dropped past the limit. */
  size: number;
  tooBig: boolean;
  smuggling: boolean;
  /** Number of bare LFs that were normalised to CRLF. */
  bareLineFeeds: number;
  /** Bytes received after the end-of-data marker (pipelined commands). */
  rest: Buffer;
}

export class DataReader {
  private atLineStart = true;
  private prevEndBare = false;
  private lastWasCR = false;
  private carry: Buffer | null = null;
  private size = 0;
  private tooBig = false;
  private smuggling = false;
  private bareLineFeeds = 0;

  constructor(
    private readonly maxSize: number,
    private readonly onBody: (piece: Buffer) => void,
  ) {}

  private emit(piece: Buffer): void {
    if (piece.length === 0) return;
    this.size += piece.length;
    if (this.size > this.maxSize) this.tooBig = true;
    if (!this.tooBig) this.onBody(piece);
    this.lastWasCR = piece[piece.length - 1] === CR;
  }

  /**
   * Feeds a chunk; returns the result once the end-of-data marker was seen, else null.
   * Bytes pass on in runs as long as possible: a run ends only where a byte is dropped (a
   * stuffed dot, a smuggling marker), a CRLF is inserted (bare LF) or the chunk ends, so
   * the usual chunk is one piece, hashed and copied once.
   */
  push(chunk: Buffer): DataResult | null {
    let buf = chunk;
    if (this.carry) {
      buf = Buffer.concat([this.carry, chunk]);
      this.carry = null;
    }
    let pos = 0;
    let run = 0; // start of the bytes not yet passed on
    const len = buf.length;
    while (pos < len) {
      if (this.atLineStart && buf[pos] === DOT) {
        this.emit(buf.subarray(run, pos));
        if (pos + 1 >= len || (buf[pos + 1] === CR && pos + 2 >= len)) {
          this.carry = buf.subarray(pos);
          return null;
        }
        const next = buf[pos + 1];
        if (next === CR && buf[pos + 2] === LF) {
          if (!this.prevEndBare) return this.finish(buf.subarray(pos + 3));
          this.smuggling = true; // <LF>.<CRLF>
          pos += 3;
          run = pos;
          this.prevEndBare = false;
          continue;
        }
        if (next === LF) {
          this.smuggling = true; // <CRLF>.<LF> or <LF>.<LF>
          pos += 2;
          run = pos;
          this.prevEndBare = true;
          continue;
        }
        pos += 1; // dot-stuffing ("..x" → ".x") or ".<CR>x": the dot goes
        run = pos;
      }
      const nl = buf.indexOf(LF, pos);
      if (nl < 0) {
        this.atLineStart = false;
        break;
      }
      // The byte before the LF; at the chunk's first byte, the last byte passed on.
      const crBefore = nl > 0 ? buf[nl - 1] === CR : this.lastWasCR;
      if (!crBefore) {
        this.bareLineFeeds++;
        this.emit(buf.subarray(run, nl));
        this.emit(CRLF);
        run = nl + 1;
      }
      this.prevEndBare = !crBefore;
      this.atLineStart = true;
      pos = nl + 1;
    }
    this.emit(buf.subarray(run, len));
    return null;
  }

  private finish(rest: Buffer): DataResult {
    return {
      size: this.size,
      tooBig: this.tooBig,
      smuggling: this.smuggling,
      bareLineFeeds: this.bareLineFeeds,
      rest: Buffer.from(rest),
    };
  }
}
