/**
 * IDLE (RFC 2177): after "+ idling", changes to the selected mailbox are pushed as they are
 * committed (the store's watch) and, for changes made by other processes, looked for every
 * POLL_MS; the command ends when the client sends DONE.
 */
import { ANY, type Command } from './context.js';
import { NO_ANSWER } from './auth.js';

const POLL_MS = 30_000;

export const IDLE_COMMANDS: Record<string, Command> = {
  IDLE: {
    states: ANY.filter((s) => s !== 'not-authenticated'),
    async run({ session, args, tag }) {
      args.end();
      session.send('+ idling');
      await session.syncSelected({ expunges: true, force: true });
      const line = session.readLine();
      for (;;) {
        const change = session.mailboxChange();
        let timer: NodeJS.Timeout | undefined;
        const poll = new Promise<'poll'>((resolve) => (timer = setTimeout(() => resolve('poll'), POLL_MS)));
        const result = await Promise.race([line, change.promise.then(() => 'change' as const), poll]);
        clearTimeout(timer);
        change.cancel();
        if (result === 'change' || result === 'poll') {
          await session.syncSelected({ expunges: true, force: true });
          await session.flush();
          continue;
        }
        if (result === null) return NO_ANSWER;
        if (result.toUpperCase() !== 'DONE') {
          session.send(`${tag} BAD Expected DONE`);
          return NO_ANSWER;
        }
        return 'IDLE terminated';
      }
    },
  },
};
