// Drives Postfix's smtp-source load generator against one SMTP or LMTP endpoint and
// turns its wall-clock time into messages per second (what the client sees).
import { runCommand } from './util.js';

export const SMTP_SOURCE = '/usr/sbin/smtp-source';

export interface LoadSpec {
  sessions: number;
  messages: number;
  size: number;
  from: string;
  to: string;
  timeoutMs: number;
}

export interface LoadResult {
  command: string;
  ok: boolean;
  seconds: number;
  perSecond: number;
  error?: string;
}

/** The argument list for one run; -L switches the dialogue to LMTP. */
export function smtpSourceArgs(spec: LoadSpec, port: number, lmtp: boolean): string[] {
  const args = ['-s', String(spec.sessions), '-m', String(spec.messages), '-l', String(spec.size)];
  if (lmtp) args.unshift('-L');
  args.push('-f', spec.from, '-t', spec.to, `127.0.0.1:${port}`);
  return args;
}

/** Runs smtp-source once; a failed or timed-out run is reported, not thrown. */
export async function runLoad(spec: LoadSpec, port: number, lmtp: boolean): Promise<LoadResult> {
  const args = smtpSourceArgs(spec, port, lmtp);
  const command = `smtp-source ${args.join(' ')}`;
  const result = await runCommand(SMTP_SOURCE, args, { timeoutMs: spec.timeoutMs });
  const ok = result.code === 0 && !result.timedOut;
  const perSecond = ok ? spec.messages / result.seconds : 0;
  const error = ok
    ? undefined
    : result.timedOut
      ? `timed out after ${spec.timeoutMs / 1000} s`
      : `exit ${result.code}: ${result.stderr.trim().split('\n').slice(-3).join(' | ')}`;
  return { command, ok, seconds: result.seconds, perSecond, error };
}
