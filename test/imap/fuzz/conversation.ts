/**
 * Random valid IMAP conversations with the answers a correct server gives. The generator
 * keeps a model of the session (state, selected mailbox) and of the mailboxes the case owns
 * (named `c<case>…`, so concurrent cases never touch each other's), down to each message's
 * uid and \Deleted flag while that is knowable, so sequence numbers stay in range and
 * EXPUNGE, COPY and MOVE outcomes are predictable. INBOX is shared: only forms valid for any
 * content are used there, and nothing is expunged from it.
 *
 * Commands: STARTTLS, LOGIN and AUTHENTICATE PLAIN (SASL-IR or a continuation), CAPABILITY,
 * ID, NOOP, ENABLE, NAMESPACE, CREATE/DELETE/RENAME with hierarchy, SUBSCRIBE, LIST/LSUB
 * with LIST-EXTENDED and LIST-STATUS, STATUS, SELECT/EXAMINE with CONDSTORE/QRESYNC, APPEND
 * (flags, dates, literals of every kind, several messages), FETCH, STORE (with
 * UNCHANGEDSINCE), SEARCH (with CHARSET), COPY, MOVE, EXPUNGE and their UID forms, CHECK,
 * CLOSE, UNSELECT, IDLE…DONE, GETQUOTAROOT and LOGOUT.
 */
import type { Prng } from '../../fuzz/prng.js';
import { astring, dateTime, fetchItems, flagList, imapString, listArguments, searchKey, sequenceSet, statusItems } from './grammar.js';
import { messageSize, randomMessage } from './messages.js';
import { commandSegments, continuationLine, type Part, type Segment, type Status } from './segments.js';

export interface ConversationContext {
  /** Case number: the prefix of the mailboxes the case owns. */
  index: number;
  account: string;
  password: string;
  maxMessageSize: number;
}

/** A mailbox the case owns; `uids` (ascending) and `deleted` are null once unknowable. */
interface OwnMailbox {
  uids: number[] | null;
  deleted: Set<number> | null;
  uidNext: number | null;
}

type Selected = { name: string; readOnly: boolean } | null;

class Conversation {
  readonly segments: Segment[] = [];
  private nextCommand = 0;
  private tagStyle: (n: number) => string;
  authenticated = false;
  selected: Selected = null;
  qresync = false;
  ended = false;
  readonly own = new Map<string, OwnMailbox>();
  readonly root: string;

  constructor(
    readonly r: Prng,
    readonly ctx: ConversationContext,
  ) {
    // A random part, so a mutated case that flips a digit of its own names cannot make another case's.
    this.root = `c${ctx.index}-${r.text(5)}`;
    const prefix = r.pick(['a', 'A', 'tag', 'x.', 'T-', '$', '~q', 'z]', 'a}']);
    const width = r.pick([0, 3]);
    this.tagStyle = (n) => `${prefix}${String(n).padStart(width, '0')}`;
  }

  /** Appends a command (its segments) and returns its id. */
  add(parts: Part[], label: string, expect: Status[], opts: { syncAfter?: boolean; awaitContinuation?: boolean } = {}): number {
    const id = this.nextCommand++;
    const segs = commandSegments(id, this.tagStyle(id + 1), parts, label, expect);
    const last = segs[segs.length - 1]!;
    if (opts.syncAfter) last.syncAfter = true;
    if (opts.awaitContinuation) last.awaitContinuation = true;
    this.segments.push(...segs);
    return id;
  }

  tagOf(id: number): string {
    return this.tagStyle(id + 1);
  }

  mailboxName(): string {
    const r = this.r;
    const existing = [...this.own.keys()];
    return r.weighted<() => string>([
      [existing.length ? 6 : 0, () => r.pick(existing)],
      [3, () => `${this.root}/${r.pick(['a', 'b', 'Sub Folder', 'x/y', 'quote"d', 'back\\slash', 'dots.in.name', 'a/b/c'])}`],
      [1, () => this.root],
      [1, () => `${this.root}-${r.pick(['2', 'other'])}`],
      [0.3, () => `${this.root}/${r.pick(['ünï', '日本'])}`],
      [0.3, () => `${this.root}/${r.pick(['star*', 'per%cent'])}`],
    ])();
  }

