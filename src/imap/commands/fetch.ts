/**
 * FETCH and UID FETCH (RFC 3501 6.4.5; CONDSTORE CHANGEDSINCE and MODSEQ, QRESYNC
 * VANISHED). Messages are read in pages of 500 with their stored structure and streamed
 * out with back-pressure, so FETCH 1:* on a huge mailbox holds one page at a time. Body
 * sections are byte ranges of the stored message found from the structure; nothing is
 * re-parsed. A non-PEEK body fetch sets \Seen (in a read-write mailbox).
 */
import { findPart, MimeParser, parseStoredStructure, type MessageStructure, type MimePart } from '../../mail/mime/index.js';
import type { MessageRecord } from '../../store/store.js';
import { NotFoundError } from '../../errors.js';
import { BrokenAnswer, ImapNo } from '../errors.js';
import { BadArgs, formatDateTime } from '../proto/args.js';
import { parseFetchItems, parseFetchModifiers, type FetchItem, type Section } from '../proto/fetch-items.js';
import { formatSequenceSet, inSet, parseSequenceSet } from '../proto/sequence-set.js';
import type { Rendered } from '../render/cache.js';
import type { SelectedMailbox } from '../selected.js';
import type { ImapSession } from '../session.js';
import { SELECTED, selectedOf, type Command } from './context.js';
import { resolveTargets } from './targets.js';

const PAGE = 500;
/** Largest header block read to answer HEADER.FIELDS. */
const MAX_HEADER_READ = 1024 * 1024;

type SectionItem = Extract<FetchItem, { kind: 'section' }>;

/** What to send for a body section: a byte range of the message, or bytes already at hand. */
type SectionData = { start: number; end: number } | { bytes: Buffer };

/** A read started ahead of its use: if the command fails before awaiting it, its failure is not an unhandled rejection. */
export function prefetch<T>(read: Promise<T>): Promise<T> {
  read.catch(() => undefined);
  return read;
}

export async function structureOf(session: ImapSession, rec: MessageRecord): Promise<MessageStructure> {
  if (rec.structure) return parseStoredStructure(rec.structure);
  // Not parsed yet (a backfill still running): parse this once from the body, skipping the prefix.
  const parser = new MimeParser();
  for await (const chunk of session.deps.store.mailboxes.readRange(rec.id, rec.prefixLength, rec.size)) parser.write(chunk);
  return parser.end();
}

async function readBytes(session: ImapSession, rec: MessageRecord, start: number, end: number): Promise<Buffer> {
  if (rec.body && rec.prefix) return Buffer.concat([rec.prefix, rec.body]).subarray(start, end);
  const parts: Buffer[] = [];
  for await (const c of session.deps.store.mailboxes.readRange(rec.id, start, end)) parts.push(c);
  return Buffer.concat(parts);
}

/** Keeps (or, with `not`, drops) the header fields named in `names`; the answer ends with the blank line. */
export function filterHeader(header: Buffer, names: string[], not: boolean): Buffer {
  const wanted = new Set(names);
  const text = header.toString('latin1');
  const lines = text.split(/(?<=\n)/);
  const out: string[] = [];
  let keep = false;
  for (const line of lines) {
    if (line === '\r\n' || line === '\n') break;
    if (line[0] !== ' ' && line[0] !== '\t') {
      const colon = line.indexOf(':');
      const name = (colon < 0 ? line : line.slice(0, colon)).trim().toLowerCase();
      keep = wanted.has(name) !== not;
    }
    if (keep) out.push(line);
  }
  return Buffer.from(`${out.join('')}\r\n`, 'latin1');
}

async function sectionData(session: ImapSession, rec: MessageRecord, s: Section, structure: MessageStructure | null): Promise<SectionData> {
  const P = rec.prefixLength;
  let headerRange: [number, number];
  let textRange: [number, number];
  if (s.part.length === 0) {
    if (s.text === null) return { start: 0, end: rec.size };
    headerRange = [0, P + structure!.root.bodyStart];
    textRange = [P + structure!.root.bodyStart, rec.size];
  } else {
    const part = findPart(structure!, s.part);
    if (!part) return { bytes: Buffer.alloc(0) };
    if (s.text === null) return { start: P + part.bodyStart, end: P + part.bodyEnd };
    if (s.text === 'MIME') return { start: P + part.headerStart, end: P + part.bodyStart };
    const inner: MimePart | undefined = part.message?.root;
    if (!inner) return { bytes: Buffer.alloc(0) };
    headerRange = [P + inner.headerStart, P + inner.bodyStart];
    textRange = [P + inner.bodyStart, P + inner.bodyEnd];
  }
  if (s.text === 'TEXT') return { start: textRange[0], end: textRange[1] };
  if (s.text === 'HEADER') return { start: headerRange[0], end: headerRange[1] };
  const header = await readBytes(session, rec, headerRange[0], Math.min(headerRange[1], headerRange[0] + MAX_HEADER_READ));
  return { bytes: filterHeader(header, s.fields, s.text === 'HEADER.FIELDS.NOT') };
}

