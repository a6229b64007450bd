/**
 * mail/mime: the one message parser. It runs once, as a body is stored (mail/message-sink.ts),
 * and its result is stored with the body, so IMAP FETCH and SEARCH never parse a message.
 *
 * Rules in this folder: pure code (no sockets, store or logger); every input is bounded
 * (header blocks, nesting, parts, decoded text); bad input never throws.
 */
export { MimeParser, parseMessage } from './parser.js';
export { findPart } from './sections.js';
export {
  headerHas,
  headerPattern,
  isSearchField,
  parseStoredStructure,
  SEARCH_FIELDS,
  searchValues,
  serializeStructure,
  storedForm,
  type SearchField,
} from './serialize.js';
export { parseAddressList } from './envelope.js';
export {
  emptyEnvelope,
  HEADER_BLOCK_CAP,
  MAX_DEPTH,
  MAX_HEADER_FIELDS,
  MAX_PARTS,
  TEXT_CAP,
  type AddressValue,
  type Envelope,
  type EnvelopeAddress,
  type MessageStructure,
  type MimePart,
} from './structure.js';
