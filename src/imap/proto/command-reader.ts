/**
 * The incremental IMAP command reader (RFC 3501 section 4, RFC 7888 LITERAL+): bytes in,
 * typed events out. It frames lines and literals, tokenizes arguments (atoms, quoted
 * strings, literals, nested lists; `[...]` sections stay inside their atom), and asks the
 * session before it takes a literal, so the session decides between `+ go ahead`, a
 * refusal, or streaming a large literal (an APPEND body) without holding it in memory.
 * Pure: no sockets, store or logger.
 */

export type Token =
  | { type: 'atom'; value: string }
  | { type: 'string'; value: string; bytes?: Buffer }
  | { type: 'list'; items: Token[] }
  /** A literal whose bytes were streamed to the session as `literal-data` events. */
  | { type: 'streamed'; size: number };

export interface CommandStart {
  tag: string;
  /** Upper-cased command name. */
  name: string;
  /** Arguments parsed so far (for a literal announcement) or all of them. */
  args: Token[];
}

export type ReaderEvent =
  | ({ kind: 'command' } & CommandStart)
  /** A literal is announced: the session must call accept('buffer' | 'stream') or reject(). */
  | ({ kind: 'literal'; size: number; sync: boolean } & CommandStart)
  | { kind: 'literal-data'; data: Buffer }
  /** A raw line asked for with expectLine() (IDLE's DONE, an AUTHENTICATE response). */
  | { kind: 'line'; text: string }
  /** A malformed or refused command; the rest of it has been skipped. `answer` (NO/BAD and text) when the session chose it. */
  | { kind: 'error'; tag: string | null; text: string; answer?: string };

export interface ReaderLimits {
  /** Longest line (between literals), in bytes. */
  maxLine: number;
  /** Largest literal taken into memory ('buffer'). */
  maxInlineLiteral: number;
  /** Bytes of one command's text and inline literals together. */
  maxCommand: number;
  /** Deepest list nesting. */
  maxDepth: number;
}

export const DEFAULT_READER_LIMITS: ReaderLimits = { maxLine: 64 * 1024, maxInlineLiteral: 64 * 1024, maxCommand: 1024 * 1024, maxDepth: 16 };

const TAG = /^[\x21\x23\x24\x26\x27\x2c-\x5b\x5d-\x7a\x7c-\x7e]+$/; // ASTRING-CHAR without "+" (RFC 3501 9)
const LITERAL_END = /\{(\d{1,20})(\+?)\}$/;

class ParseError extends Error {}

type State =
  | { mode: 'line' }
  | { mode: 'decide'; size: number; sync: boolean }
  | { mode: 'literal'; remaining: number; stream: boolean; parts: Buffer[] }
  | { mode: 'skip-literal'; remaining: number }
  | { mode: 'skip-line' };

export class CommandReader {
  private buffer: Buffer = Buffer.alloc(0);
  private state: State = { mode: 'line' };
  private command: CommandStart | null = null;
  private stack: Token[][] = [];
  private commandBytes = 0;
  private rawLine = false;
  private skippedError: ReaderEvent | null = null;
  /** After a dropped literal, the rest of its command line is dropped too. */
  private skipRestAfterLiteral = false;

  constructor(private readonly limits: ReaderLimits = DEFAULT_READER_LIMITS) {}

  push(data: Buffer): void {
    this.buffer = this.buffer.length === 0 ? data : Buffer.concat([this.buffer, data]);
  }

  /** Bytes received but not yet turned into events. */
  get pending(): number {
    return this.buffer.length;
  }

  /** The next line is handed over raw (IDLE's DONE, AUTHENTICATE responses). */
  expectLine(): void {
    this.rawLine = true;
  }

  /** Takes the announced literal into memory ('buffer') or hands it on in pieces ('stream'). */
  accept(how: 'buffer' | 'stream'): void {
    if (this.state.mode !== 'decide') throw new Error('no literal is waiting for a decision');
    if (how === 'buffer') this.commandBytes += this.state.size; // held in memory: counts toward the command's limit
    this.state = { mode: 'literal', remaining: this.state.size, stream: how === 'stream', parts: [] };
  }

  /** Whether an announced literal of `size` bytes, taken into memory, keeps its command within maxCommand. */
  fitsCommand(size: number): boolean {
    return this.commandBytes + size <= this.limits.maxCommand;
  }

