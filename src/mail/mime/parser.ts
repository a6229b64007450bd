/**
 * The streaming MIME parser: bytes in (any chunk boundaries), a MessageStructure out.
 *
 *   const p = new MimeParser();
 *   p.write(chunk); …
 *   const structure = p.end();
 *
 * It reads line by line (LF ends a line, CRLF or bare LF) and never holds the message:
 * only the open parts (a stack of frames), the header block being read (capped), the
 * first bytes of the current line (to recognise a boundary delimiter) and the capped
 * decoded text. Nothing throws on bad input; the result is the best structure the bytes
 * allow, its offsets always within the input and nested.
 *
 * Rules for malformed MIME:
 * - A delimiter line is one that starts with "--" and the boundary of an open multipart
 *   (the longest matching boundary wins); it ends every part inside that multipart. The
 *   line break before it belongs to it (RFC 2046 5.1.1), unless that would end a part
 *   before it began.
 * - A part of a multipart whose first line looks like no header field has no header.
 * - A header block never ended by a blank line is all header; the body is empty.
 * - A multipart without a usable boundary, or past MAX_DEPTH/MAX_PARTS, is opaque.
 */
import { PartText, TextSink } from './body-text.js';
import { envelopeOf } from './envelope.js';
import { describePart, HeaderCollector, looksLikeField, param } from './header-block.js';
import { emptyEnvelope, MAX_DEPTH, MAX_HEADER_FIELDS, MAX_PARTS, type Envelope, type MessageStructure, type MimePart } from './structure.js';
import libmime from 'libmime';

/** Bytes of a line looked at before deciding what it is (a boundary, a header field, content). */
const HEAD_CAP = 512;
/** Longest boundary recognised (RFC 2046 allows 70). */
const MAX_BOUNDARY = HEAD_CAP - 8;

const CR = Buffer.from('\r');
const CRLF = Buffer.from('\r\n');
const LF = Buffer.from('\n');
/** Where a line starting with '-' (perhaps a boundary delimiter) begins, one byte on. */
const LF_DASH = Buffer.from('\n-');

interface Frame {
  part: MimePart;
  /** header: reading its header block; leaf: a body without parts; multipart: between its parts; message: its enclosed message is the next frame. */
  kind: 'header' | 'leaf' | 'multipart' | 'message';
  depth: number;
  /** A part of a multipart: may lack a header; a part of a multipart/digest defaults to message/rfc822. */
  inMultipart: boolean;
  inDigest: boolean;
  header: HeaderCollector | null;
  firstLine: boolean;
  /** LFs before bodyStart. */
  bodyStartLine: number;
  /** multipart: "--" + boundary. */
  delimiter: Buffer | null;
  /** multipart: its close delimiter was seen (the rest is epilogue). */
  closed: boolean;
  text: PartText | null;
  /** The line break after the last line given to `text`, given to it only once the next line is known to be content. */
  pendingEol: Buffer | null;
  /** The root of an enclosed message: where its envelope goes. */
  enclosure: { envelope: Envelope; root: MimePart } | null;
}

type Target = { kind: 'header'; frame: Frame } | { kind: 'text'; frame: Frame } | { kind: 'blank'; frame: Frame } | { kind: 'discard' };

function newPart(at: number): MimePart {
  return {
    headerStart: at,
    bodyStart: at,
    bodyEnd: at,
    type: 'text',
    subtype: 'plain',
    params: [['charset', 'us-ascii']],
    id: null,
    description: null,
    encoding: '7BIT',
    lines: 0,
    md5: null,
    disposition: null,
    language: null,
    location: null,
  };
}

export class MimeParser {
  private readonly stack: Frame[] = [];
  private readonly root: MimePart = newPart(0);
  private readonly sink = new TextSink();
  private parts = 1;
  private headers: Array<[string, string]> = [];
  private envelope: Envelope = emptyEnvelope();
  private result: MessageStructure | null = null;