  /** The selected mailbox's message count, when the case knows it. */
  selectedCount(): number | null {
    if (!this.selected) return null;
    return this.own.get(this.selected.name)?.uids?.length ?? null;
  }

  selectedOwn(): OwnMailbox | undefined {
    return this.selected ? this.own.get(this.selected.name) : undefined;
  }

  /** Forgets what the case knew about a mailbox's messages. */
  forget(name: string): void {
    const m = this.own.get(name);
    if (m) Object.assign(m, { uids: null, deleted: null, uidNext: null });
  }

  addMessages(name: string, n: number, deleted: boolean | null): void {
    const m = this.own.get(name);
    if (!m) return;
    if (m.uids === null || m.uidNext === null || m.deleted === null) return this.forget(name);
    for (let i = 0; i < n; i++) {
      const uid = m.uidNext++;
      m.uids.push(uid);
      if (deleted === null) return this.forget(name);
      if (deleted) m.deleted.add(uid);
    }
  }
}

function validName(name: string): boolean {
  return !/[%*]/.test(name);
}

function login(c: Conversation): void {
  const { r, ctx } = c;
  const wrong = r.chance(0.08);
  const password = wrong ? `${ctx.password}x` : ctx.password;
  const status: Status[] = wrong ? ['NO'] : ['OK'];
  const user = r.chance(0.1) ? ctx.account.toUpperCase() : ctx.account;
  const how = r.weighted([
    [6, 'login'],
    [3, 'sasl-ir'],
    [2, 'sasl'],
  ]);
  if (how === 'login') {
    c.add(['LOGIN ', astring(r, user, 0.2), ' ', astring(r, password, 0.2)], 'LOGIN', status);
  } else {
    const response = Buffer.from(`${r.chance(0.2) ? user : ''}\0${user}\0${password}`).toString('base64');
    if (how === 'sasl-ir') c.add([`${r.pick(['AUTHENTICATE', 'authenticate'])} PLAIN ${response}`], 'AUTHENTICATE PLAIN with SASL-IR', status);
    else {
      const id = c.add(['AUTHENTICATE PLAIN'], 'AUTHENTICATE PLAIN', status, { awaitContinuation: true });
      c.segments.push(continuationLine(id, c.tagOf(id), response, 'SASL PLAIN response'));
    }
  }
  if (wrong) login(c);
  else c.authenticated = true;
}

function append(c: Conversation): void {
  const { r, ctx } = c;
  const name = r.chance(0.1) ? `${c.root}/missing` : c.mailboxName();
  const exists = c.own.has(name);
  const parts: Part[] = ['APPEND ', astring(c.r, name)];
  const count = r.chance(0.1) ? r.int(2, 3) : 1;
  let tooBig = false;
  let deleted = false;
  const sizes: number[] = [];
  for (let i = 0; i < count; i++) {
    if (r.chance(0.5)) {
      const flags = flagList(r);
      if (flags.includes('\\Deleted')) deleted = true;
      parts.push(` (${flags.join(' ')})`);
    }
    if (r.chance(0.3)) parts.push(` ${dateTime(r)}`);
    const body = randomMessage(r, messageSize(r, ctx.maxMessageSize));
    sizes.push(body.length);
    if (body.length > ctx.maxMessageSize) tooBig = true;
    parts.push(' ', { literal: body, sync: r.chance(0.5) });
  }
  const status: Status[] = tooBig || !exists ? ['NO'] : ['OK'];
  c.add(parts, `APPEND ${count} message(s) of ${sizes.join('+')} bytes`, status);
  if (status[0] === 'OK') c.addMessages(name, count, deleted && count > 1 ? null : deleted);
}

function create(c: Conversation): void {
  const name = c.mailboxName();
  const ok = validName(name) && !c.own.has(name);
  c.add(['CREATE ', astring(c.r, name)], 'CREATE', ok ? ['OK'] : ['NO']);
  if (!ok) return;
  const levels = name.split('/');
  for (let i = 1; i <= levels.length; i++) {
    const n = levels.slice(0, i).join('/');
    if (!c.own.has(n) && n.startsWith(c.root)) c.own.set(n, { uids: [], deleted: new Set(), uidNext: 1 });
  }
}

