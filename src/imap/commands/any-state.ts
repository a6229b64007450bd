/** CAPABILITY, NOOP, LOGOUT, ID (RFC 2971), ENABLE (RFC 5161), NAMESPACE (RFC 2342). */
import { BadArgs } from '../proto/args.js';
import { nstring } from '../proto/format.js';
import { ANY, AUTHENTICATED, type Command } from './context.js';

const VERSION = '0.1.0';

export const ANY_STATE_COMMANDS: Record<string, Command> = {
  CAPABILITY: {
    states: ANY,
    async run({ session, args }) {
      args.end();
      session.untagged(`CAPABILITY ${session.capabilities()}`);
    },
  },
  NOOP: {
    states: ANY,
    async run({ session, args }) {
      args.end();
      await session.syncSelected({ expunges: true, force: true });
    },
  },
  LOGOUT: {
    states: ANY,
    async run({ session, args }) {
      args.end();
      session.untagged('BYE Logging out');
      session.logout();
    },
  },
  ID: {
    states: ANY,
    async run({ session, args }) {
      const t = args.token('ID parameters');
      if (t.type === 'list' && t.items.length > 60) throw new BadArgs('Too many ID parameters');
      if (t.type !== 'list' && !(t.type === 'atom' && t.value.toUpperCase() === 'NIL')) throw new BadArgs('ID takes a list or NIL');
      args.end();
      session.untagged(`ID (${['name', 'Tern', 'version', VERSION, 'vendor', 'Tern'].map((v) => nstring(v)).join(' ')})`);
    },
  },
  ENABLE: {
    states: AUTHENTICATED,
    async run({ session, args }) {
      const turnedOn: string[] = [];
      if (args.done) throw new BadArgs('ENABLE needs at least one capability');
      while (!args.done) {
        const name = args.atom('capability').toUpperCase();
        if (name === 'CONDSTORE' || name === 'QRESYNC') {
          for (const n of name === 'QRESYNC' ? (['CONDSTORE', 'QRESYNC'] as const) : (['CONDSTORE'] as const)) {
            if (!session.enabled.has(n)) {
              session.enabled.add(n);
              turnedOn.push(n);
            }
          }
        }
      }
      session.untagged(`ENABLED${turnedOn.map((n) => ` ${n}`).join('')}`);
    },
  },
  NAMESPACE: {
    states: AUTHENTICATED,
    async run({ session, args }) {
      args.end();
      session.untagged('NAMESPACE (("" "/")) NIL NIL');
    },
  },
};
