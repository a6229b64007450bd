/**
 * The stored form of a MessageStructure: compact JSON of everything but the search text,
 * which the store keeps in a column of its own.
 */
import type { MessageStructure } from './structure.js';

export function serializeStructure(s: MessageStructure): string {
  return JSON.stringify({ version: s.version, root: s.root, envelope: s.envelope, headers: s.headers });
}

/** Reads what serializeStructure wrote (`text` comes back empty); throws on anything else. */
export function parseStoredStructure(json: string): MessageStructure {
  const value = JSON.parse(json) as Partial<MessageStructure> | null;
  if (!value || typeof value !== 'object' || value.version !== 1 || !value.root || !value.envelope || !Array.isArray(value.headers)) {
    throw new Error('not a stored message structure (version 1)');
  }
  return { version: 1, root: value.root, envelope: value.envelope, headers: value.headers, text: '' };
}