function remove(c: Conversation): void {
  const name = c.mailboxName();
  const exists = c.own.has(name);
  c.add(['DELETE ', astring(c.r, name)], 'DELETE', exists ? ['OK'] : ['NO']);
  if (!exists) return;
  c.own.delete(name);
  if (c.selected?.name === name) c.selected = null;
}

function rename(c: Conversation): void {
  const from = c.mailboxName();
  let to = `${c.root}/${c.r.pick(['renamed', 'r2', 'deep/er', 'Ren Amed'])}`;
  if (to === from || to.startsWith(`${from}/`)) to = `${c.root}-moved`;
  const ok = c.own.has(from) && !c.own.has(to) && from !== to;
  c.add(['RENAME ', astring(c.r, from), ' ', astring(c.r, to)], 'RENAME', ok ? ['OK'] : ['NO']);
  if (!ok) return;
  for (const [n, m] of [...c.own.entries()]) {
    if (n !== from && !n.startsWith(`${from}/`)) continue;
    c.own.delete(n);
    c.own.set(to + n.slice(from.length), m);
    if (c.selected?.name === n) c.selected = { ...c.selected, name: to + n.slice(from.length) };
  }
  const levels = to.split('/');
  for (let i = 1; i < levels.length; i++) {
    const parent = levels.slice(0, i).join('/');
    if (!c.own.has(parent)) c.own.set(parent, { uids: [], deleted: new Set(), uidNext: 1 });
  }
}

function select(c: Conversation): void {
  const { r } = c;
  const inbox = r.chance(0.25);
  const name = inbox ? r.pick(['INBOX', 'inbox', 'Inbox']) : c.mailboxName();
  const exists = inbox || c.own.has(name);
  const readOnly = r.chance(0.25);
  const params = r.weighted<string>([
    [6, ''],
    [2, ' (CONDSTORE)'],
    [c.qresync ? 2 : 0, ` (QRESYNC (${r.int(1, 5)} ${r.int(1, 50)}${r.chance(0.5) ? ` ${sequenceSet(r, 10, true)}` : ''}))`],
  ]);
  c.add([readOnly ? 'EXAMINE ' : 'SELECT ', astring(r, name), params], readOnly ? 'EXAMINE' : 'SELECT', exists ? ['OK'] : ['NO']);
  c.selected = exists ? { name: inbox ? 'INBOX' : name, readOnly } : null;
}

function fetch(c: Conversation): void {
  const { r } = c;
  const uid = r.chance(0.4);
  const own = c.selectedOwn();
  const set = uid ? sequenceSet(r, own?.uidNext ? own.uidNext - 1 : null, true) : sequenceSet(r, c.selectedCount(), false);
  const modifiers = r.weighted<string>([
    [8, ''],
    [1, ` (CHANGEDSINCE ${r.int(1, 100)})`],
    [uid && c.qresync ? 1 : 0, ` (CHANGEDSINCE ${r.int(1, 100)} VANISHED)`],
  ]);
  c.add([`${uid ? 'UID ' : ''}FETCH ${set} ${fetchItems(r)}${modifiers}`], `${uid ? 'UID ' : ''}FETCH`, ['OK']);
}

