/**
 * One IMAP fuzz case: an account, a valid or mutated conversation, and the exact steps
 * that send it — one command at a time, pipelined in groups, cut at random byte positions
 * (down to single bytes) with short pauses — waiting for "+" where a real client must
 * (synchronizing literals, IDLE, AUTHENTICATE) and leaving out a literal the server
 * refused. Derived only from the run seed and the case number, so any case can be
 * regenerated and printed.
 */
import { DEFAULT_READER_LIMITS } from '../../../src/imap/proto/command-reader.js';
import { Prng } from '../../fuzz/prng.js';
import { showBytes } from '../../fuzz/show-bytes.js';
import { validConversation } from './conversation.js';
import { mutate } from './mutations.js';
import type { Segment, Status } from './segments.js';

export type Step =
  /** Bytes to send; with `skipIfRefused`, only if that command was not answered while the client waited for "+". */
  | { kind: 'write'; bytes: Buffer; skipIfRefused?: number }
  /** Wait until the server owes nothing. */
  | { kind: 'sync' }
  /** Notes how often `tag` has been answered, before the command's first byte is sent. */
  | { kind: 'mark'; command: number; tag: string }
  /** Wait for "+" or the answer to `command` (sync); an answer means its literal or response is not to be sent. */
  | { kind: 'continuation'; command: number; tag: string }
  | { kind: 'pause'; ms: number }
  /** Stop reading answers for `ms` (the writes that follow go on). */
  | { kind: 'stall'; ms: number };

export interface ImapCaseSite {
  accounts: string[];
  password: string;
  maxMessageSize: number;
}

export interface ImapFuzzCase {
  runSeed: string;
  index: number;
  account: string;
  kind: 'valid' | 'mutated';
  sending: 'one at a time' | 'pipelined' | 'random splits' | 'byte by byte';
  segments: Segment[];
  mutations: string[];
  /** Valid conversations: the answers each tag may get, and what the command was. */
  expectations: Map<string, { expect: Status[]; label: string }> | null;
  steps: Step[];
}

/** The server's command line limit, which the framing model and the mutations need. */
export const MAX_LINE = DEFAULT_READER_LIMITS.maxLine;

/** Concatenated bytes cut into 1–`maxPieces` writes at random positions, with a short pause now and then. */
function splitWrites(r: Prng, bytes: Buffer, maxPieces: number, skipIfRefused?: number): Step[] {
  const write = (b: Buffer): Step => ({ kind: 'write', bytes: b, ...(skipIfRefused !== undefined ? { skipIfRefused } : {}) });
  if (bytes.length <= 1 || maxPieces <= 1) return [write(bytes)];
  const cuts = new Set<number>([0, bytes.length]);
  for (let i = r.int(0, maxPieces - 1); i > 0; i--) cuts.add(r.int(1, bytes.length - 1));
  const sorted = [...cuts].sort((a, b) => a - b);
  const steps: Step[] = [];
  for (let i = 0; i + 1 < sorted.length; i++) {
    steps.push(write(bytes.subarray(sorted[i], sorted[i + 1])));
    if (i + 2 < sorted.length && r.chance(0.15)) steps.push({ kind: 'pause', ms: r.int(0, 3) });
  }
  return steps;
}

function planSteps(r: Prng, c: Pick<ImapFuzzCase, 'sending' | 'segments'>): Step[] {
  const steps: Step[] = [];
  const pieces = c.sending === 'one at a time' ? 1 : c.sending === 'pipelined' ? 2 : 8;
  const writes = (bytes: Buffer, skip?: number) => {
    if (c.sending === 'byte by byte' && bytes.length <= 400) {
      for (let i = 0; i < bytes.length; i++)
        steps.push({ kind: 'write', bytes: bytes.subarray(i, i + 1), ...(skip !== undefined ? { skipIfRefused: skip } : {}) });
    } else steps.push(...splitWrites(r, bytes, c.sending === 'one at a time' && r.chance(0.1) ? 3 : pieces, skip));
  };
  let group: Segment[] = [];
  const flush = (end: Segment | null) => {
    if (group.length === 0) return;
    const stall = Math.max(0, ...group.map((s) => s.stallReading ?? 0));
    if (stall) steps.push({ kind: 'stall', ms: stall });
    for (const s of group) if (!s.continuation) steps.push({ kind: 'mark', command: s.command, tag: s.tag });
    // The bytes a client sends only after "+" go in writes of their own, left out if the command was answered instead.
    let rest = group;
    const head = group[0]!;
    if (head.continuation) {
      if (head.delayMs) steps.push({ kind: 'pause', ms: head.delayMs });
      writes(head.bytes, head.command);
      rest = group.slice(1);
    }
    if (rest.length) writes(Buffer.concat(rest.map((s) => s.bytes)));
    steps.push(end?.awaitContinuation ? { kind: 'continuation', command: end.command, tag: end.tag } : { kind: 'sync' });
    group = [];
  };
  for (const s of c.segments) {
    group.push(s);
    if (c.sending === 'one at a time' || s.awaitContinuation || s.syncAfter || r.chance(0.1)) flush(s);
  }
  flush(null);
  return steps;
}

export function generateCase(runSeed: string, index: number, site: ImapCaseSite): ImapFuzzCase {
  const r = Prng.forCase(runSeed, index);
  const account = r.pick(site.accounts);
  const segments = validConversation(r, { index, account, password: site.password, maxMessageSize: site.maxMessageSize });
  const kind = r.chance(0.4) ? 'valid' : 'mutated';
  const expectations = new Map<string, { expect: Status[]; label: string }>();
  for (const s of segments) if (s.expect) expectations.set(s.tag, { expect: s.expect, label: s.label });
  const mutations = kind === 'mutated' ? mutate(r, segments, { root: `c${index}`, maxMessageSize: site.maxMessageSize, maxLine: MAX_LINE }) : [];
  const sending = r.weighted<ImapFuzzCase['sending']>([
    [4, 'one at a time'],
    [4, 'pipelined'],
    [2, 'random splits'],
    [1, 'byte by byte'],
  ]);
  const c = { runSeed, index, account, kind, sending, segments, mutations, expectations: kind === 'valid' ? expectations : null } as const;
  return { ...c, steps: planSteps(r, c) };
}

/** The case as people read it: what was sent, segment by segment. */
export function describeCase(c: ImapFuzzCase): string {
  const out = [`case ${c.index} of seed ${JSON.stringify(c.runSeed)}: IMAP as ${c.account}, ${c.kind}, sent ${c.sending}`];
  if (c.mutations.length) out.push(`  mutations: ${c.mutations.join('; ')}`);
  for (const [i, s] of c.segments.entries()) {
    const flags = [s.awaitContinuation ? 'waits for "+"' : '', s.continuation ? 'after "+"' : '', s.expect ? `expect ${s.expect.join('|')}` : '']
      .filter(Boolean)
      .join(', ');
    out.push(`  [${i}] ${s.label}${flags ? ` (${flags})` : ''}: ${showBytes(s.bytes, 160)}`);
  }
  return out.join('\n');
}