  /** Bytes consumed. */
  private offset = 0;
  private lineStart = 0;
  /** LFs before the current line. */
  private lineNo = 0;
  private prevEolLength = 0;
  private prevContentLength = 0;
  /** Content bytes of the current line so far (its line break excluded). */
  private contentLength = 0;
  /** The current line's last byte so far is a CR, not yet known to be part of its line break. */
  private crHeld = false;
  private readonly head = Buffer.alloc(HEAD_CAP);
  private headLength = 0;
  private decided = false;
  /** The current line is a delimiter of this frame (by index), opening a new part at its end unless it closes. */
  private delimiter: { index: number; close: boolean } | null = null;
  private target: Target = { kind: 'discard' };

  /** `lineByLine` turns off the fast path for runs of body lines (tests compare both). */
  constructor(private readonly lineByLine = false) {
    this.stack.push(this.frame(this.root, 0, { enclosure: null, inMultipart: false, inDigest: false }));
  }

  write(chunk: Buffer): void {
    if (this.result) return;
    let i = 0;
    while (i < chunk.length) {
      if (!this.lineByLine && chunk[i] !== 45 && this.contentLength === 0 && !this.crHeld && this.top.kind !== 'header') {
        const end = this.bodyRun(chunk, i);
        if (end > i) {
          i = end;
          continue;
        }
      }
      const lf = chunk.indexOf(10, i);
      if (lf === -1) {
        this.data(chunk, i, chunk.length);
        this.offset += chunk.length - i;
        return;
      }
      this.data(chunk, i, lf);
      this.offset += lf + 1 - i;
      this.lineEnd();
      i = lf + 1;
    }
  }

  /**
   * The fast path for a body: from a line start, the complete lines before the next one
   * that starts with '-' (the only lines that can be delimiters) are all content of the
   * innermost part, so they go to its text in one piece and are only counted. Returns
   * where the run ends (`from` when there is no complete line to take).
   */
  private bodyRun(chunk: Buffer, from: number): number {
    const dash = chunk.indexOf(LF_DASH, from);
    const end = dash !== -1 ? dash + 1 : chunk.lastIndexOf(10) + 1;
    if (end <= from) return from;
    let lines = 0;
    let last = from; // start of the run's last line
    for (let lf = chunk.indexOf(10, from); lf !== -1 && lf < end; lf = chunk.indexOf(10, lf + 1)) {
      lines++;
      if (lf + 1 < end) last = lf + 1;
    }
    const eolLength = end - 2 >= last && chunk[end - 2] === 13 ? 2 : 1;
    const f = this.top;
    if (f.kind === 'leaf' && f.text) {
      if (f.pendingEol) f.text.write(f.pendingEol);
      if (end - eolLength > from) f.text.write(chunk.subarray(from, end - eolLength));
      f.pendingEol = eolLength === 2 ? CRLF : LF;
    }
    this.offset += end - from;
    this.lineNo += lines;
    this.lineStart = this.offset;
    this.prevEolLength = eolLength;
    this.prevContentLength = end - eolLength - last;
    return end;
  }

  end(): MessageStructure {
    if (this.result) return this.result;
    if (this.crHeld) {
      this.crHeld = false;
      this.content(CR, 0, 1);
    }
    if (!this.decided && this.contentLength > 0) this.decide(false);
    let end = this.offset;
    while (this.stack.length > 0) end = this.finish(this.stack.pop()!, end, true);
    this.result = { version: 1, root: this.root, envelope: this.envelope, headers: this.headers, text: this.sink.text() };
    return this.result;
  }

  private frame(part: MimePart, depth: number, o: Pick<Frame, 'enclosure' | 'inMultipart' | 'inDigest'>): Frame {
    return {
      part,
      kind: 'header',
      depth,
      ...o,
      header: new HeaderCollector(),
      firstLine: true,
      bodyStartLine: this.lineNo,
      delimiter: null,
      closed: false,
      text: null,
      pendingEol: null,
    };
  }

  private get top(): Frame {
    return this.stack[this.stack.length - 1]!;
  }

  /** Content bytes [from, end) of the current line (no LF); a trailing CR is held until we know whether an LF follows. */
  private data(buf: Buffer, from: number, end: number): void {
    if (end <= from) return;
    if (this.crHeld) {
      this.crHeld = false;
      this.content(CR, 0, 1);
    }
    if (buf[end - 1] === 13) {
      this.crHeld = true;
      end--;
    }
    if (end > from) this.content(buf, from, end);
  }

