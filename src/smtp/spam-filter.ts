/**
 * The optional spam-filter hook: a stranger's message is shown to a running rspamd
 * (`--rspamd URL`, its normal worker, HTTP protocol v2: POST /checkv2 with the envelope
 * in headers) and its action is followed:
 * - `reject`: refused with 550 5.7.1;
 * - `soft reject`: 451 4.7.1, try again later;
 * - `add header`, `rewrite subject`: delivered to Junk;
 * - `greylist`, `no action`: delivered.
 * Every copy gets `X-Spam-Score` and `X-Spam-Action` (and `X-Spam: Yes` when it goes to
 * Junk). With no rspamd configured nothing changes; an rspamd that fails or does not
 * answer within the timeout lets the message through, logged.
 */
import { Readable } from 'node:stream';
import { metrics } from '../metrics.js';

export type SpamAction = 'accept' | 'junk' | 'reject' | 'defer';

export interface SpamVerdict {
  action: SpamAction;
  /** rspamd's own action name, its score and the score it rejects at. */
  rspamd: { action: string; score: number; required: number };
  /** Header lines (CRLF) to store with each copy. */
  header: string;
}

const ACTIONS: Record<string, SpamAction> = {
  reject: 'reject',
  'soft reject': 'defer',
  'add header': 'junk',
  'rewrite subject': 'junk',
  greylist: 'accept',
  'no action': 'accept',
};

export class SpamFilter {
  private readonly url: string;

  constructor(
    base: string,
    private readonly timeoutMs = 10_000,
  ) {
    this.url = new URL('/checkv2', base).toString();
  }

  /** rspamd's verdict, or null when it could not give one (the message goes through). */
  async check(o: {
    message: AsyncIterable<Buffer>;
    ip: string;
    helo: string;
    from: string;
    rcpts: string[];
    hostname: string;
    ternId: string;
    user?: string;
  }): Promise<SpamVerdict | null> {
    const headers: Record<string, string> = { ip: o.ip, helo: o.helo, from: o.from, hostname: o.hostname, 'queue-id': o.ternId, rcpt: o.rcpts.join(',') };
    if (o.user) headers.user = o.user;
    try {
      const res = await fetch(this.url, {
        method: 'POST',
        headers,
        body: Readable.toWeb(Readable.from(o.message)) as ReadableStream,
        duplex: 'half',
        signal: AbortSignal.timeout(this.timeoutMs),
      } as RequestInit);
      if (!res.ok) throw new Error(`rspamd answered ${res.status}`);
      const r = (await res.json()) as { action?: string; score?: number; required_score?: number };
      const name = r.action ?? 'no action';
      const action = ACTIONS[name] ?? 'accept';
      const score = Number(r.score ?? 0);
      const required = Number(r.required_score ?? 0);
      metrics.spamVerdicts.inc({ action: name });
      const header = `X-Spam-Score: ${score.toFixed(2)} / ${required.toFixed(2)}\r\nX-Spam-Action: ${name}\r\n${action === 'junk' ? 'X-Spam: Yes\r\n' : ''}`;
      return { action, rspamd: { action: name, score, required }, header };
    } catch (err) {
      metrics.spamVerdicts.inc({ action: 'error' });
      throw new Error(`rspamd: ${(err as Error).name === 'TimeoutError' ? `no answer in ${this.timeoutMs} ms` : (err as Error).message}`);
    }
  }
}
