/**
 * The pieces an IMAP fuzz conversation is made of. A command is one or more segments: the
 * line up to a synchronizing literal `{n}` (after which a real client waits for "+"), then
 * the literal's bytes and the rest of the line, and so on. Non-synchronizing literals
 * `{n+}` (LITERAL+) stay inside their segment.
 */

export type Status = 'OK' | 'NO' | 'BAD';

export interface Segment {
  bytes: Buffer;
  /** What this segment is, for reports. */
  label: string;
  /** The command it belongs to (an id unique within the case). */
  command: number;
  /** The command's tag as generated (mutations may change the bytes). */
  tag: string;
  /** On a command's first segment in a valid conversation: the answers it may get. */
  expect?: Status[];
  /** Bytes a client sends only after a "+" for its command (a literal, an AUTHENTICATE response, IDLE's DONE). */
  continuation?: boolean;
  /** A real client waits for "+" (or the command's answer) before sending what follows. */
  awaitContinuation?: boolean;
  /** A real client waits for every answer here before sending more (STARTTLS, LOGOUT). */
  syncAfter?: boolean;
  /** The client stops reading answers for this many ms while it sends this segment. */
  stallReading?: number;
  /** Milliseconds the client waits before sending this segment (IDLE before DONE). */
  delayMs?: number;
}

/** A literal inside a command: `{n}` waits for "+", `{n+}` (LITERAL+) does not. */
export interface Literal {
  literal: Buffer;
  sync: boolean;
}

export type Part = string | Literal;

const CRLF = '\r\n';

/** Cuts a command (tag and parts, joined as given) into segments at its synchronizing literals. */
export function commandSegments(id: number, tag: string, parts: Part[], label: string, expect?: Status[]): Segment[] {
  const segments: Segment[] = [];
  let pieces: Buffer[] = [Buffer.from(`${tag} `, 'latin1')];
  let continuation = false;
  const close = (awaitContinuation: boolean) => {
    const seg: Segment = { bytes: Buffer.concat(pieces), label: continuation ? `${label} (continued)` : label, command: id, tag };
    if (continuation) seg.continuation = true;
    else if (expect) seg.expect = expect;
    if (awaitContinuation) seg.awaitContinuation = true;
    segments.push(seg);
    pieces = [];
    continuation = true;
  };
  for (const part of parts) {
    if (typeof part === 'string') {
      pieces.push(Buffer.from(part, 'utf8'));
      continue;
    }
    pieces.push(Buffer.from(`{${part.literal.length}${part.sync ? '' : '+'}}${CRLF}`, 'latin1'));
    if (part.sync) close(true);
    pieces.push(part.literal);
  }
  pieces.push(Buffer.from(CRLF, 'latin1'));
  close(false);
  return segments;
}

/** A raw line a client sends after a "+" (IDLE's DONE, a SASL response). */
export function continuationLine(id: number, tag: string, text: string, label: string, delayMs = 0): Segment {
  return { bytes: Buffer.from(`${text}${CRLF}`, 'utf8'), label, command: id, tag, continuation: true, ...(delayMs ? { delayMs } : {}) };
}

/** Every part as text (literals shown as `{n}` and their bytes); for labels. */
export function partsText(parts: Part[]): string {
  return parts.map((p) => (typeof p === 'string' ? p : `{${p.literal.length}${p.sync ? '' : '+'}}`)).join('');
}