  private content(buf: Buffer, from: number, end: number): void {
    this.contentLength += end - from;
    if (!this.decided) {
      // A line can only be a delimiter if it starts with '-'; header lines are always looked at.
      if (this.headLength === 0 && buf[from] !== 45 && this.top.kind !== 'header') this.decide(false);
      else {
        const n = Math.min(end - from, HEAD_CAP - this.headLength);
        buf.copy(this.head, this.headLength, from, from + n);
        this.headLength += n;
        from += n;
        if (this.headLength < HEAD_CAP) return;
        this.decide(false);
      }
    }
    if (from < end) this.deliver(buf, from, end);
  }

  private deliver(buf: Buffer, from: number, end: number): void {
    const t = this.target;
    if (t.kind === 'header') t.frame.header!.add(buf, from, end);
    else if (t.kind === 'text') t.frame.text!.write(buf.subarray(from, end));
  }

  /** Decides what the current line is from its first bytes (all of it when `terminated`). */
  private decide(terminated: boolean): void {
    this.decided = true;
    const match = this.matchDelimiter();
    if (match) {
      this.delimiter = match;
      this.target = { kind: 'discard' };
      this.endFramesAbove(match.index);
      if (match.close) this.stack[match.index]!.closed = true;
      return;
    }
    this.target = this.route(terminated);
    if (this.headLength > 0) this.deliver(this.head, 0, this.headLength);
  }

  /** The open multipart whose delimiter the current line is (longest boundary; innermost on a tie), if any. */
  private matchDelimiter(): { index: number; close: boolean } | null {
    if (this.headLength < 2 || this.head[0] !== 45 || this.head[1] !== 45) return null;
    let best: { index: number; close: boolean; length: number } | null = null;
    for (let i = this.stack.length - 1; i >= 0; i--) {
      const f = this.stack[i]!;
      const d = f.delimiter;
      if (!d || f.closed || d.length > this.headLength || (best && best.length >= d.length)) continue;
      if (this.head.compare(d, 0, d.length, 0, d.length) !== 0) continue;
      const close = this.headLength >= d.length + 2 && this.head[d.length] === 45 && this.head[d.length + 1] === 45;
      if (!close && this.parts >= MAX_PARTS) continue; // no more parts: the line is content of the part it is in
      best = { index: i, close, length: d.length };
    }
    return best && { index: best.index, close: best.close };
  }

  /** Where the current (content) line goes. */
  private route(terminated: boolean): Target {
    for (;;) {
      const f = this.top;
      if (f.kind === 'header') {
        if (terminated && this.contentLength === 0) return { kind: 'blank', frame: f };
        if (f.firstLine && f.inMultipart && !looksLikeField(this.head.toString('latin1', 0, this.headLength))) {
          this.startBody(f, this.lineStart, this.lineNo); // a part without a header
          continue;
        }
        if (!f.firstLine) f.header!.newline();
        f.firstLine = false;
        return { kind: 'header', frame: f };
      }
      if (f.kind === 'leaf' && f.text) {
        if (f.pendingEol) f.text.write(f.pendingEol);
        f.pendingEol = null;
        return { kind: 'text', frame: f };
      }
      return { kind: 'discard' };
    }
  }

  private lineEnd(): void {
    const eol = this.crHeld ? CRLF : LF;
    this.crHeld = false;
    if (!this.decided) this.decide(true);
    const t = this.target;
    if (this.delimiter) {
      const f = this.stack[this.delimiter.index]!;
      if (!this.delimiter.close) this.openChild(f, this.offset);
    } else if (t.kind === 'blank') {
      this.startBody(t.frame, this.offset, this.lineNo + 1);
    } else if (t.kind === 'text') {
      t.frame.pendingEol = eol;
    }
    this.prevEolLength = eol.length;
    this.prevContentLength = this.contentLength;
    this.contentLength = 0;
    this.lineNo++;
    this.lineStart = this.offset;
    this.headLength = 0;
    this.decided = false;
    this.delimiter = null;
    this.target = { kind: 'discard' };
  }

  private openChild(multipart: Frame, at: number): void {
    this.parts++;
    const part = newPart(at);
    multipart.part.children!.push(part);
    const inDigest = multipart.part.subtype === 'digest';
    this.stack.push(this.frame(part, multipart.depth + 1, { enclosure: null, inMultipart: true, inDigest }));
  }

