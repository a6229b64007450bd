/** Printable forms of raw protocol bytes for fuzz reports: escaped, and cut when long. */

/** A JSON string literal of the bytes read as latin1, with DEL and every byte from 0x7f up escaped too. */
function literal(bytes: Buffer): string {
  return JSON.stringify(bytes.toString('latin1')).replace(/[\u007f-\u00ff]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`);
}

/** `bytes` as an escaped string literal, cut to about `max` bytes (head … length … tail). */
export function showBytes(bytes: Buffer, max = 240): string {
  if (bytes.length <= max) return literal(bytes);
  const head = bytes.subarray(0, Math.floor(max * 0.75));
  const tail = bytes.subarray(bytes.length - Math.floor(max * 0.2));
  return `${literal(head)} … ${bytes.length} bytes … ${literal(tail)}`;
}