  /**
   * Refuses the announced literal. A synchronizing one is never sent (the caller answers at
   * once); a LITERAL+ one is read and dropped with the rest of its command, then an error
   * event carries `answer` for the caller to send.
   */
  reject(answer: string): void {
    if (this.state.mode !== 'decide') throw new Error('no literal is waiting for a decision');
    if (this.state.sync) this.state = { mode: 'line' };
    else {
      this.state = { mode: 'skip-literal', remaining: this.state.size };
      this.skipRestAfterLiteral = true;
      this.skippedError = { kind: 'error', tag: this.command?.tag ?? null, text: answer, answer };
    }
    this.resetCommand();
  }

  /** The next event, or null when more bytes are needed. */
  next(): ReaderEvent | null {
    for (;;) {
      const s = this.state;
      if (s.mode === 'decide') return null;
      if (s.mode === 'skip-literal' || s.mode === 'literal') {
        if (this.buffer.length === 0) return null;
        const n = Math.min(s.remaining, this.buffer.length);
        const piece = this.buffer.subarray(0, n);
        this.buffer = this.buffer.subarray(n);
        s.remaining -= n;
        if (s.mode === 'skip-literal') {
          if (s.remaining === 0) this.state = this.skipRestAfterLiteral ? { mode: 'skip-line' } : { mode: 'line' };
          continue;
        }
        if (!s.stream) s.parts.push(piece);
        if (s.remaining === 0) {
          this.state = { mode: 'line' };
          this.append(s.stream ? { type: 'streamed', size: 0 } : literalToken(Buffer.concat(s.parts)));
        }
        if (s.stream && piece.length > 0) return { kind: 'literal-data', data: Buffer.from(piece) };
        continue;
      }
      const eol = this.buffer.indexOf(10);
      if (eol < 0) {
        if (this.buffer.length > this.limits.maxLine && s.mode === 'line') {
          const tag = this.command?.tag ?? tagOf(this.buffer);
          this.buffer = Buffer.alloc(0);
          this.resetCommand();
          this.state = { mode: 'skip-line' };
          this.skippedError = { kind: 'error', tag, text: 'Command line too long' };
        } else if (s.mode === 'skip-line') this.buffer = this.buffer.subarray(Math.max(0, this.buffer.length - 24)); // keeps room for a "{n+}" at its end
        return null;
      }
      if (eol > this.limits.maxLine && s.mode === 'line') {
        const tag = this.command?.tag ?? tagOf(this.buffer);
        this.buffer = this.buffer.subarray(eol + 1);
        this.resetCommand();
        this.rawLine = false; // a raw line asked for (DONE, a SASL response) was this one
        return { kind: 'error', tag, text: 'Command line too long' };
      }
      const line = this.buffer.subarray(0, eol > 0 && this.buffer[eol - 1] === 13 ? eol - 1 : eol).toString('utf8');
      this.buffer = this.buffer.subarray(eol + 1);
      if (s.mode === 'skip-line') {
        // A refused command goes on after its dropped literal: its further LITERAL+ literals are dropped too, never read as commands.
        const more = this.skipRestAfterLiteral ? LITERAL_END.exec(line) : null;
        if (more && more[2] === '+') {
          this.state = { mode: 'skip-literal', remaining: Number(more[1]) };
          continue;
        }
        this.rawLine = false;
        this.state = { mode: 'line' };
        this.skipRestAfterLiteral = false;
        const error = this.skippedError;
        this.skippedError = null;
        if (error) return error;
        continue;
      }
      if (this.rawLine && !this.command) {
        this.rawLine = false;
        return { kind: 'line', text: line };
      }
      if (line.length === 0 && !this.command) continue; // stray empty lines are ignored
      const event = this.onLine(line);
      if (event) return event;
    }
  }

  private onLine(line: string): ReaderEvent | null {
    this.commandBytes += line.length + 2;
    if (this.commandBytes > this.limits.maxCommand) return this.fail('Command too long');
    const literal = LITERAL_END.exec(line);
    const text = literal ? line.slice(0, literal.index) : line;
    try {
      if (!this.command) this.startCommand(text);
      else this.tokenize(text);
    } catch (err) {
      if (!(err instanceof ParseError)) throw err;
      if (literal && literal[2] === '+') {
        // The client sends the literal without waiting: read and drop it, then the rest of the line.
        const tag = this.command?.tag ?? tagOf(Buffer.from(line));
        this.resetCommand();
        this.state = { mode: 'skip-literal', remaining: Number(literal[1]) };
        this.skipRestAfterLiteral = true;
        this.skippedError = { kind: 'error', tag, text: err.message };
        return null;
      }
      return this.fail(err.message);
    }
    if (literal) {
      const size = Number(literal[1]);
      this.state = { mode: 'decide', size, sync: literal[2] !== '+' };
      return { kind: 'literal', size, sync: literal[2] !== '+', ...this.snapshot() };
    }
    if (this.stack.length > 1) return this.fail('Unbalanced parentheses');
    const done = { kind: 'command' as const, ...this.snapshot() };
    this.resetCommand();
    return done;
  }