function store(c: Conversation): void {
  const { r } = c;
  const uid = r.chance(0.4);
  const own = c.selectedOwn();
  const known = own?.uids ?? null;
  const set = uid ? sequenceSet(r, own?.uidNext ? own.uidNext - 1 : null, true) : sequenceSet(r, c.selectedCount(), false);
  // INBOX is shared: no \Deleted there, so no case expunges another's view of it.
  const flags = flagList(r, { deleted: Boolean(own) });
  const mode = r.pick(['+FLAGS', '-FLAGS', 'FLAGS']);
  const silent = r.chance(0.3) ? '.SILENT' : '';
  const unchanged = r.weighted<string | null>([
    [8, null],
    [1, r.pick(['1099511627776', '9223372036854775807'])],
    [1, String(r.int(1, 5))],
  ]);
  const list = flags.length === 0 || r.chance(0.8) ? `(${flags.join(' ')})` : flags.join(' ');
  c.add(
    [`${uid ? 'UID ' : ''}STORE ${set}${unchanged !== null ? ` (UNCHANGEDSINCE ${unchanged})` : ''} ${mode}${silent} ${list}`],
    `${uid ? 'UID ' : ''}STORE`,
    c.selected?.readOnly ? ['NO'] : ['OK'],
  );
  if (c.selected?.readOnly || !own || !known || !own.deleted) return;
  const touches = mode === 'FLAGS' || flags.includes('\\Deleted');
  if (!touches) return;
  if (unchanged !== null && unchanged.length < 3) return c.forget(c.selected!.name);
  const targets = resolve(set, known, uid);
  for (const u of targets) {
    if (mode === '-FLAGS') own.deleted.delete(u);
    else if (mode === '+FLAGS' || flags.includes('\\Deleted')) own.deleted.add(u);
    else own.deleted.delete(u);
  }
}

/** The uids a set names among `uids` (a known mailbox). */
function resolve(set: string, uids: number[], uid: boolean): number[] {
  const largest = uid ? (uids[uids.length - 1] ?? 0) : uids.length;
  if (largest === 0) return [];
  const out = new Set<number>();
  for (const range of set.split(',')) {
    const [a, b = a] = range.split(':').map((x) => (x === '*' ? largest : Number(x)));
    const lo = Math.min(a!, b!);
    const hi = Math.max(a!, b!);
    if (uid) for (const u of uids) if (u >= lo && u <= hi) out.add(u);
    if (!uid) for (let s = lo; s <= hi && s <= uids.length; s++) out.add(uids[s - 1]!);
  }
  return [...out].sort((x, y) => x - y);
}

function search(c: Conversation): void {
  const { r } = c;
  const uid = r.chance(0.4);
  const charset = r.weighted<[string, Status]>([
    [6, ['', 'OK']],
    [2, [`CHARSET ${r.pick(['UTF-8', 'utf-8', 'US-ASCII', '"UTF-8"'])} `, 'OK']],
    [0.5, ['CHARSET KOI8-R ', 'NO']],
  ]);
  const keys: Part[] = [];
  for (let i = r.int(1, 3); i > 0; i--) keys.push(...searchKey(r, r.int(0, 3), c.selectedCount()), i > 1 ? ' ' : '');
  c.add([`${uid ? 'UID ' : ''}SEARCH ${charset[0]}`, ...keys], `${uid ? 'UID ' : ''}SEARCH`, [charset[1]]);
}

function copyMove(c: Conversation): void {
  const { r } = c;
  const move = r.chance(0.4);
  const uid = r.chance(0.4);
  const own = c.selectedOwn();
  const target = r.chance(0.1) ? `${c.root}/nowhere` : c.mailboxName();
  const set = uid ? sequenceSet(r, own?.uidNext ? own.uidNext - 1 : null, true) : sequenceSet(r, c.selectedCount(), false);
  const readOnly = c.selected!.readOnly;
  // A MOVE out of the shared INBOX would take other cases' messages; COPY is harmless.
  const verb = move && own ? 'MOVE' : 'COPY';
  const ok = c.own.has(target) && !(verb === 'MOVE' && readOnly);
  c.add([`${uid ? 'UID ' : ''}${verb} ${set} `, astring(r, target)], `${uid ? 'UID ' : ''}${verb}`, [ok ? 'OK' : 'NO']);
  if (!ok) return;
  const sourceUids = own?.uids ?? null;
  if (!sourceUids || !own?.deleted) {
    c.forget(target);
    if (verb === 'MOVE') c.forget(c.selected!.name);
    return;
  }
  const moved = resolve(set, sourceUids, uid);
  if (target === c.selected!.name) return c.forget(target);
  const deletedCopies = moved.filter((u) => own.deleted!.has(u)).length;
  c.addMessages(target, moved.length, deletedCopies === 0 ? false : deletedCopies === moved.length ? true : null);
  if (verb === 'MOVE') {
    own.uids = sourceUids.filter((u) => !moved.includes(u));
    for (const u of moved) own.deleted.delete(u);
  }
}

