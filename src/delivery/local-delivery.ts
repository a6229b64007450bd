/**
 * Local delivery: commits one accepted message to the INBOX of each resolved account
 * (one blob, one mailbox entry per account) and logs it. Used by SMTP, LMTP and, later,
 * the HTTP API and import, so every path stores and logs mail the same way.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { DeliveredEntry, Store } from '../store/store.js';

export interface LocalDelivery {
  deliver(message: {
    ternId: string;
    blob: Buffer;
    hash: string;
    envelopeFrom: string;
    accountIds: number[];
    recipients: number;
    startedAt: number;
    via: string;
  }): Promise<DeliveredEntry[]>;
}

/** A short unique id for one accepted transaction (logs, Received header, replies). */
export function newTernId(): string {
  return `${Date.now().toString(36)}${randomBytes(6).toString('hex')}`.toUpperCase();
}

export function createLocalDelivery(store: Store, log: Logger): LocalDelivery {
  return {
    async deliver(m) {
      const entries = await store.deliver({
        ternId: m.ternId,
        blob: m.blob,
        hash: m.hash,
        envelopeFrom: m.envelopeFrom,
        accountIds: [...new Set(m.accountIds)],
        internalDate: new Date(),
      });
      log.info(
        { id: m.ternId, from: m.envelopeFrom, rcpts: m.recipients, size: m.blob.length, ms: Date.now() - m.startedAt, via: m.via },
        'message accepted',
      );
      return entries;
    },
  };
}