/** Sections up to this size are read before the message's answer starts; larger ones stream while it is written. */
const READ_AHEAD_LIMIT = 1024 * 1024;

/** One section's answer: its bytes at hand, or a range of the stored message to stream. */
type PreparedSection = { label: string; bytes: Buffer } | { label: string; start: number; end: number };

/** Resolves a section (and its partial range) to bytes read now, or a range to stream when large. */
async function prepareSection(session: ImapSession, rec: MessageRecord, item: SectionItem, structure: MessageStructure | null): Promise<PreparedSection> {
  const data = await sectionData(session, rec, item.section, structure);
  let start = 'bytes' in data ? 0 : data.start;
  let end = 'bytes' in data ? data.bytes.length : data.end;
  if (item.partial) {
    const from = Math.min(start + item.partial.start, end);
    end = Math.min(from + item.partial.length, end);
    start = from;
  }
  if ('bytes' in data) return { label: item.label, bytes: data.bytes.subarray(start, end) };
  if (end - start <= READ_AHEAD_LIMIT) return { label: item.label, bytes: end > start ? await readBytes(session, rec, start, end) : Buffer.alloc(0) };
  return { label: item.label, start, end };
}

/** Writes one prepared section as a literal. A streamed one that cannot be read to its end breaks the answer: the connection is closed. */
async function writeSection(session: ImapSession, rec: MessageRecord, section: PreparedSection): Promise<void> {
  if ('bytes' in section) {
    session.write(`${section.label} {${section.bytes.length}}\r\n`);
    session.write(section.bytes);
    return;
  }
  session.write(`${section.label} {${section.end - section.start}}\r\n`);
  try {
    for await (const chunk of session.deps.store.mailboxes.readRange(rec.id, section.start, section.end)) {
      session.write(chunk);
      await session.flushIfFull();
    }
  } catch (err) {
    throw new BrokenAnswer(`message ${rec.id} could not be read to the end of its literal`, { cause: err });
  }
}

/** Whether the items need the stored structure: for part offsets always, for ENVELOPE/BODY/BODYSTRUCTURE unless already rendered. */
function structureNeeds(items: FetchItem[]): { sections: boolean; rendered: boolean } {
  return {
    sections: items.some((i) => i.kind === 'section' && (i.section.part.length > 0 || i.section.text !== null)),
    rendered: items.some((i) => i.kind === 'ENVELOPE' || i.kind === 'BODY' || i.kind === 'BODYSTRUCTURE'),
  };
}

/** The rendered strings of each record's structure: from the cache, else from the stored structures (read once for all missing). */
async function renderedFor(session: ImapSession, selected: SelectedMailbox, page: MessageRecord[]): Promise<Map<number, Rendered>> {
  const cache = session.deps.rendered;
  const out = new Map<number, Rendered>();
  const missing: MessageRecord[] = [];
  for (const rec of page) {
    const hit = cache.get(rec.hash);
    if (hit) out.set(rec.uid, hit);
    else if (rec.structure !== undefined) out.set(rec.uid, cache.add(rec.hash, await structureOf(session, rec)));
    else missing.push(rec);
  }
  if (missing.length > 0) {
    const withStructure = await session.deps.store.mailboxes.fetch(
      selected.id,
      missing.map((r) => r.uid),
      { structure: true },
    );
    for (const rec of withStructure) out.set(rec.uid, cache.add(rec.hash, await structureOf(session, rec)));
  }
  return out;
}