function expunge(c: Conversation): void {
  const { r } = c;
  const own = c.selectedOwn();
  const uid = r.chance(0.3) && own;
  const set = uid ? sequenceSet(r, own.uidNext ? own.uidNext - 1 : null, true) : '';
  const readOnly = c.selected!.readOnly;
  if (!own && !readOnly) return; // nothing is expunged from the shared INBOX
  c.add([uid ? `UID EXPUNGE ${set}` : 'EXPUNGE'], uid ? 'UID EXPUNGE' : 'EXPUNGE', [readOnly ? 'NO' : 'OK']);
  if (readOnly || !own) return;
  if (!own.uids || !own.deleted) return c.forget(c.selected!.name);
  const gone = new Set(uid ? resolve(set, own.uids, true).filter((u) => own.deleted!.has(u)) : own.deleted);
  own.uids = own.uids.filter((u) => !gone.has(u));
  for (const u of gone) own.deleted.delete(u);
}

function closeMailbox(c: Conversation): void {
  const own = c.selectedOwn();
  const unselect = c.r.chance(0.4) || !own;
  c.add([unselect ? 'UNSELECT' : 'CLOSE'], unselect ? 'UNSELECT' : 'CLOSE', ['OK']);
  if (!unselect && own && !c.selected!.readOnly) {
    if (!own.uids || !own.deleted) c.forget(c.selected!.name);
    else {
      own.uids = own.uids.filter((u) => !own.deleted!.has(u));
      own.deleted.clear();
    }
  }
  c.selected = null;
}

function idle(c: Conversation): void {
  const id = c.add(['IDLE'], 'IDLE', ['OK'], { awaitContinuation: true });
  c.segments.push(continuationLine(id, c.tagOf(id), c.r.pick(['DONE', 'DONE', 'done']), 'DONE', c.r.pick([0, 0, 1, 5, 30])));
}

function misc(c: Conversation): void {
  const { r } = c;
  const choice = r.weighted<() => void>([
    [3, () => c.add(['NOOP'], 'NOOP', ['OK'])],
    [1, () => c.add(['CAPABILITY'], 'CAPABILITY', ['OK'])],
    [1, () => c.add(['NAMESPACE'], 'NAMESPACE', ['OK'])],
    [1, () => c.add([r.pick(['ID NIL', 'ID ("name" "fuzz" "version" "1")', 'ID ()'])], 'ID', ['OK'])],
    [1, () => c.add(['GETQUOTAROOT ', astring(r, r.pick(['INBOX', ...c.own.keys()]))], 'GETQUOTAROOT', ['OK'])],
    [
      1,
      () => {
        const what = r.pick(['QRESYNC', 'CONDSTORE', 'CONDSTORE QRESYNC', 'X-UNKNOWN']);
        c.add([`ENABLE ${what}`], 'ENABLE', ['OK']);
        if (what.includes('QRESYNC')) c.qresync = true;
      },
    ],
    [2, () => c.add(['LIST ', ...listArguments(r, c.root)], 'LIST', ['OK'])],
    [1, () => c.add(['LSUB ', imapString(r, ''), ' ', astring(r, r.pick([`${c.root}*`, '*', '%']))], 'LSUB', ['OK'])],
    [
      2,
      () => {
        const name = r.chance(0.2) ? 'INBOX' : c.mailboxName();
        const exists = name === 'INBOX' || c.own.has(name);
        c.add(['STATUS ', astring(r, name), ` ${statusItems(r)}`], 'STATUS', [exists ? 'OK' : 'NO']);
      },
    ],
    [
      1,
      () => {
        const name = c.mailboxName();
        const sub = r.chance(0.7);
        c.add([sub ? 'SUBSCRIBE ' : 'UNSUBSCRIBE ', astring(r, name)], sub ? 'SUBSCRIBE' : 'UNSUBSCRIBE', sub ? [c.own.has(name) ? 'OK' : 'NO'] : ['OK', 'NO']);
      },
    ],
    [1, () => idle(c)],
  ]);
  choice();
}

