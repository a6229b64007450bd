/**
 * APPEND (RFC 3501 6.3.11) with UIDPLUS's APPENDUID (RFC 4315) and MULTIAPPEND-style
 * several messages in one command (RFC 3502). The message literals were streamed into
 * MessageSinks by the session while they arrived; here they are committed in one delivery
 * each, charged to the account's quota like mail delivered over SMTP.
 */
import { randomBytes } from 'node:crypto';
import type { MessageSink } from '../../mail/message-sink.js';
import type { BlobRef } from '../../store/store.js';
import { ImapNo } from '../errors.js';
import { BadArgs, flagsOf, parseDateTime } from '../proto/args.js';
import { accountOf, AUTHENTICATED, type Command } from './context.js';

interface AppendMessage {
  flags: string[];
  date: Date;
  sink: MessageSink;
}

export const APPEND_COMMANDS: Record<string, Command> = {
  APPEND: {
    states: AUTHENTICATED,
    async run(ctx) {
      const { session, args } = ctx;
      const sinks = session.takeAppendBodies();
      let blobs: BlobRef[] = [];
      try {
        const name = args.mailbox();
        const messages: AppendMessage[] = [];
        while (!args.done) {
          const flags = args.optionalList();
          let date = new Date();
          const next = args.peek();
          if (next?.type === 'string') date = parseDateTime(args.astring('date-time'));
          const body = args.token('message literal');
          if (body.type !== 'streamed') throw new BadArgs('APPEND needs the message as a literal');
          const sink = sinks[messages.length];
          if (!sink) throw new BadArgs('APPEND message missing');
          messages.push({ flags: flags ? flagsOf(flags).filter((f) => f.toLowerCase() !== '\\recent') : [], date, sink });
        }
        if (messages.length === 0) throw new BadArgs('APPEND needs a message');
        if (messages.some((m) => m.sink.length === 0)) throw new BadArgs('Empty message');
        const account = accountOf(ctx);
        const mailbox = await session.deps.store.mailboxes.get(account.id, name);
        if (!mailbox) throw new ImapNo('TRYCREATE', `Mailbox ${name} does not exist`);
        blobs = await Promise.all(messages.map((m) => m.sink.finish()));
        const uids: number[] = [];
        for (const [i, m] of messages.entries()) {
          const [outcome] = await session.deps.store.mailboxes.deliver({
            ternId: randomBytes(9).toString('base64url'),
            blob: blobs[i]!,
            envelopeFrom: '',
            recipients: [{ accountId: account.id, prefix: Buffer.alloc(0), mailbox: name, flags: m.flags }],
            internalDate: m.date,
            atomic: true,
          });
          if (outcome?.status === 'over-quota') throw new ImapNo('OVERQUOTA', 'Quota exceeded');
          if (outcome?.status !== 'stored') throw new ImapNo('TRYCREATE', `Mailbox ${name} does not exist`);
          uids.push(outcome.uid);
          // The structure is at hand: a client's first FETCH ENVELOPE/BODYSTRUCTURE of it then reads no stored one.
          const structure = m.sink.structure;
          if (structure) session.deps.rendered.add(blobs[i]!.hash, structure);
        }
        return `[APPENDUID ${mailbox.uidValidity} ${uids.join(',')}] APPEND completed`;
      } finally {
        for (const s of sinks) s.abort();
      }
    },
  },
};
