/**
 * Builds the Store's parts (directory, mailboxes, blobs, queue) on top of a backend engine that
 * can run the shared reads and write operations. Both backends use this; they differ
 * only in how reads run (a reader thread, a pool) and how operations are committed.
 */
import { randomUUID } from 'node:crypto';
import { NotFoundError, UserError } from '../../errors.js';
import type { BlobStore, DeliveryOutcome, DirectoryStore, MailboxStore, NewDelivery, QueueStore, Store, WebhookStore } from '../store.js';
import { CHUNK_SIZE, type ReadName, type Reads } from './reads.js';
import type { OpArgs, OpName, OpResult } from './writes.js';
import { parseStoredStructure } from '../../mail/mime/index.js';
import { parseStoredBlob } from './backfill-structures.js';

export interface StoreEngine {
  readonly kind: Store['kind'];
  read<K extends ReadName>(name: K, ...args: Parameters<Reads[K]>): Promise<Awaited<ReturnType<Reads[K]>>>;
  /**
   * Commits one operation (group commit). `bulk` work (staging chunks) never delays the
   * others; operations submitted in one event-loop turn with the same `group` commit in
   * one transaction.
   */
  write<K extends OpName>(op: K, args: OpArgs<K>, options?: { bulk?: boolean; group?: number }): Promise<OpResult<K>>;
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

/** Bytes [start, end) of a message: its prefix, then its blob's chunks (all CHUNK_SIZE but the last), reading only the chunks in range. */
async function* messageRange(engine: StoreEngine, messageId: number, start: number, end: number): AsyncGenerator<Buffer> {
  const parts = await engine.read('messageParts', messageId);
  if (!parts) throw new NotFoundError(`message ${messageId} does not exist`);
  const prefixLength = parts.prefix.length;
  if (start < prefixLength) yield parts.prefix.subarray(start, Math.min(end, prefixLength));
  if (end <= prefixLength) return;
  const from = Math.max(0, start - prefixLength);
  const to = end - prefixLength;
  const layout = await engine.read('blobLayout', parts.hash);
  if (!layout) throw new NotFoundError(`blob ${parts.hash} does not exist`);
  if ('data' in layout) {
    if (from < layout.data.length) yield layout.data.subarray(from, Math.min(to, layout.data.length));
    return;
  }
  for (let seq = Math.floor(from / CHUNK_SIZE); seq < layout.chunks && seq * CHUNK_SIZE < to; seq++) {
    const chunk = await engine.read('blobChunk', layout.upload, seq);
    const base = seq * CHUNK_SIZE;
    yield chunk.subarray(Math.max(0, from - base), Math.min(chunk.length, to - base));
  }
}

export function createStore(engine: StoreEngine): Store {
  const watchers = new Map<number, Set<() => void>>();
  const queueWatchers = new Set<() => void>();
  /** Tells the queue's watchers (delivery workers) that entries may be due now. */
  const queued = <T>(result: T): T => {
    for (const w of queueWatchers) w();
    return result;
  };
  const webhookWatchers = new Set<() => void>();
  /** Tells the webhook dispatchers that POSTs may be owed now. */
  const owed = <T>(result: T): T => {
    for (const w of webhookWatchers) w();
    return result;
  };
  /** Tells the watchers of each mailbox a committed write changed (IMAP sessions). */
  const changed = <T>(result: T, mailboxIds: number[]): T => {
    for (const id of new Set(mailboxIds)) for (const w of watchers.get(id) ?? []) w();
    return result;
  };
  let groups = 0;
  async function deliverOne(delivery: NewDelivery, group?: number): Promise<DeliveryOutcome[]> {
    if (delivery.recipients.length === 0 && !delivery.outbound?.domains.length) throw new UserError('a delivery needs at least one recipient');
    const outcomes = await engine.write('deliver', delivery, { group });
    if (delivery.outbound?.domains.length) queued(undefined);
    if (delivery.received) owed(undefined);
    return changed(
      outcomes,
      outcomes.flatMap((o) => (o.status === 'stored' ? [o.mailboxId] : [])),
    );
  }
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
    setAdmin: (address, isAdmin) => engine.write('setAdmin', { address, isAdmin }),
    deleteAccount: (address) => engine.write('deleteAccount', { address }),
    addAlias: (address, target) => engine.write('addAlias', { address, target }),
    listAliases: () => engine.read('listAliases'),
    aliasTargets: (address) => engine.read('aliasTargets', address),
    deleteAlias: (address, target) => engine.write('deleteAlias', { address, target }),
    addDkimKey: (key) => engine.write('addDkimKey', key),
    addApiKey: (key) => engine.write('addApiKey', key),
    apiKey: (id) => engine.read('apiKey', id),
    listApiKeys: (domain) => engine.read('listApiKeys', domain),
    revokeApiKey: (id) => engine.write('revokeApiKey', { id }),
    addSuppressions: (entries) => engine.write('addSuppressions', { entries, now: Date.now() }),
    deleteSuppression: (address) => engine.write('deleteSuppression', { address }),
    listSuppressions: (page) => engine.read('listSuppressions', page),
    suppressed: (addresses) => engine.read('suppressed', addresses),
    touchApiKey: (id, at) => engine.write('touchApiKey', { id, at: at.getTime() }),
    addBan: (address, reason, until) => engine.write('addBan', { address, reason, until: until.getTime(), now: Date.now() }),
    deleteBan: (address) => engine.write('deleteBan', { address, now: Date.now() }),
    listBans: (now) => engine.read('listBans', now.getTime()),
    addReport: (r) => engine.write('addReport', { ...r, begin: r.begin.getTime(), end: r.end.getTime(), now: Date.now() }),
    listReports: (filter) => engine.read('listReports', filter),
    recordDmarc: (r) => engine.write('recordDmarc', r),
    dmarcDays: () => engine.read('dmarcDays'),
    takeDmarcDay: (day) => engine.write('takeDmarcDay', { day }),
    greylist: (triplet, o) => engine.write('greylist', { triplet, now: o.now.getTime(), delayMs: o.delayMs, retryMs: o.retryMs, keepMs: o.keepMs }),
    claimIdempotency: (keyId, idemKey, requestHash, expiredBefore) =>
      engine.write('claimIdempotency', { keyId, idemKey, requestHash, expiredBefore: expiredBefore.getTime(), now: Date.now() }),
    finishIdempotency: (keyId, idemKey, status, response) => engine.write('finishIdempotency', { keyId, idemKey, status, response }),
    dropIdempotency: (keyId, idemKey) => engine.write('dropIdempotency', { keyId, idemKey }),
    purgeIdempotency: (before) => engine.write('purgeIdempotency', { before: before.getTime() }),
    dkimKeys: (domain) => engine.read('dkimKeys', domain),
    activateDkimKey: (domain, selector, retireAt) => engine.write('activateDkimKey', { domain, selector, retireAt: retireAt.getTime() }),
    deleteDkimKey: (domain, selector) => engine.write('deleteDkimKey', { domain, selector }),
    getSetting: (key) => engine.read('getSetting', key),
    listSettings: (prefix) => engine.read('listSettings', prefix),
    deleteSetting: (key) => engine.write('deleteSetting', { key }),
    setSetting: (key, value) => engine.write('setSetting', { key, value }),
    initSetting: (key, value) => engine.write('initSetting', { key, value }),
    addToSetting: (key, by) => engine.write('addToSetting', { key, by }),
  };

