/**
 * Decoded text of text/* parts for SEARCH: the transfer encoding (base64,
 * quoted-printable) undone as bytes stream in, then the charset (iconv-lite's streaming
 * decoders; charsets it lacks, such as ISO-2022-JP, through libmime on a bounded buffer),
 * HTML reduced to its text. Everything lands in one TextSink capped at TEXT_CAP bytes;
 * once it is full no more decoding is done.
 */
import { isAscii } from 'node:buffer';
import iconv from 'iconv-lite';
import { decode as decodeCharset, normalizeCharset } from 'libmime/lib/charset.js';
import { TEXT_CAP } from './structure.js';

/** The search text of a whole message, capped. */
export class TextSink {
  private readonly pieces: string[] = [];
  private bytes = 0;
  private separate = false;

  get full(): boolean {
    return this.bytes >= TEXT_CAP;
  }

  /** UTF-8 bytes still accepted. */
  get room(): number {
    return Math.max(0, TEXT_CAP - this.bytes);
  }

  /** Starts a new part: a line break between parts' texts. */
  startPart(): void {
    this.separate = this.bytes > 0;
  }

  push(text: string): void {
    if (!text || this.full) return;
    text = text.replace(/\0/g, ''); // PostgreSQL text cannot hold NUL
    if (this.separate) {
      this.separate = false;
      this.push('\n');
    }
    const size = Buffer.byteLength(text);
    if (size > this.room) {
      text = Buffer.from(text)
        .subarray(0, this.room)
        .toString()
        .replace(/\uFFFD+$/, '');
      this.bytes = TEXT_CAP;
    } else this.bytes += size;
    this.pieces.push(text);
  }

  text(): string {
    return this.pieces.join('');
  }
}

interface ByteDecoder {
  write(buf: Buffer): Buffer;
  end(): Buffer;
}

const B64_JUNK = /[^A-Za-z0-9+/]+/g;

/** Base64 as it streams in; anything not in the alphabet (line breaks, padding, junk) is skipped. */
class Base64Decoder implements ByteDecoder {
  private rest = '';

  write(buf: Buffer): Buffer {
    const s = this.rest + buf.toString('latin1').replace(B64_JUNK, '');
    const n = s.length - (s.length % 4);
    this.rest = s.slice(n);
    return Buffer.from(s.slice(0, n), 'base64');
  }

  end(): Buffer {
    const s = this.rest;
    this.rest = '';
    return s.length >= 2 ? Buffer.from(s, 'base64') : Buffer.alloc(0);
  }
}

const hex = (c: number | undefined): number => {
  if (c === undefined) return -1;
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
};

/** Quoted-printable as it streams in (RFC 2045 6.7); bad escapes are kept as they are. */
class QuotedPrintableDecoder implements ByteDecoder {
  private held: Buffer = Buffer.alloc(0);

  write(buf: Buffer): Buffer {
    const data = this.held.length > 0 ? Buffer.concat([this.held, buf]) : buf;
    this.held = Buffer.alloc(0);
    const out = Buffer.allocUnsafe(data.length);
    let j = 0;
    let i = 0;
    while (i < data.length) {
      const c = data[i]!;
      if (c !== 61) {
        out[j++] = c;
        i++;
        continue;
      }
      // '=' needs up to two more bytes to be understood: keep it for the next write.
      if (i + 2 >= data.length && !(i + 1 < data.length && data[i + 1] === 10)) {
        this.held = Buffer.from(data.subarray(i));
        break;
      }
      const a = data[i + 1]!;
      if (a === 10)
        i += 2; // soft line break (bare LF)
      else if (a === 13 && data[i + 2] === 10)
        i += 3; // soft line break
      else if (hex(a) >= 0 && hex(data[i + 2]) >= 0) {
        out[j++] = hex(a) * 16 + hex(data[i + 2]);
        i += 3;
      } else {
        out[j++] = c;
        i++;
      }
    }
    return out.subarray(0, j);
  }

  end(): Buffer {
    const rest = this.held;
    this.held = Buffer.alloc(0);
    return rest;
  }
}

/** Bytes of a charset iconv-lite lacks, held until the part ends (bounded by the room left). */
class BufferedCharset {
  private readonly chunks: Buffer[] = [];
  private size = 0;

  constructor(
    private readonly charset: string,
    private readonly limit: number,
  ) {}

  write(buf: Buffer): string {
    const n = Math.min(buf.length, this.limit - this.size);
    if (n > 0) {
      this.chunks.push(Buffer.from(buf.subarray(0, n)));
      this.size += n;
    }
    return '';
  }

  end(): string {
    try {
      return decodeCharset(Buffer.concat(this.chunks), this.charset);
    } catch {
      return Buffer.concat(this.chunks).toString('utf8');
    }
  }
}

/** Longest run of bytes held back waiting for a line end (see LineAlignedDecoder). */
const ALIGN_HOLD = 64 * 1024;