export async function fetchMessages(
  session: ImapSession,
  selected: SelectedMailbox,
  uids: number[],
  items: FetchItem[],
  opts: { uid: boolean; changedSince: number | null },
) {
  const store = session.deps.store.mailboxes;
  const needs = structureNeeds(items);
  const setsSeen = !selected.readOnly && items.some((i) => i.kind === 'section' && !i.peek);
  const showModseq = items.some((i) => i.kind === 'MODSEQ') || opts.changedSince !== null;
  const showFlags = items.some((i) => i.kind === 'FLAGS');
  let vanished = false;
  const want = { structure: needs.sections, body: items.some((i) => i.kind === 'section') };
  const read = (p: number) => (p < uids.length ? prefetch(store.fetch(selected.id, uids.slice(p, p + PAGE), want)) : null);
  // The next page is read while this one is written (two pages at most in memory).
  let next = read(0);
  for (let p = 0; p < uids.length; p += PAGE) {
    let page = await next!;
    next = read(p + PAGE);
    if (opts.changedSince !== null) page = page.filter((r) => r.modseq > opts.changedSince!);
    const seenNow = new Set<number>();
    if (setsSeen) {
      const unseen = page.filter((r) => !r.flags.includes('\\Seen')).map((r) => r.uid);
      if (unseen.length > 0) {
        const update = await store.updateFlags(selected.id, unseen, 'add', ['\\Seen'], null);
        for (const c of update.changes) {
          selected.noteOwn(c.modseq);
          seenNow.add(c.uid);
        }
        const byUid = new Map(update.changes.map((c) => [c.uid, c]));
        page = page.map((r) => {
          const c = byUid.get(r.uid);
          return c ? { ...r, flags: c.flags, modseq: c.modseq } : r;
        });
      }
    }
    const rendered = needs.rendered ? await renderedFor(session, selected, page) : null;
    for (const rec of page) {
      const seq = selected.seqOf(rec.uid);
      if (seq === 0) continue;
      // Everything that can fail (the message expunged meanwhile) is read before its answer starts.
      let structure: MessageStructure | null = null;
      const sections = new Map<SectionItem, PreparedSection>();
      try {
        structure = needs.sections ? await structureOf(session, rec) : null;
        for (const item of items) if (item.kind === 'section') sections.set(item, await prepareSection(session, rec, item, structure));
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
        vanished = true;
        continue;
      }
      const strings = rendered?.get(rec.uid);
      const parts: string[] = [];
      session.write(`* ${seq} FETCH (`);
      const emit = (text: string) => {
        session.write(parts.length > 0 ? ` ${text}` : text);
        parts.push(text);
      };
      if (opts.uid) emit(`UID ${rec.uid}`);
      for (const item of items) {
        switch (item.kind) {
          case 'UID':
            if (!opts.uid) emit(`UID ${rec.uid}`);
            break;
          case 'FLAGS':
            emit(`FLAGS (${flagsOf(selected, rec).join(' ')})`);
            break;
          case 'INTERNALDATE':
            emit(`INTERNALDATE "${formatDateTime(new Date(rec.internalDate))}"`);
            break;
          case 'RFC822.SIZE':
            emit(`RFC822.SIZE ${rec.size}`);
            break;
          case 'MODSEQ':
            break;
          case 'ENVELOPE':
            if (strings) emit(`ENVELOPE ${strings.envelope}`);
            break;
          case 'BODYSTRUCTURE':
          case 'BODY':
            if (strings) emit(`${item.kind} ${item.kind === 'BODY' ? strings.body : strings.bodystructure}`);
            break;
          case 'section': {
            if (parts.length > 0) session.write(' ');
            parts.push(item.label);
            await writeSection(session, rec, sections.get(item)!);
            break;
          }
        }
      }
      if (seenNow.has(rec.uid) && !showFlags) emit(`FLAGS (${flagsOf(selected, rec).join(' ')})`);
      if (showModseq) emit(`MODSEQ (${rec.modseq})`);
      session.write(')\r\n');
      await session.flushIfFull();
    }
  }
  // RFC 5530: some messages were expunged by another session while this FETCH ran.
  if (vanished) throw new ImapNo('EXPUNGEISSUED', 'Some of the requested messages no longer exist');
}

function flagsOf(selected: SelectedMailbox, rec: MessageRecord): string[] {
  return selected.recent.has(rec.uid) ? [...rec.flags, '\\Recent'] : rec.flags;
}

export const FETCH_COMMANDS: Record<string, Command> = {
  FETCH: {
    states: SELECTED,
    async run(ctx) {
      const { session, args } = ctx;
      const selected = selectedOf(ctx);
      const setText = args.atom('sequence set');
      const items = parseFetchItems(args.token('fetch items'));
      const modifiers = parseFetchModifiers(args.optionalList());
      args.end();
      if (modifiers.vanished && (!ctx.uid || !session.qresync || modifiers.changedSince === null)) {
        throw new BadArgs('VANISHED needs UID FETCH, QRESYNC enabled and CHANGEDSINCE');
      }
      if (modifiers.changedSince !== null || items.some((i) => i.kind === 'MODSEQ')) session.enabled.add('CONDSTORE');
      const set = parseSequenceSet(setText);
      const uids = resolveTargets(selected, set, ctx.uid);
      if (modifiers.vanished) {
        const last = selected.lastUid;
        const gone = (await session.deps.store.mailboxes.expungedSince(selected.id, modifiers.changedSince!))
          .map((e) => e.uid)
          .filter((u) => inSet(set, u, Math.max(last, u)));
        if (gone.length > 0) session.untagged(`VANISHED (EARLIER) ${formatSequenceSet(gone)}`);
      }
      await fetchMessages(session, selected, uids, items, { uid: ctx.uid, changedSince: modifiers.changedSince });
    },
  },
};