  const mailboxes: MailboxStore = {
    list: (accountId) => engine.read('listMailboxes', accountId),
    get: (accountId, name) => engine.read('getMailbox', accountId, name),
    create: (accountId, name, specialUse = null) => engine.write('createMailbox', { accountId, name, specialUse }),
    delete: async (accountId, name) => {
      const mailbox = await engine.read('getMailbox', accountId, name);
      await engine.write('deleteMailbox', { accountId, name });
      changed(undefined, mailbox ? [mailbox.id] : []);
    },
    subscribe: (accountId, name) => engine.write('subscribe', { accountId, name }),
    unsubscribe: (accountId, name) => engine.write('unsubscribe', { accountId, name }),
    subscriptions: (accountId) => engine.read('subscriptions', accountId),
    deliver: (delivery) => deliverOne(delivery),
    deliverTogether: (deliveries) => {
      const group = ++groups;
      return Promise.allSettled(deliveries.map((d) => deliverOne(d, group)));
    },
    messages: (mailboxId) => engine.read('messages', mailboxId),
    messagesOf: (address, name = 'INBOX') => engine.read('messagesOf', address, name),
    setFlags: async (mailboxId, uids, mode, flags) => changed((await engine.write('setFlags', { mailboxId, uids, mode, flags })).changes, [mailboxId]),
    updateFlags: async (mailboxId, uids, mode, flags, unchangedSince) =>
      changed(await engine.write('setFlags', { mailboxId, uids, mode, flags, unchangedSince }), [mailboxId]),
    expunge: async (mailboxId, uids) => changed(await engine.write('expunge', { mailboxId, uids }), [mailboxId]),
    copy: async (mailboxId, uids, targetMailboxId, move = false) =>
      changed(await engine.write('copy', { mailboxId, uids, targetMailboxId, move }), move ? [mailboxId, targetMailboxId] : [targetMailboxId]),
    rename: async (accountId, from, to) => {
      const inbox = from === 'INBOX' ? await engine.read('getMailbox', accountId, 'INBOX') : null;
      await engine.write('renameMailbox', { accountId, from, to });
      changed(undefined, inbox ? [inbox.id] : []);
    },
    uids: (mailboxId) => engine.read('uids', mailboxId),
    fetch: (mailboxId, uids, want) => engine.read('fetchMessages', mailboxId, uids, want),
    changedSince: (mailboxId, since) => engine.read('changedSince', mailboxId, since),
    firstUnseen: (mailboxId) => engine.read('firstUnseen', mailboxId),
    deletedUids: (mailboxId) => engine.read('deletedUids', mailboxId),
    readRange: (messageId, start, end) => messageRange(engine, messageId, start, end),
    watch: (mailboxId, listener) => {
      const set = watchers.get(mailboxId) ?? new Set();
      watchers.set(mailboxId, set.add(listener));
      return () => {
        set.delete(listener);
        if (set.size === 0 && watchers.get(mailboxId) === set) watchers.delete(mailboxId);
      };
    },
    expungedSince: (mailboxId, sinceModseq) => engine.read('expungedSince', mailboxId, sinceModseq),
    findByTernId: (ternId) => engine.read('findByTernId', ternId),
    prepareImport: (accountId, name, source) => engine.write('prepareImport', { accountId, name, ...source }),
    finishImport: (mailboxId, uidNext) => engine.write('finishImport', { mailboxId, uidNext }),
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
    async *staged(ref) {
      if ('data' in ref) {
        yield ref.data;
        return;
      }
      for (let seq = 0; seq * CHUNK_SIZE < ref.size; seq++) yield await engine.read('blobChunk', ref.upload, seq);
    },
    async structure(hash) {
      const stored = await engine.read('blobStructure', hash);
      if (!stored) return null;
      if (stored.structure !== null) return { structure: parseStoredStructure(stored.structure), text: stored.text ?? '' };
      const parsed = await parseStoredBlob(engine, hash); // not backfilled yet
      return parsed && { structure: { ...parsed, text: '' }, text: parsed.text };
    },
  };