function selectedCommand(c: Conversation): void {
  c.r.weighted<(c: Conversation) => void>([
    [6, fetch],
    [4, store],
    [3, search],
    [2, copyMove],
    [2, expunge],
    [1, (x) => x.add(['CHECK'], 'CHECK', ['OK'])],
    [1.5, closeMailbox],
    [2, append],
    [3, misc],
    [1, select],
  ])(c);
}

function authenticatedCommand(c: Conversation): void {
  c.r.weighted<(c: Conversation) => void>([
    [3, create],
    [1, remove],
    [1, rename],
    [4, select],
    [3, append],
    [4, misc],
  ])(c);
}

/** A command not allowed in the current state (answered BAD), now and then. */
function wrongState(c: Conversation): void {
  const choices = c.authenticated
    ? c.selected
      ? ['LOGIN alice x', 'AUTHENTICATE PLAIN', 'STARTTLS']
      : ['FETCH 1 FLAGS', 'STORE 1 +FLAGS (\\Seen)', 'EXPUNGE', 'CLOSE', 'UID SEARCH ALL', 'LOGIN alice x']
    : ['SELECT INBOX', 'LIST "" *', 'FETCH 1:* FLAGS', 'APPEND INBOX', 'IDLE', 'ENABLE QRESYNC', 'UID FETCH 1 UID'];
  c.add([c.r.pick(choices)], 'command in the wrong state', ['BAD']);
}

/** A complete valid conversation (after the greeting), each command with the answers it may get. */
export function validConversation(r: Prng, ctx: ConversationContext): Segment[] {
  const c = new Conversation(r, ctx);
  if (r.chance(0.06)) c.add(['STARTTLS'], 'STARTTLS', ['OK'], { syncAfter: true });
  for (let i = r.few(); i > 0; i--) {
    r.weighted<() => void>([
      [3, () => c.add(['CAPABILITY'], 'CAPABILITY', ['OK'])],
      [2, () => c.add(['NOOP'], 'NOOP', ['OK'])],
      [1, () => c.add(['ID NIL'], 'ID', ['OK'])],
      [1, () => wrongState(c)],
    ])();
  }
  if (r.chance(0.05)) {
    c.add(['LOGOUT'], 'LOGOUT before login', ['OK'], { syncAfter: true });
    return c.segments;
  }
  login(c);
  if (r.chance(0.85)) {
    c.add(['CREATE ', astring(r, c.root)], 'CREATE own mailbox', ['OK']);
    c.own.set(c.root, { uids: [], deleted: new Set(), uidNext: 1 });
    for (
      let i = r.weighted([
        [2, 0],
        [4, 1],
        [2, 3],
        [1, 6],
      ]);
      i > 0;
      i--
    ) {
      const body = randomMessage(r, r.chance(0.8) ? 0 : r.int(1000, 20_000));
      const flags = r.chance(0.4) ? ` (${flagList(r).join(' ')})` : '';
      c.add([`APPEND ${c.root}${flags} `, { literal: body, sync: r.chance(0.4) }], `APPEND of ${body.length} bytes`, ['OK']);
      c.addMessages(c.root, 1, flags.includes('\\Deleted'));
    }
    if (r.chance(0.7)) select(c);
  }
  for (let n = r.int(2, 14); n > 0; n--) {
    if (r.chance(0.03)) wrongState(c);
    if (c.selected) selectedCommand(c);
    else authenticatedCommand(c);
  }
  if (r.chance(0.7)) {
    // Leave nothing behind (the run's housekeeping deletes what is left otherwise).
    if (c.selected && r.chance(0.5)) closeMailbox(c);
    const names = [...c.own.keys()].sort((a, b) => b.length - a.length);
    for (const name of names) c.add(['DELETE ', astring(r, name)], 'DELETE own mailbox', ['OK']);
    c.own.clear();
    c.selected = null;
  }
  if (r.chance(0.8)) c.add(['LOGOUT'], 'LOGOUT', ['OK'], { syncAfter: true });
  return c.segments;
}
