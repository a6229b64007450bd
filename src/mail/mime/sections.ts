/**
 * IMAP section numbers (RFC 3501 6.4.5) over a stored structure: the parts of a multipart
 * are numbered from 1; a message that is not multipart has one part, its body (part 1);
 * below a message/rfc822 part the numbers continue into the enclosed message's parts.
 */
import type { MessageStructure, MimePart } from './structure.js';

/**
 * The part a section number names, or null when there is none. `[]` is the whole message
 * (the root). "1" of a non-multipart message is the root itself (its body); "2.1" of a
 * multipart whose part 2 is a message/rfc822 is that message's part 1.
 */
export function findPart(structure: Pick<MessageStructure, 'root'>, section: readonly number[]): MimePart | null {
  let part: MimePart = structure.root;
  /** `part` is the root of a message, whose non-multipart body is its part 1. */
  let atMessage = true;
  for (const n of section) {
    if (!Number.isInteger(n) || n < 1) return null;
    if (!atMessage && part.message) {
      part = part.message.root;
      atMessage = true;
    }
    if (part.children) {
      const child = part.children[n - 1];
      if (!child) return null;
      part = child;
    } else if (!atMessage || n !== 1) return null;
    atMessage = false;
  }
  return part;
}
