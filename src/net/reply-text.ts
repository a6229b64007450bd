/**
 * The one place client text enters an SMTP or POP3 status line: control characters (C0,
 * DEL, C1, line separators) become '?', and the text is cut to `room` octets with "...".
 */
export function safeReplyText(text: string, room: number): string {
  const clean = text.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029]/g, '?');
  if (Buffer.byteLength(clean) <= room) return clean;
  let cut = clean.slice(0, room);
  while (Buffer.byteLength(cut) > room - 3) cut = cut.slice(0, -1);
  return `${cut}...`;
}
