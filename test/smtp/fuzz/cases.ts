/**
 * One fuzz case: a protocol (SMTP or LMTP port), a valid or mutated conversation, and
 * the exact writes that send it — one command at a time, pipelined in groups, or cut at
 * random byte positions (down to single bytes). Derived only from the run seed and the
 * case number, so any case can be regenerated and printed.
 */
import { validConversation } from './conversation.js';
import type { Mode } from './framing.js';
import { mutate } from './mutations.js';
import { Prng } from '../../fuzz/prng.js';
import { showExpect, type ConversationContext, type Expect, type Limits, type Segment } from './segments.js';
import { showBytes } from '../../fuzz/show-bytes.js';

export type Step =
  | { kind: 'write'; bytes: Buffer }
  | { kind: 'sync' }
  | { kind: 'pause'; ms: number }
  /** Stop reading replies for `ms` (the writes that follow go on). */
  | { kind: 'stall'; ms: number };

export interface FuzzCase {
  runSeed: string;
  index: number;
  mode: Mode;
  kind: 'valid' | 'mutated';
  sending: 'one at a time' | 'pipelined' | 'random splits' | 'byte by byte';
  segments: Segment[];
  mutations: string[];
  /** Expected reply of each unit after the greeting (valid conversations only). */
  expectations: Array<Expect | undefined> | null;
  steps: Step[];
}

export interface CaseSite {
  limits: Limits;
  hostname: string;
  domain: string;
}

/** Concatenated segments, cut into 1–`maxPieces` writes at random positions. */
function splitWrites(r: Prng, bytes: Buffer, maxPieces: number): Step[] {
  if (bytes.length <= 1 || maxPieces <= 1) return [{ kind: 'write', bytes }];
  const cuts = new Set<number>([0, bytes.length]);
  for (let i = r.int(0, maxPieces - 1); i > 0; i--) cuts.add(r.int(1, bytes.length - 1));
  const sorted = [...cuts].sort((a, b) => a - b);
  const steps: Step[] = [];
  for (let i = 0; i + 1 < sorted.length; i++) {
    steps.push({ kind: 'write', bytes: bytes.subarray(sorted[i], sorted[i + 1]) });
    // A short pause now and then makes the pieces arrive as separate TCP segments.
    if (i + 2 < sorted.length && r.chance(0.15)) steps.push({ kind: 'pause', ms: r.int(0, 3) });
  }
  return steps;
}

function planSteps(r: Prng, c: Pick<FuzzCase, 'sending' | 'segments'>): Step[] {
  const steps: Step[] = [];
  if (c.sending === 'one at a time') {
    for (const s of c.segments) {
      if (s.stallReading) steps.push({ kind: 'stall', ms: s.stallReading });
      steps.push(...splitWrites(r, s.bytes, r.chance(0.1) ? 3 : 1), { kind: 'sync' });
    }
    return steps;
  }
  // Pipelined: groups up to each point where a client must wait (RFC 2920 3.1).
  let group: Segment[] = [];
  const flushGroup = () => {
    if (group.length === 0) return;
    const bytes = Buffer.concat(group.map((s) => s.bytes));
    const stall = Math.max(0, ...group.map((s) => s.stallReading ?? 0));
    if (stall) steps.push({ kind: 'stall', ms: stall });
    group = [];
    if (c.sending === 'byte by byte' && bytes.length <= 400) {
      for (let i = 0; i < bytes.length; i++) steps.push({ kind: 'write', bytes: bytes.subarray(i, i + 1) });
    } else {
      steps.push(...splitWrites(r, bytes, c.sending === 'pipelined' ? 2 : 8));
    }
    steps.push({ kind: 'sync' });
  };
  for (const s of c.segments) {
    group.push(s);
    if (s.syncAfter || r.chance(0.1)) flushGroup();
  }
  flushGroup();
  return steps;
}

export function generateCase(runSeed: string, index: number, site: CaseSite): FuzzCase {
  const r = Prng.forCase(runSeed, index);
  const mode: Mode = r.chance(0.6) ? 'smtp' : 'lmtp';
  const ctx: ConversationContext = { mode, ...site };
  const segments = validConversation(r, ctx);
  const kind = r.chance(0.4) ? 'valid' : 'mutated';
  const mutations = kind === 'mutated' ? mutate(r, segments, ctx) : [];
  const sending = r.weighted<FuzzCase['sending']>([
    [3, 'one at a time'],
    [4, 'pipelined'],
    [2, 'random splits'],
    [1, 'byte by byte'],
  ]);
  const expectations = kind === 'valid' ? segments.map((s) => s.expect) : null;
  const c = { runSeed, index, mode, kind, sending, segments, mutations, expectations } as const;
  return { ...c, steps: planSteps(r, c) };
}

/** The case as people read it: what was sent, segment by segment. */
export function describeCase(c: FuzzCase): string {
  const out = [`case ${c.index} of seed ${JSON.stringify(c.runSeed)}: ${c.mode.toUpperCase()} port, ${c.kind}, sent ${c.sending}`];
  if (c.mutations.length) out.push(`  mutations: ${c.mutations.join('; ')}`);
  for (const [i, s] of c.segments.entries()) {
    out.push(`  [${i}] ${s.label}${s.expect ? ` → expect ${showExpect(s.expect)}` : ''}: ${showBytes(s.bytes, 160)}`);
  }
  return out.join('\n');
}