  private fail(text: string): ReaderEvent {
    const tag = this.command?.tag ?? null;
    this.resetCommand();
    return { kind: 'error', tag, text };
  }

  private snapshot(): CommandStart {
    return { tag: this.command!.tag, name: this.command!.name, args: this.stack[0]! };
  }

  private resetCommand(): void {
    this.command = null;
    this.stack = [];
    this.commandBytes = 0;
  }

  private startCommand(text: string): void {
    const sp = text.indexOf(' ');
    const tag = sp < 0 ? text : text.slice(0, sp);
    if (!TAG.test(tag)) {
      this.command = null;
      throw new ParseError(text.length === 0 ? 'Empty command line' : 'Invalid tag');
    }
    const rest = sp < 0 ? '' : text.slice(sp + 1);
    const nameEnd = rest.indexOf(' ');
    const name = (nameEnd < 0 ? rest : rest.slice(0, nameEnd)).toUpperCase();
    this.command = { tag, name, args: [] };
    if (!/^[A-Z][A-Z0-9.-]*$/.test(name)) throw new ParseError(name ? 'Invalid command name' : 'Missing command name');
    this.stack = [[]];
    if (nameEnd >= 0) this.tokenize(rest.slice(nameEnd + 1));
  }

  private append(token: Token): void {
    this.stack[this.stack.length - 1]!.push(token);
  }

  /** Adds the tokens of one line segment to the command. */
  private tokenize(text: string): void {
    let i = 0;
    while (i < text.length) {
      const c = text[i]!;
      if (c === ' ') {
        i++;
        continue;
      }
      if (c === '(') {
        if (this.stack.length > this.limits.maxDepth) throw new ParseError('Too deeply nested');
        const items: Token[] = [];
        this.append({ type: 'list', items });
        this.stack.push(items);
        i++;
      } else if (c === ')') {
        if (this.stack.length <= 1) throw new ParseError('Unbalanced parentheses');
        this.stack.pop();
        i++;
      } else if (c === '"') {
        let value = '';
        let j = i + 1;
        for (; j < text.length; j++) {
          const ch = text[j]!;
          if (ch === '\\') {
            const nx = text[j + 1];
            if (nx !== '\\' && nx !== '"') throw new ParseError('Invalid escape in quoted string');
            value += nx;
            j++;
          } else if (ch === '"') break;
          else value += ch;
        }
        if (j >= text.length) throw new ParseError('Unterminated quoted string');
        this.append({ type: 'string', value });
        i = j + 1;
      } else if (c === '{' || c.charCodeAt(0) < 0x20 || c === '\x7f') {
        throw new ParseError('Unexpected character');
      } else {
        let j = i;
        let depth = 0;
        for (; j < text.length; j++) {
          const ch = text[j]!;
          if (ch === '[') depth++;
          else if (ch === ']') depth = Math.max(0, depth - 1);
          else if (depth === 0 && (ch === ' ' || ch === '(' || ch === ')' || ch === '"' || ch === '{')) break;
          else if (ch.charCodeAt(0) < 0x20 || ch === '\x7f') throw new ParseError('Control character in atom');
        }
        if (depth > 0) throw new ParseError('Unbalanced brackets');
        const value = text.slice(i, j);
        if (text[j] === '"' || text[j] === '{') throw new ParseError('Unexpected character after atom');
        this.append({ type: 'atom', value });
        i = j;
      }
    }
  }
}

function literalToken(bytes: Buffer): Token {
  return { type: 'string', value: bytes.toString('utf8'), bytes };
}

function tagOf(buffer: Buffer): string | null {
  const text = buffer.subarray(0, 256).toString('latin1');
  const end = text.indexOf(' ');
  if (end < 0 && buffer.length > 256) return null; // the tag goes on past what is looked at: answer untagged, never with a cut tag
  const tag = end < 0 ? text : text.slice(0, end);
  return TAG.test(tag) ? tag : null;
}
