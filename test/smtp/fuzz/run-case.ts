/**
 * Runs one fuzz case over a real socket and checks it: every reply line well formed
 * (reply-check.ts), every reply that is due arrives within the timeout and none arrives
 * that is not due (framing.ts), the server closes only after 221/421 (or a STARTTLS
 * handshake it had to refuse), and valid conversations get the codes they expect.
 */
import { describeCase, type FuzzCase } from './cases.js';
import { FuzzConnection } from '../../fuzz/connection.js';
import { FramingModel, type Unit } from './framing.js';
import { ReplyReader, type ServerReply } from './reply-check.js';
import { expectMatches, showExpect } from './segments.js';
import { Transcript } from '../../fuzz/transcript.js';

export interface CaseTarget {
  smtpPort: number;
  lmtpPort: number;
  maxLineLength: number;
  /** Longest silence allowed while a reply is due, and for connects, writes and TLS. */
  timeoutMs: number;
}

export interface CaseOutcome {
  problems: string[];
  transcript: string[];
  /** Connect to greeting, in ms (null without a greeting). */
  greetingMs: number | null;
  replies: number;
  tls: boolean;
  /** The server ended the session (221 or 421). */
  serverClosed: boolean;
  /** Messages acknowledged with 250 at the end of DATA or BDAT LAST (per reply). */
  delivered: number;
}

function describeUnit(u: Unit): string {
  if (u.kind === 'greeting') return 'the greeting';
  if (u.kind === 'data') return `the end of message data (unit ${u.index})`;
  if (u.kind === 'chunk') return `BDAT${u.last ? ' LAST' : ''} (unit ${u.index})`;
  return `${u.verb ? JSON.stringify(u.verb) : 'an over-long line'} (unit ${u.index})`;
}

const showReply = (r: ServerReply) => `${r.code} ${r.lines.join(' / ')}`.slice(0, 200);

