/**
 * Builds the Store's parts (directory, mailboxes, blobs) on top of a backend engine that
 * can run the shared reads and write operations. Both backends use this; they differ
 * only in how reads run (a reader thread, a pool) and how operations are committed.
 */
import { randomUUID } from 'node:crypto';
import { NotFoundError, UserError } from '../../errors.js';
import type { BlobStore, DirectoryStore, MailboxStore, Store } from '../store.js';
import type { ReadName, Reads } from './reads.js';
import type { OpArgs, OpName, OpResult } from './writes.js';

export interface StoreEngine {
  readonly kind: Store['kind'];
  read<K extends ReadName>(name: K, ...args: Parameters<Reads[K]>): Promise<Awaited<ReturnType<Reads[K]>>>;
  /** Commits one operation (group commit). `bulk` work (staging chunks) never delays the others. */
  write<K extends OpName>(op: K, args: OpArgs<K>, options?: { bulk?: boolean }): Promise<OpResult<K>>;
  commitSettings(): Promise<Record<string, string>>;
  close(): Promise<void>;
}

async function* blobChunks(engine: StoreEngine, hash: string): AsyncGenerator<Buffer> {
  const layout = await engine.read('blobLayout', hash);
  if (!layout) throw new NotFoundError(`blob ${hash} does not exist`);
  if ('data' in layout) {
    yield layout.data;
    return;
  }
  for (let seq = 0; seq < layout.chunks; seq++) yield await engine.read('blobChunk', layout.upload, seq);
}

export function createStore(engine: StoreEngine): Store {
  const directory: DirectoryStore = {
    addDomain: (name) => engine.write('addDomain', { name }),
    listDomains: () => engine.read('listDomains'),
    isLocalDomain: (name) => engine.read('isLocalDomain', name),
    deleteDomain: (name) => engine.write('deleteDomain', { name }),
    addAccount: (account) => engine.write('addAccount', account),
    listAccounts: (domain) => engine.read('listAccounts', domain),
    getAccount: (address) => engine.read('getAccount', address),
    lookup: (address) => engine.read('lookup', address),
    getPasswordHash: (address) => engine.read('getPasswordHash', address),
    setPasswordHash: (address, passwordHash) => engine.write('setPasswordHash', { address, passwordHash }),
    setQuota: (address, quotaBytes) => engine.write('setQuota', { address, quotaBytes }),
    deleteAccount: (address) => engine.write('deleteAccount', { address }),
    addAlias: (address, target) => engine.write('addAlias', { address, target }),
    listAliases: () => engine.read('listAliases'),
    aliasTargets: (address) => engine.read('aliasTargets', address),
    deleteAlias: (address, target) => engine.write('deleteAlias', { address, target }),
    getSetting: (key) => engine.read('getSetting', key),
    setSetting: (key, value) => engine.write('setSetting', { key, value }),
    initSetting: (key, value) => engine.write('initSetting', { key, value }),
  };

  const mailboxes: MailboxStore = {
    list: (accountId) => engine.read('listMailboxes', accountId),
    get: (accountId, name) => engine.read('getMailbox', accountId, name),
    create: (accountId, name, specialUse = null) => engine.write('createMailbox', { accountId, name, specialUse }),
    delete: (accountId, name) => engine.write('deleteMailbox', { accountId, name }),
    subscribe: (accountId, name) => engine.write('subscribe', { accountId, name }),
    unsubscribe: (accountId, name) => engine.write('unsubscribe', { accountId, name }),
    subscriptions: (accountId) => engine.read('subscriptions', accountId),
    deliver: (delivery) =>
      delivery.recipients.length === 0 ? Promise.reject(new UserError('a delivery needs at least one recipient')) : engine.write('deliver', delivery),
    messages: (mailboxId) => engine.read('messages', mailboxId),
    messagesOf: (address, name = 'INBOX') => engine.read('messagesOf', address, name),
    setFlags: (mailboxId, uids, mode, flags) => engine.write('setFlags', { mailboxId, uids, mode, flags }),
    expunge: (mailboxId, uids) => engine.write('expunge', { mailboxId, uids }),
    copy: (mailboxId, uids, targetMailboxId, move = false) => engine.write('copy', { mailboxId, uids, targetMailboxId, move }),
    expungedSince: (mailboxId, sinceModseq) => engine.read('expungedSince', mailboxId, sinceModseq),
    findByTernId: (ternId) => engine.read('findByTernId', ternId),
    async *read(messageId) {
      const parts = await engine.read('messageParts', messageId);
      if (!parts) throw new NotFoundError(`message ${messageId} does not exist`);
      if (parts.prefix.length > 0) yield parts.prefix;
      yield* blobChunks(engine, parts.hash);
    },
  };

  const blobs: BlobStore = {
    newUpload: () => randomUUID(),
    stage: (upload, seq, data) => engine.write('stage', { upload, seq, data }, { bulk: true }),
    discard: (upload) => engine.write('discard', { upload }, { bulk: true }),
    async read(hash) {
      return (await engine.read('blobLayout', hash)) ? blobChunks(engine, hash) : null;
    },
  };

  return {
    kind: engine.kind,
    directory,
    mailboxes,
    blobs,
    stats: () => engine.read('stats'),
    checkIntegrity: () => engine.read('checkIntegrity'),
    commitSettings: () => engine.commitSettings(),
    close: () => engine.close(),
  };
}