  const now = () => Date.now();
  const queue: QueueStore = {
    claim: (owner, o) =>
      engine.write('claimQueue', { owner, limit: o.limit, leaseMs: o.leaseMs, now: (o.now ?? new Date()).getTime(), skipDomains: o.skipDomains }),
    settle: async (id, results, retryAt, suppress = []) =>
      owed(await engine.write('settleQueue', { id, results, retryAt: retryAt?.getTime() ?? null, suppress, now: now() })),
    bounced: (id) => engine.write('bouncedQueue', { id, now: now() }),
    postpone: (id, until) => engine.write('postponeQueue', { id, until: until.getTime() }),
    list: (filter, page) => engine.read('listQueue', filter, page),
    count: (filter) => engine.read('countQueue', filter),
    get: (id) => engine.read('getQueueEntry', id),
    retry: async (filter) => queued(await engine.write('retryQueue', { filter, now: now() })),
    delete: (filter) => engine.write('deleteQueue', { filter, now: now() }),
    hold: (filter) => engine.write('holdQueue', { filter, now: now() }),
    release: async (filter) => queued(await engine.write('releaseQueue', { filter, now: now() })),
    async *read(id) {
      const parts = await engine.read('queueParts', id);
      if (!parts) throw new NotFoundError(`queue entry ${id} does not exist`);
      if (parts.prefix.length > 0) yield parts.prefix;
      yield* blobChunks(engine, parts.hash);
    },
    events: (query) => engine.read('queueEvents', query),
    traceSearch: (query) => engine.read('traceSearch', query),
    countByTernId: (ternId) => engine.read('countQueueByTernId', ternId),
    watch: (listener) => {
      queueWatchers.add(listener);
      return () => queueWatchers.delete(listener);
    },
  };

  const webhooks: WebhookStore = {
    add: (hook) => engine.write('addWebhook', { ...hook, now: now() }),
    get: (id) => engine.read('webhook', id),
    list: (domain) => engine.read('listWebhooks', domain),
    update: (id, change) => engine.write('updateWebhook', { id, change }),
    delete: (id) => engine.write('deleteWebhook', { id }),
    enqueue: async (webhookId, event, payload) => owed(await engine.write('enqueueWebhook', { webhookId, event, payload, now: now() })),
    claim: (o) => engine.write('claimWebhooks', { limit: o.limit, leaseMs: o.leaseMs, now: (o.now ?? new Date()).getTime() }),
    settle: (id, r) => engine.write('settleWebhook', { id, ...r, retryAt: r.retryAt?.getTime() ?? null, now: now() }),
    deliveries: (webhookId, page) => engine.read('webhookDeliveries', webhookId, page),
    receivedMessage: (messageId) => engine.read('receivedMessage', messageId),
    purge: (before) => engine.write('purgeWebhooks', { before: before.getTime() }),
    watch: (listener) => {
      webhookWatchers.add(listener);
      return () => webhookWatchers.delete(listener);
    },
  };

  return {
    kind: engine.kind,
    webhooks,
    directory,
    mailboxes,
    blobs,
    queue,
    stats: () => engine.read('stats'),
    checkIntegrity: () => engine.read('checkIntegrity'),
    commitSettings: () => engine.commitSettings(),
    close: () => engine.close(),
  };
}
