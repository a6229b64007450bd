/** What Tern's IMAP server announces (RFC 3501 7.2.1), by connection state. */

/** Extensions available once logged in (and listed before login too, except auth-related ones). */
const EXTENSIONS = [
  'IMAP4rev1',
  'LITERAL+',
  'SASL-IR',
  'ID',
  'ENABLE',
  'IDLE',
  'NAMESPACE',
  'UIDPLUS',
  'MOVE',
  'UNSELECT',
  'CHILDREN',
  'SPECIAL-USE',
  'LIST-EXTENDED',
  'LIST-STATUS',
  'CONDSTORE',
  'QRESYNC',
  'QUOTA',
  'QUOTA=RES-STORAGE',
];

export function capabilities(opts: { authenticated: boolean; secure: boolean; plaintextAllowed: boolean }): string[] {
  if (opts.authenticated) return EXTENSIONS;
  const auth = opts.plaintextAllowed ? ['AUTH=PLAIN'] : ['LOGINDISABLED'];
  return [...EXTENSIONS, ...(opts.secure ? [] : ['STARTTLS']), ...auth];
}