  /** The header block of `f` ends: its body starts at `at` (`line` LFs before it). */
  private startBody(f: Frame, at: number, line: number): void {
    f.part.bodyStart = at;
    f.bodyStartLine = line;
    this.readHeader(f, true);
  }

  /** Reads the frame's header block and decides what its body is; `hasBody` is false for a part that ends inside its header. */
  private readHeader(f: Frame, hasBody: boolean): void {
    const fields = f.header!.fields();
    f.header = null;
    Object.assign(f.part, describePart(fields, f.inDigest));
    if (f.enclosure) f.enclosure.envelope = envelopeOf(fields);
    else if (f.part === this.root) {
      this.envelope = envelopeOf(fields);
      this.headers = fields.slice(0, MAX_HEADER_FIELDS).map(([name, value]) => [name, decodeWords(value)]);
    }
    const p = f.part;
    const roomForMore = f.depth < MAX_DEPTH && this.parts < MAX_PARTS;
    f.kind = 'leaf';
    if (p.type === 'multipart') {
      p.children = [];
      const boundary = param(p.params, 'boundary');
      if (boundary && Buffer.byteLength(boundary) <= MAX_BOUNDARY && roomForMore && hasBody) {
        f.kind = 'multipart';
        f.delimiter = Buffer.from(`--${boundary}`);
      }
    } else if (p.type === 'message' && (p.subtype === 'rfc822' || p.subtype === 'global') && ['7BIT', '8BIT', 'BINARY'].includes(p.encoding) && roomForMore) {
      this.parts++;
      const root = newPart(p.bodyStart);
      const enclosed = { envelope: emptyEnvelope(), root };
      p.message = enclosed;
      if (hasBody) {
        f.kind = 'message';
        this.stack.push(this.frame(root, f.depth + 1, { enclosure: enclosed, inMultipart: false, inDigest: false }));
      }
    } else if (p.type === 'text' && hasBody && !this.sink.full) {
      f.text = new PartText(this.sink, p.encoding, param(p.params, 'charset'), p.subtype === 'html');
    }
  }

  /** Ends every frame above stack index `index` at the current line, a delimiter line. */
  private endFramesAbove(index: number): void {
    let end = this.lineStart - this.prevEolLength;
    while (this.stack.length - 1 > index) end = this.finish(this.stack.pop()!, end, false);
  }

  /**
   * Ends a frame at `end` (or later, if it started later), returns where it ended; the frame
   * below ends there too or later, so parts stay nested. At a delimiter `end` is either the
   * start of the line break before it or (for a part that began on that very line) the
   * delimiter line's start; at EOF it is the input's length.
   */
  private finish(f: Frame, end: number, eof: boolean): number {
    const p = f.part;
    if (f.kind === 'header') {
      p.bodyStart = Math.max(end, p.headerStart);
      f.bodyStartLine = this.lineNo;
      this.readHeader(f, false);
      p.bodyEnd = p.bodyStart;
      return p.bodyEnd;
    }
    if (f.text) {
      if (eof && f.pendingEol) f.text.write(f.pendingEol);
      f.text.end();
      f.text = null;
    }
    p.bodyEnd = Math.max(end, p.bodyStart);
    p.lines = this.linesOf(f, p.bodyEnd, eof);
    return p.bodyEnd;
  }

  private linesOf(f: Frame, end: number, eof: boolean): number {
    if (end <= f.part.bodyStart) return 0;
    if (eof) return this.lineNo - f.bodyStartLine + (this.contentLength > 0 ? 1 : 0);
    if (end === this.lineStart) return this.lineNo - f.bodyStartLine;
    return this.lineNo - 1 - f.bodyStartLine + (this.prevContentLength > 0 ? 1 : 0);
  }
}

function decodeWords(value: string): string {
  try {
    return libmime.decodeWords(value);
  } catch {
    return value;
  }
}

/** Parses a whole message held in memory (tests, tools; streaming callers use MimeParser). */
export function parseMessage(message: Buffer): MessageStructure {
  const p = new MimeParser();
  p.write(message);
  return p.end();
}
