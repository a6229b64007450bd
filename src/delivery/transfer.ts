/**
 * What Maildir and mbox imports share: progress reporting, and a batcher that stores
 * imported messages as ordinary deliveries (content-addressed body, parsed structure,
 * quota counters), many per commit. Imported mail is not "received": no webhooks, no
 * trace headers, the body exactly as the source had it (line ends made CRLF).
 */
import { randomBytes } from 'node:crypto';
import { ConflictError, UserError } from '../errors.js';
import { ByteBudget } from '../mail/byte-budget.js';
import { MessageSink } from '../mail/message-sink.js';
import type { Account, BlobRef, NewDelivery, Store } from '../store/store.js';

/** Where an import or export reports how it goes (the CLI draws a bar or prints lines; other callers may ignore it). */
export interface TransferProgress {
  /** How many messages there are to do, once known. */
  total(messages: number): void;
  /** One more message done, of `bytes`. */
  advance(bytes: number): void;
  /** Something worth telling (a mailbox that kept its own uids, a message refused). */
  note(line: string): void;
}

export const quietProgress: TransferProgress = { total: () => undefined, advance: () => undefined, note: () => undefined };

/** What one import or export did, per mailbox and in all. */
export interface TransferSummary {
  account: string;
  messages: number;
  bytes: number;
  /** Messages not stored (over quota, unreadable). */
  failed: number;
  mailboxes: Array<{ name: string; messages: number; uidValidity: number; keptUids: boolean }>;
  notes: string[];
}

export function newSummary(account: string): TransferSummary {
  return { account, messages: 0, bytes: 0, failed: 0, mailboxes: [], notes: [] };
}

export async function accountOf(store: Store, address: string): Promise<Account> {
  const account = await store.directory.getAccount(address.toLowerCase());
  if (!account) throw new UserError(`account ${address} does not exist`);
  return account;
}

/** Messages and bytes per commit: enough to share fsyncs, little enough to hold in memory. */
const BATCH_MESSAGES = 50;
const BATCH_BYTES = 8 * 1024 * 1024;

export interface ImportedMessage {
  chunks: AsyncIterable<Buffer>;
  flags: string[];
  internalDate: Date;
  envelopeFrom: string;
  /** The source uid to keep (only when the mailbox was readied with keepUids). */
  uid?: number;
  /** For notes: where the message came from. */
  source: string;
}

/** Stores imported messages into one mailbox, many per commit, through the store's delivery. */
export class ImportBatcher {
  private pending: Array<{ blob: BlobRef; m: ImportedMessage }> = [];
  private bytes = 0;
  private readonly budget = new ByteBudget(256 * 1024 * 1024);
  stored = 0;

  constructor(
    private readonly store: Store,
    private readonly account: Account,
    private readonly mailbox: string,
    private readonly summary: TransferSummary,
    private readonly progress: TransferProgress,
  ) {}

  async add(m: ImportedMessage): Promise<void> {
    const sink = new MessageSink(this.store.blobs, this.budget);
    let blob: BlobRef;
    try {
      for await (const chunk of m.chunks) {
        sink.write(chunk);
        await sink.writable();
      }
      blob = await sink.finish();
    } catch (err) {
      sink.abort();
      this.fail(m, `cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      return;
    }
    if (blob.size === 0) {
      this.fail(m, 'it is empty');
      return;
    }
    this.pending.push({ blob, m });
    this.bytes += blob.size;
    if (this.pending.length >= BATCH_MESSAGES || this.bytes >= BATCH_BYTES) await this.flush();
  }

  async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.bytes = 0;
    if (batch.length === 0) return;
    const deliveries: NewDelivery[] = batch.map(({ blob, m }) => ({
      ternId: randomBytes(9).toString('base64url'),
      blob,
      envelopeFrom: m.envelopeFrom,
      recipients: [{ accountId: this.account.id, prefix: Buffer.alloc(0), mailbox: this.mailbox, flags: m.flags, uid: m.uid }],
      internalDate: m.internalDate,
      atomic: true,
    }));
    const results = await this.store.mailboxes.deliverTogether(deliveries);
    for (const [i, first] of results.entries()) {
      const { blob, m } = batch[i]!;
      let r = first;
      // Mail that arrived meanwhile took the uid: the message keeps its place in the mailbox, with a new uid.
      if (r.status === 'rejected' && r.reason instanceof ConflictError && m.uid !== undefined) {
        const d = deliveries[i]!;
        r = await this.store.mailboxes.deliver({ ...d, recipients: [{ ...d.recipients[0]!, uid: undefined }] }).then(
          (value) => ({ status: 'fulfilled' as const, value }),
          (reason: unknown) => ({ status: 'rejected' as const, reason }),
        );
        if (r.status === 'fulfilled') this.progress.note(`${m.source}: uid ${m.uid} was taken by mail that arrived during the import; it got a new uid`);
      }
      if (r.status === 'rejected') {
        const err = r.reason as Error;
        if (!(err instanceof UserError)) throw err;
        this.fail(m, err.message);
      } else if (r.value[0]?.status !== 'stored') this.fail(m, r.value[0]?.status === 'over-quota' ? 'over quota' : 'not stored');
      else {
        this.stored++;
        this.summary.messages++;
        this.summary.bytes += blob.size;
        this.progress.advance(blob.size);
      }
    }
  }

  private fail(m: ImportedMessage, why: string): void {
    this.summary.failed++;
    const line = `${m.source}: not imported: ${why}`;
    this.summary.notes.push(line);
    this.progress.note(line);
    this.progress.advance(0);
  }
}
