/**
 * Runs one IMAP fuzz case over a real socket and checks it: every response well formed
 * (response-check.ts); every answer that is due arrives within the timeout, in the order
 * the commands were sent, and none arrives that is not due (framing.ts); no EXPUNGE while a
 * FETCH, STORE or SEARCH runs (RFC 3501 7.4.1); the server closes only after BYE (or a
 * STARTTLS handshake it had to refuse); and valid conversations get the answers expected.
 */
import { FuzzConnection } from '../../fuzz/connection.js';
import { Transcript } from '../../fuzz/transcript.js';
import { describeCase, type ImapFuzzCase } from './cases.js';
import { describeUnit, ImapFramingModel } from './framing.js';
import { ResponseReader, type ImapResponse } from './response-check.js';

export interface ImapCaseTarget {
  imapPort: number;
  maxLine: number;
  /** Longest silence allowed while an answer is due, and for connects, writes and TLS. */
  timeoutMs: number;
}

export interface ImapCaseOutcome {
  problems: string[];
  transcript: string[];
  greetingMs: number | null;
  responses: number;
  tls: boolean;
  bye: boolean;
  /** APPENDs answered OK (with APPENDUID). */
  appended: number;
}

const NO_EXPUNGE_DURING = new Set(['FETCH', 'STORE', 'SEARCH']);

export async function runImapCase(c: ImapFuzzCase, target: ImapCaseTarget): Promise<ImapCaseOutcome> {
  const model = new ImapFramingModel(target.maxLine);
  const reader = new ResponseReader();
  const outcome: ImapCaseOutcome = { problems: [], transcript: [], greetingMs: null, responses: 0, tls: false, bye: false, appended: 0 };
  const problem = (text: string) => outcome.problems.push(text);
  const transcript = new Transcript(80);
  const answered = new Map<string, number>();
  const marks = new Map<number, number>();
  const refused = new Set<number>();

  let waiters: Array<() => void> = [];
  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  /** Resolves on the next response, close or TLS change, or after `ms`; true if woken. */
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
      problem(`TLS handshake after an OK to STARTTLS failed: ${result.reason}`);
      clientClosing = true;
      conn.destroy();
    }
    wake();
  };

  const onResponse = (resp: ImapResponse) => {
    outcome.responses++;
    if (outcome.greetingMs === null) outcome.greetingMs = Date.now() - started;
    model.due(); // frames what was sent so far
    const unit = model.currentUnit;
    if (resp.kind === 'untagged' && (resp.keyword === 'EXPUNGE' || (resp.keyword === 'VANISHED' && !resp.text.startsWith('(EARLIER)')))) {
      if (unit && !unit.answered && NO_EXPUNGE_DURING.has(unit.verb)) problem(`${resp.keyword} sent during ${unit.verb} (RFC 3501 7.4.1): ${resp.show}`);
    }
    if (resp.kind === 'untagged' && resp.keyword === 'BYE') outcome.bye = true;
    if (resp.kind === 'tagged') {
      answered.set(resp.tag, (answered.get(resp.tag) ?? 0) + 1);
      if (resp.status === 'OK' && resp.text.startsWith('[APPENDUID ')) outcome.appended++;
      const expected = c.expectations?.get(resp.tag);
      if (expected && !expected.expect.includes(resp.status))
        problem(`expected ${expected.expect.join('|')} for ${JSON.stringify(resp.tag)} [${expected.label}], got ${resp.show}`);
    }
    for (const p of model.onResponse(resp)) problem(p);
    if (model.phase === 'tls' && !upgrading) upgrading = upgrade();
  };

  const onData = (chunk: Buffer) => {
    transcript.bytes('S', chunk);
    for (const resp of reader.push(chunk)) onResponse(resp);
    wake();
  };

  const onClose = () => {
    if (!clientClosing) {
      transcript.event('server closed the connection');
      const unfinished = reader.unfinished();
      if (unfinished) problem(`connection closed after ${unfinished}`);
      const due = model.due();
      if (model.bye || model.phase === 'closing' || model.tainted || model.startTlsWithPipelinedBytes()) {
        // Deliberate: after BYE; or clear text pipelined after STARTTLS reached the server's TLS layer, which
        // aborted the connection (the reset can discard answers not yet read).
      } else if (due) {
        problem(`server closed the connection while ${due === 'greeting' ? 'the greeting' : `the answer to ${describeUnit(due)}`} was due`);
      } else {
        problem('server closed the connection without BYE');
      }
    }
    wake();
  };

  let conn: FuzzConnection;
  try {
    conn = await FuzzConnection.open(target.imapPort, onData, onClose, target.timeoutMs);
  } catch (err) {
    problem(`cannot connect: ${(err as Error).message}`);
    return outcome;
  }

  /** Waits until the server owes nothing; records a hang when an answer stays due past the timeout. */
  const settle = async (): Promise<boolean> => {
    for (;;) {
      if (conn.closed || outcome.problems.length > 0) return false;
      if (upgrading) {
        await upgrading;
        upgrading = null;
        continue;
      }
      const due = model.due();
      if (!due && model.phase !== 'closing' && !model.bye) return true;
      if (!(await nextEvent(target.timeoutMs))) {
        const what =
          due === 'greeting' ? 'no greeting' : due ? `no answer to ${describeUnit(due)}` : `connection still open after ${model.bye ? 'BYE' : 'LOGOUT'}`;
        problem(`${what} within ${target.timeoutMs} ms (hang)`);
        return false;
      }
    }
  };

  try {
    await settle(); // the greeting
    for (const step of c.steps) {
      if (upgrading) await settle();
      if (conn.closed || outcome.problems.length > 0 || model.phase === 'closing' || model.bye) break;
      if (step.kind === 'sync') {
        if (!(await settle())) break;
      } else if (step.kind === 'mark') {
        marks.set(step.command, answered.get(step.tag) ?? 0);
      } else if (step.kind === 'continuation') {
        if (!(await settle())) break;
        if ((answered.get(step.tag) ?? 0) > (marks.get(step.command) ?? 0)) {
          refused.add(step.command);
          transcript.event(`${step.tag} was answered instead of "+": what follows of it is not sent`);
        }
      } else if (step.kind === 'stall') {
        conn.stallReading(step.ms);
        transcript.event(`client stops reading for ${step.ms} ms`);
      } else if (step.kind === 'pause') {
        await new Promise((r) => setTimeout(r, step.ms));
      } else {
        if (step.skipIfRefused !== undefined && refused.has(step.skipIfRefused)) continue;
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
  return outcome;
}

export function formatImapFailure(c: ImapFuzzCase, outcome: ImapCaseOutcome): string {
  return [
    `FAILED ${describeCase(c)}`,
    '  problems:',
    ...outcome.problems.slice(0, 10).map((p) => `    - ${p}`),
    '  transcript (last lines):',
    ...outcome.transcript.map((t) => `    ${t}`),
    `  reproduce: FUZZ_SEED=${JSON.stringify(c.runSeed)} FUZZ_CASE=${c.index} npm run fuzz -- --protocol imap`,
  ].join('\n');
}