/**
 * An iconv-lite decoder fed whole lines: its double-byte decoders lose a character when a
 * chunk ends on a lead byte and the next starts with an invalid trail byte, so bytes are
 * cut only after an LF (never part of a multi-byte character), or past ALIGN_HOLD bytes.
 * The text then does not depend on how the body arrived in chunks.
 */
class LineAlignedDecoder {
  private held: Buffer | null = null;

  /** `asciiSafe`: the charset is stateless and ASCII bytes are ASCII characters, so all-ASCII text skips iconv-lite (most mail). */
  constructor(
    private readonly decoder: iconv.DecoderStream,
    private asciiSafe: boolean,
  ) {}

  write(buf: Buffer): string {
    const data = this.held ? Buffer.concat([this.held, buf]) : buf;
    const lf = data.lastIndexOf(10);
    const cut = lf !== -1 ? lf + 1 : data.length >= ALIGN_HOLD ? data.length : 0;
    this.held = cut < data.length ? Buffer.from(data.subarray(cut)) : null;
    if (cut === 0) return '';
    if (lf === -1) this.asciiSafe = false; // cut inside a line: the decoder may now hold part of a character
    const lines = data.subarray(0, cut);
    return this.asciiSafe && isAscii(lines) ? lines.toString('latin1') : this.decoder.write(lines);
  }

  end(): string {
    const rest = this.held ? this.decoder.write(this.held) : '';
    this.held = null;
    return rest + (this.decoder.end() ?? '');
  }
}

/** Charsets whose decoders keep no state and map bytes below 0x80 to the same characters. */
const ASCII_SAFE = /^(utf-?8|us-ascii|windows-125\d|iso-8859-\d+|koi8-[ru])$/i;

function charsetDecoder(charset: string | null, limit: number): { write(buf: Buffer): string; end(): string } {
  let name: string;
  try {
    name = normalizeCharset(charset ?? 'us-ascii');
  } catch {
    name = 'UTF-8';
  }
  try {
    if (iconv.encodingExists(name)) return new LineAlignedDecoder(iconv.getDecoder(name), ASCII_SAFE.test(name));
  } catch {
    // falls through to libmime, which knows the Japanese charsets and falls back to UTF-8
  }
  return new BufferedCharset(name, limit);
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/** The text of an HTML document: scripts, styles, comments and tags gone, common entities decoded, white space collapsed. */
export function htmlToText(html: string): string {
  return html
    .replace(/<(script|style)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<(br|p|div|tr|li|h[1-6])\b[^>]*>/gi, '\n')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(#x[0-9a-f]{1,6}|#[0-9]{1,7}|[a-z]{2,6});/gi, (m, e: string) => {
      if (e[0] !== '#') return ENTITIES[e.toLowerCase()] ?? m;
      const code = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return code > 0 && code <= 0x10ffff && (code < 0xd800 || code > 0xdfff) ? String.fromCodePoint(code) : m;
    })
    .replace(/[ \t\r\f\v]+/g, ' ')
    .replace(/ *\n[\s]*/g, '\n')
    .trim();
}

/** Most decoded characters of one HTML part held before its tags are stripped. */
const HTML_HOLD = 1024 * 1024;

/** The decoder for one text/* part's body, writing into the message's TextSink. */
export class PartText {
  private readonly transfer: ByteDecoder | null;
  private readonly charset: { write(buf: Buffer): string; end(): string };
  private html: string[] | null;
  private htmlLength = 0;

  constructor(
    private readonly sink: TextSink,
    encoding: string,
    charset: string | null,
    isHtml: boolean,
  ) {
    this.transfer = encoding === 'BASE64' ? new Base64Decoder() : encoding === 'QUOTED-PRINTABLE' ? new QuotedPrintableDecoder() : null;
    // Base64 of UTF-16 takes up to 4 input bytes per UTF-8 byte kept; this bounds what a buffered charset holds.
    this.charset = charsetDecoder(charset, sink.room * 4 + 16);
    this.html = isHtml ? [] : null;
    sink.startPart();
  }

  write(buf: Buffer): void {
    if (this.sink.full) return;
    this.text(this.charset.write(this.transfer ? this.transfer.write(buf) : buf));
  }

  end(): void {
    if (this.transfer) this.text(this.charset.write(this.transfer.end()));
    this.text(this.charset.end());
    if (this.html) this.sink.push(htmlToText(this.html.join('')));
    this.html = null;
  }

  private text(s: string): void {
    if (!s) return;
    if (!this.html) {
      this.sink.push(s);
      return;
    }
    if (this.htmlLength >= HTML_HOLD) return;
    this.html.push(s.slice(0, HTML_HOLD - this.htmlLength));
    this.htmlLength += Math.min(s.length, HTML_HOLD - this.htmlLength);
  }
}
