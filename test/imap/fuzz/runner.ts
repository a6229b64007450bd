/**
 * Runs many IMAP fuzz cases against one running server through the shared loop
 * (test/fuzz/runner.ts). Before the run, each account's INBOX gets a few varied messages to
 * fetch and search; during it, housekeeping deletes the mailboxes (and subscriptions) that
 * finished cases left behind, so a long run does not pile up thousands of them.
 */
import { Prng } from '../../fuzz/prng.js';
import { runLoop, type FuzzSummary, type RunLoopOptions } from '../../fuzz/runner.js';
import { RawImap } from '../support.js';
import { generateCase, type ImapCaseSite } from './cases.js';
import { randomMessage } from './messages.js';
import { formatImapFailure, runImapCase, type ImapCaseTarget } from './run-case.js';

export interface ImapFuzzOptions extends ImapCaseTarget, Omit<RunLoopOptions, 'runCase' | 'housekeeping'> {
  seed: string;
  site: ImapCaseSite;
  /** Cases between two housekeeping rounds. */
  housekeepingEvery?: number;
}

async function loggedIn(port: number, account: string, password: string): Promise<RawImap> {
  const imap = await RawImap.open(port);
  const answer = await imap.command('h0', `LOGIN ${account} ${password}`);
  if (!/^h0 OK/m.test(answer)) throw new Error(`housekeeping login as ${account} failed: ${answer.trim()}`);
  return imap;
}

/** Appends a dozen varied messages to each account's INBOX. */
export async function fillInboxes(port: number, site: ImapCaseSite, seed: string): Promise<void> {
  const r = new Prng(`${seed}#inbox`);
  for (const account of site.accounts) {
    const imap = await loggedIn(port, account, site.password);
    for (let i = 0; i < 12; i++) {
      const body = randomMessage(r, i % 4 === 0 ? r.int(2000, 30_000) : 0);
      imap.write(Buffer.concat([Buffer.from(`s${i} APPEND INBOX${i % 3 === 0 ? ' (\\Seen $Label)' : ''} {${body.length}+}\r\n`), body, Buffer.from('\r\n')]));
      const answer = await imap.until(new RegExp(`^s${i} (OK|NO|BAD)[^\\r\\n]*\\r\\n`, 'm'));
      if (!new RegExp(`^s${i} OK`, 'm').test(answer)) throw new Error(`APPEND to ${account}'s INBOX failed: ${answer.trim()}`);
    }
    imap.close();
  }
}

/** Mailbox names in LIST/LSUB answers (atoms, quoted strings and literals; read as latin1). */
export function listedNames(text: string): string[] {
  const names: string[] = [];
  const head = /\* (?:LIST|LSUB) \([^)]*\) (?:"(?:[^"\\]|\\.)*"|NIL) /g;
  for (let m = head.exec(text); m; m = head.exec(text)) {
    let i = m.index + m[0].length;
    if (text[i] === '"') {
      let name = '';
      for (i++; i < text.length && text[i] !== '"'; i++) name += text[i] === '\\' ? text[++i] : text[i];
      names.push(name);
    } else if (text[i] === '{') {
      const lit = /^\{(\d+)\}\r\n/.exec(text.slice(i, i + 20));
      if (!lit) continue;
      const start = i + lit[0].length;
      names.push(text.slice(start, start + Number(lit[1])));
    } else names.push(text.slice(i, text.indexOf('\r\n', i)));
  }
  return names;
}

/** Deletes and unsubscribes the mailboxes of cases numbered below `lowestRunning` (names c<case>…). */
async function sweep(port: number, site: ImapCaseSite, lowestRunning: number): Promise<string[]> {
  const stale = (name: string) => {
    const m = /^c(\d+)(?:$|[/-])/.exec(name);
    return m !== null && Number(m[1]) < lowestRunning;
  };
  const problems: string[] = [];
  for (const account of site.accounts) {
    let imap: RawImap | null = null;
    try {
      imap = await loggedIn(port, account, site.password);
      const listed = listedNames(await imap.command('h1', 'LIST "" *')).filter(stale);
      const subscribed = listedNames(await imap.command('h2', 'LSUB "" *')).filter(stale);
      const literal = (name: string) => `{${Buffer.byteLength(name, 'latin1')}+}\r\n${name}`;
      const commands = [
        ...listed.sort((a, b) => b.length - a.length).map((n, i) => `d${i} DELETE ${literal(n)}\r\n`),
        ...subscribed.map((n, i) => `u${i} UNSUBSCRIBE ${literal(n)}\r\n`),
      ];
      if (commands.length) imap.write(Buffer.from(commands.join(''), 'latin1'));
      const done = await imap.command('h3', 'NOOP');
      if (!/^h3 OK/m.test(done)) problems.push(`NOOP after the sweep of ${account}: ${done.slice(-300)}`);
    } catch (err) {
      problems.push(`sweep of ${account}'s mailboxes failed: ${(err as Error).message.slice(0, 500)}`);
    } finally {
      imap?.close();
    }
  }
  return problems;
}

export async function runImapFuzz(opts: ImapFuzzOptions): Promise<FuzzSummary> {
  return runLoop({
    ...opts,
    housekeeping: { every: opts.housekeepingEvery ?? 250, run: (lowest) => sweep(opts.imapPort, opts.site, lowest) },
    async runCase(index) {
      const c = generateCase(opts.seed, index, opts.site);
      const outcome = await runImapCase(c, opts);
      const counts: Record<string, number> = {
        [`imap ${c.kind}`]: 1,
        [`sent ${c.sending}`]: 1,
        responses: outcome.responses,
        'messages appended': outcome.appended,
      };
      if (outcome.tls) counts['TLS upgrades'] = 1;
      if (outcome.bye) counts['sessions ended with BYE'] = 1;
      return {
        problems: outcome.problems,
        label: `imap ${c.kind}`,
        counts,
        greetingMs: outcome.greetingMs,
        format: (problems) => formatImapFailure(c, { ...outcome, problems }),
      };
    },
  });
}