export async function runCase(c: FuzzCase, target: CaseTarget): Promise<CaseOutcome> {
  const model = new FramingModel(c.mode, target.maxLineLength);
  const reader = new ReplyReader();
  const outcome: CaseOutcome = { problems: [], transcript: [], greetingMs: null, replies: 0, tls: false, serverClosed: false, delivered: 0 };
  const problem = (text: string) => outcome.problems.push(text);
  const transcript = new Transcript();

  let waiters: Array<() => void> = [];
  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  /** Resolves on the next reply, close or TLS change, or after `ms`; true if woken. */
  const nextEvent = (ms: number) =>
    new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });

  let clientClosing = false;
  let upgrading: Promise<void> | null = null;
  const started = Date.now();

  const upgrade = async (): Promise<void> => {
    transcript.event('TLS handshake');
    const result = await conn.startTls(target.timeoutMs);
    if (result.ok) {
      outcome.tls = true;
      model.tlsStarted();
      transcript.event('TLS established');
    } else if (model.tainted || conn.closed) {
      // Bytes pipelined after STARTTLS may reach the server's TLS layer and fail the handshake: that is its right.
      transcript.event(`TLS failed: ${result.reason}`);
      clientClosing = !conn.closed;
      conn.destroy();
    } else {
      problem(`TLS handshake after "220" to STARTTLS failed: ${result.reason}`);
      clientClosing = true;
      conn.destroy();
    }
    wake();
  };

  const onReply = (reply: ServerReply) => {
    outcome.replies++;
    const unit = model.due();
    if (unit?.kind === 'greeting') outcome.greetingMs = Date.now() - started;
    if (!model.onReply(reply)) {
      const why = model.tainted ? ' (it answers a command pipelined after STARTTLS: command injection)' : '';
      problem(`unsolicited reply ${showReply(reply)}${why}`);
      return;
    }
    if (!unit) return;
    const expect = unit.kind === 'greeting' ? { codes: [220] } : c.expectations?.[unit.index];
    if (expect && !expectMatches(expect, reply.code, reply.lines.join('\n'))) {
      const label = unit.kind === 'greeting' ? 'greeting' : (c.segments[unit.index]?.label ?? '?');
      problem(`expected ${showExpect(expect)} for ${describeUnit(unit)} [${label}], got ${showReply(reply)}`);
    }
    if (reply.code === 250 && (unit.kind === 'data' || (unit.kind === 'chunk' && unit.last))) outcome.delivered++;
    if (model.phaseName === 'tls' && !upgrading) upgrading = upgrade();
  };

  const onData = (chunk: Buffer) => {
    transcript.bytes('S', chunk);
    for (const reply of reader.push(chunk)) onReply(reply);
    wake();
  };

  const onClose = () => {
    if (!clientClosing) {
      outcome.serverClosed = model.phaseName === 'closing';
      transcript.event('server closed the connection');
      const unfinished = reader.unfinished();
      if (unfinished) problem(`connection closed after ${unfinished}`);
      const due = model.due();
      const spoiltTls = (model.phaseName === 'tls' && model.tainted) || model.startTlsWithPipelinedBytes();
      if (model.phaseName === 'closing' || spoiltTls) {
        // Deliberate: after 221/421; or clear text pipelined after STARTTLS reached the server's TLS
        // layer, which aborted the connection (the reset can discard replies not yet read).
      } else if (due) {
        problem(`server closed the connection while a reply to ${describeUnit(due)} was due`);
      } else {
        problem('server closed the connection without a 221 or 421 reply');
      }
    }
    wake();
  };

  let conn: FuzzConnection;
  try {
    const port = c.mode === 'smtp' ? target.smtpPort : target.lmtpPort;
    conn = await FuzzConnection.open(port, onData, onClose, target.timeoutMs);
  } catch (err) {
    problem(`cannot connect: ${(err as Error).message}`);
    return outcome;
  }

  /** Waits until the server owes no reply; records a hang when one stays due past the timeout. */
  const settle = async (): Promise<boolean> => {
    for (;;) {
      if (conn.closed || outcome.problems.length > 0) return false;
      if (upgrading) {
        await upgrading;
        upgrading = null;
        continue;
      }
      const due = model.due();
      if (!due && model.phaseName !== 'closing') return true;
      if (!(await nextEvent(target.timeoutMs))) {
        const what = due ? `no reply to ${describeUnit(due)}` : 'connection still open after 221/421';
        problem(`${what} within ${target.timeoutMs} ms (hang)`);
        return false;
      }
    }
  };

  try {
    await settle(); // the greeting (RFC 5321 3.1: a client waits for it)
    for (const step of c.steps) {
      if (upgrading) await settle();
      if (conn.closed || outcome.problems.length > 0 || model.phaseName === 'closing') break;
      if (step.kind === 'sync') {
        if (!(await settle())) break;
      } else if (step.kind === 'stall') {
        conn.stallReading(step.ms);
        transcript.event(`client stops reading for ${step.ms} ms`);
      } else if (step.kind === 'pause') {
        await new Promise((r) => setTimeout(r, step.ms));
      } else {
        model.feed(step.bytes);
        transcript.bytes('C', step.bytes);
        const written = await conn.write(step.bytes, target.timeoutMs);
        if (written === 'timeout') problem(`server stopped reading: a ${step.bytes.length}-byte write did not complete within ${target.timeoutMs} ms`);
        if (written !== 'written') break;
      }
    }
    await settle();
  } finally {
    outcome.problems.push(...reader.problems);
    clientClosing = true;
    conn.destroy();
    outcome.transcript = transcript.lines();
  }
  if (outcome.greetingMs === null && !outcome.problems.length) problem('no greeting');
  return outcome;
}

export function formatFailure(c: FuzzCase, outcome: CaseOutcome): string {
  return [
    `FAILED ${describeCase(c)}`,
    '  problems:',
    ...outcome.problems.slice(0, 10).map((p) => `    - ${p}`),
    '  transcript (last lines):',
    ...outcome.transcript.map((t) => `    ${t}`),
    `  reproduce: FUZZ_SEED=${JSON.stringify(c.runSeed)} FUZZ_CASE=${c.index} npm run fuzz -- --protocol smtp`,
  ].join('\n');
}
