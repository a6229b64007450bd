/**
 * Drops fields from a message's top-level header block as the bytes stream by: the header
 * block is held back (up to a limit) until its blank line, filtered, and passed on; the
 * body passes straight through. Used on the MX to remove Authentication-Results fields
 * that claim to be Tern's own (RFC 8601 5): only Tern may write those.
 */

/** A header block larger than this passes through unfiltered (nothing is held without bound). */
const MAX_HEADER_BYTES = 256 * 1024;

export class HeaderFilter {
  private held: Buffer[] = [];
  private heldBytes = 0;
  private passing = false;

  /** `drop(name, value)`: name as written, value unfolded (CRLF and the folding whitespace joined). */
  constructor(private readonly drop: (name: string, value: string) => boolean) {}

  /** The bytes to pass on for `piece` (empty while the header block is still arriving). */
  write(piece: Buffer): Buffer {
    if (this.passing) return piece;
    this.held.push(piece);
    this.heldBytes += piece.length;
    const all = Buffer.concat(this.held);
    const end = headerEnd(all);
    if (end === -1) {
      if (this.heldBytes <= MAX_HEADER_BYTES) {
        this.held = [all];
        return Buffer.alloc(0);
      }
      return this.release(all);
    }
    this.passing = true;
    this.held = [];
    return Buffer.concat([this.filtered(all.subarray(0, end)), all.subarray(end)]);
  }

  /** What is still held back, at the end of the message (a message that is all header). */
  end(): Buffer {
    if (this.passing) return Buffer.alloc(0);
    this.passing = true;
    const all = Buffer.concat(this.held);
    this.held = [];
    return this.filtered(all);
  }

  private release(all: Buffer): Buffer {
    this.passing = true;
    this.held = [];
    return all;
  }

  /** The header block without the dropped fields (each field with its continuation lines). */
  private filtered(block: Buffer): Buffer {
    const text = block.toString('latin1');
    const fields = text.split(/(?<=\n)(?=[^ \t])/);
    const kept = fields.filter((field) => {
      const colon = field.indexOf(':');
      if (colon <= 0) return true;
      return !this.drop(
        field.slice(0, colon).trim(),
        field
          .slice(colon + 1)
          .replace(/\r?\n[ \t]/g, ' ')
          .trim(),
      );
    });
    return kept.length === fields.length ? block : Buffer.from(kept.join(''), 'latin1');
  }
}

/** Offset just after the header block's last field line (before the blank line), or -1 while it has not ended. */
function headerEnd(b: Buffer): number {
  if (b.length >= 2 && b[0] === 0x0d && b[1] === 0x0a) return 0; // no header at all
  const crlf = b.indexOf('\r\n\r\n');
  const lf = b.indexOf('\n\n');
  const ends = [crlf === -1 ? -1 : crlf + 2, lf === -1 ? -1 : lf + 1].filter((n) => n >= 0);
  return ends.length ? Math.min(...ends) : -1;
}

/** The authserv-id of an Authentication-Results value (RFC 8601 2.2): its first token, before `;` or a version. */
export function authservId(value: string): string {
  return (
    value
      .replace(/\([^)]*\)/g, ' ')
      .trim()
      .split(/[\s;]/)[0] ?? ''
  ).toLowerCase();
}
