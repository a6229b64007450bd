/**
 * Reads server replies from raw bytes and checks each line against RFC 5321 reply
 * syntax (4.2, 4.5.3.1.5): `^[2-5][0-5][0-9]([ -].*)?\r\n`, at most 512 octets, one code
 * across a multi-line reply, CRLF only at the end, text valid UTF-8 without control
 * characters (C0, DEL, C1: a reply must never echo a client's NUL or escape bytes), and
 * an enhanced status code (RFC 3463), when present, of the reply's own class.
 */
import { showBytes } from '../../fuzz/show-bytes.js';

export interface ServerReply {
  code: number;
  /** Text of each line after the code and separator. */
  lines: string[];
}

/** RFC 5321 4.5.3.1.5: a reply line including its code and CRLF. */
export const MAX_REPLY_LINE = 512;
/** Bytes without a line end after which the reader gives up on the server. */
const RUNAWAY_LINE = 64 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const ENHANCED = /^([245])\.\d{1,3}\.\d{1,3}(?: |$)/;

/** Problems with one reply line (`line` ends with LF); empty when well formed. */
export function checkReplyLine(line: Buffer): string[] {
  const problems: string[] = [];
  const shown = showBytes(line);
  if (line.length > MAX_REPLY_LINE) problems.push(`reply line of ${line.length} octets (max ${MAX_REPLY_LINE}): ${shown}`);
  if (line.length < 2 || line[line.length - 2] !== 13) problems.push(`reply line not ended by CRLF: ${shown}`);
  const body = line.subarray(0, Math.max(0, line.length - 2));
  if (body.includes(13) || body.includes(10)) problems.push(`bare CR or LF inside a reply line: ${shown}`);
  const head = body.subarray(0, 4).toString('latin1');
  if (!/^[2-5][0-5][0-9](?:[ -]|$)/.test(head)) {
    problems.push(`malformed reply code or separator: ${shown}`);
    return problems;
  }
  let text: string;
  try {
    text = utf8.decode(body.subarray(4));
  } catch {
    problems.push(`reply text is not valid UTF-8: ${shown}`);
    return problems;
  }
  const control = CONTROL.exec(text);
  if (control) problems.push(`control character U+${control[0].charCodeAt(0).toString(16).padStart(4, '0')} in reply text: ${shown}`);
  const enhanced = ENHANCED.exec(text);
  if (enhanced && enhanced[1] !== head[0]) problems.push(`enhanced status ${enhanced[0].trim()} in a ${head.slice(0, 3)} reply: ${shown}`);
  return problems;
}

/** Incremental reply parser: feed it what the socket delivers, take complete replies out. */
export class ReplyReader {
  private buffer: Buffer = Buffer.alloc(0);
  private partial: { code: number; lines: string[] } | null = null;
  readonly problems: string[] = [];

  /** Adds received bytes; returns the replies they complete. */
  push(chunk: Buffer): ServerReply[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const replies: ServerReply[] = [];
    let nl: number;
    while ((nl = this.buffer.indexOf(10)) >= 0) {
      const line = this.buffer.subarray(0, nl + 1);
      this.buffer = this.buffer.subarray(nl + 1);
      const problems = checkReplyLine(line);
      this.problems.push(...problems);
      const code = Number(line.subarray(0, 3).toString('latin1'));
      const final = line[3] !== 0x2d; // '-'
      const text = line.subarray(4, Math.max(4, line.length - 2)).toString('utf8');
      if (this.partial && this.partial.code !== code) {
        this.problems.push(`multi-line reply changes code from ${this.partial.code} to ${code}: ${showBytes(line)}`);
      }
      const reply = this.partial ?? { code, lines: [] };
      reply.lines.push(text);
      if (final) {
        replies.push({ code, lines: reply.lines });
        this.partial = null;
      } else {
        this.partial = reply;
      }
    }
    if (this.buffer.length > RUNAWAY_LINE) {
      this.problems.push(`over ${RUNAWAY_LINE} bytes without a line end: ${showBytes(this.buffer)}`);
      this.buffer = Buffer.alloc(0);
    }
    return replies;
  }

  /** Bytes or reply lines received that do not (yet) make a complete reply. */
  unfinished(): string | null {
    if (this.buffer.length > 0) return `incomplete reply line ${showBytes(this.buffer)}`;
    if (this.partial) return `multi-line reply without its last line (${this.partial.code})`;
    return null;
  }
}
