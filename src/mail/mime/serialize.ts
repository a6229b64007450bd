/**
 * The stored form of a MessageStructure: compact JSON of everything but the search text,
 * which the store keeps in a column of its own.
 */
import type { MessageStructure } from './structure.js';

export function serializeStructure(s: MessageStructure): string {
  return JSON.stringify({ version: s.version, root: s.root, envelope: s.envelope, headers: s.headers });
}

/**
 * What the store keeps of a parsed body: the structure as JSON, and for SEARCH the decoded
 * text and top-level header fields ("name: value" lines), both lower-cased once here so the
 * store can match them case-insensitively in SQL (instr/strpos) with a lower-cased needle.
 */
export function storedForm(s: MessageStructure): { json: string; text: string; headers: string } {
  return {
    json: serializeStructure(s),
    text: s.text.toLowerCase(),
    headers: s.headers.map(([name, value]) => `${name}: ${value.replace(/[\r\n]+/g, ' ')}`.toLowerCase()).join('\n'),
  };
}

/** Reads what serializeStructure wrote (`text` comes back empty); throws on anything else. */
export function parseStoredStructure(json: string): MessageStructure {
  const value = JSON.parse(json) as Partial<MessageStructure> | null;
  if (!value || typeof value !== 'object' || value.version !== 1 || !value.root || !value.envelope || !Array.isArray(value.headers)) {
    throw new Error('not a stored message structure (version 1)');
  }
  return { version: 1, root: value.root, envelope: value.envelope, headers: value.headers, text: '' };
}
