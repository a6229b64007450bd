/**
 * The Store contract: everything Tern keeps, in cohesive parts — the directory (domains,
 * accounts, aliases, settings), mailboxes and messages, and content-addressed blobs.
 * and the outbound queue. Protocol code talks to these interfaces only; the backends (sqlite/, postgres/) share
 * their SQL (sql/) and pass one contract suite (test/store/contract.ts).
 *
 * Rules every backend keeps:
 * - Every mutation goes through one write path: typed operations (sql/writes.ts) grouped
 *   into one transaction per commit (group commit). A write resolves only after that
 *   transaction has committed and reached stable storage.
 * - Reads never block the event loop (SQLite reads run on a reader thread).
 * - Counters (per mailbox: messages, unseen, bytes; per account: used bytes) change in the
 *   same transaction as the rows they count, so STATUS and quota checks are O(1).
 * - A blob is stored once per SHA-256 with a reference count; it is removed when its last
 *   reference goes. Large bodies are staged in chunks while they arrive (BlobStore.stage)
 *   so no message is ever held whole in memory.
 * - Addresses and domain names are stored lower-case (see mail/address.ts).
 */
import type { MessageStructure } from '../mail/mime/structure.js';

export interface Domain {
  name: string;
  createdAt: Date;
}

export interface Account {
  id: number;
  address: string;
  isAdmin: boolean;
  /** Mailbox quota in bytes; null means unlimited. */
  quotaBytes: number | null;
  /** Bytes stored in all the account's mailboxes (a maintained counter). */
  usedBytes: number;
  createdAt: Date;
}

export interface NewAccount {
  address: string;
  passwordHash: string;
  isAdmin?: boolean;
  quotaBytes?: number | null;
}

/** One alias row: mail for `address` (a full address, or `@domain` for catch-all) goes to `target`. */
export interface AliasRow {
  address: string;
  target: string;
}

export interface Mailbox {
  id: number;
  accountId: number;
  name: string;
  specialUse: string | null;
  uidValidity: number;
  uidNext: number;
  highestModseq: number;
  messages: number;
  unseen: number;
  bytes: number;
}

/** IMAP system flags (RFC 3501 2.3.2) kept as columns; anything else is a keyword. */
export const SYSTEM_FLAGS = ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'] as const;
export type SystemFlag = (typeof SYSTEM_FLAGS)[number];

/** A body's parsed MIME structure (mail/mime, serialised without its text) and what SEARCH matches, stored with the blob (mail/mime storedForm). */
export interface BlobStructure {
  json: string;
  /** Decoded text, lower-cased. */
  text: string;
  /** Decoded top-level header fields as "name: value" lines, lower-cased. */
  headers: string;
  /** The first Message-ID and Subject as written (message trace; not stored with the blob). */
  messageId?: string | null;
  subject?: string | null;
}

/**
 * Where a message body lives: inline bytes, or chunks staged under an upload id. `structure`
 * is what the MIME parser made of it as it arrived; without one the body is parsed when the
 * store next opens.
 */
export type BlobRef = ({ hash: string; size: number; data: Buffer } | { hash: string; size: number; upload: string }) & { structure?: BlobStructure };

export interface DeliveryRecipient {
  accountId: number;
  /** Per-recipient trace headers (Return-Path, Delivered-To, Received … for <rcpt>) stored before the shared body. */
  prefix: Buffer;
  /** Target mailbox; INBOX when omitted. */
  mailbox?: string;
  /** Flags and keywords to set (APPEND); none for mail delivery. */
  flags?: string[];
  /** Which envelope recipient (RCPT address) led here; an alias gives several accounts one group. */
  group?: number;
  /**
   * The uid to give the message (an import keeping the source's uids, into a mailbox readied
   * by `mailboxes.prepareImport`); it must be at least the mailbox's UIDNEXT, else the delivery
   * fails with ConflictError. Assigned from UIDNEXT when omitted.
   */
  uid?: number;
}

/** A message ready to commit: one shared body, one mailbox entry per recipient. */
export interface NewDelivery {
  /** Tern's id for this transaction (logs, Received header, finding it after an ambiguous commit). */
  ternId: string;
  blob: BlobRef;
  envelopeFrom: string;
  recipients: DeliveryRecipient[];
  internalDate: Date;
  /**
   * True (SMTP, one reply for all): when every account of some group (RCPT address) is over
   * quota, the whole delivery is refused; alias members with room still count. False
   * (LMTP, a reply per recipient): each account on its own.
   */
  atomic: boolean;
  /** Recipients in other domains: queued for delivery in the same transaction (none refused with the local ones). */
  outbound?: OutboundMessage;
  /** Mail that arrived (not an IMAP APPEND): webhooks subscribed to message.received are owed a POST per stored copy. */
  received?: boolean;
}

/** What a delivery queues for other hosts: one queue entry per destination domain. */
export interface OutboundMessage {
  /** Header lines sent before the shared body: DKIM-Signature, Received for this hop, and what submission added. */
  prefix: Buffer;
  domains: Array<{ domain: string; recipients: OutboundRecipient[] }>;
  /** RFC 3461 RET and ENVID from MAIL FROM. */
  dsn?: { ret: 'FULL' | 'HDRS' | null; envid: string | null };
  /** A delivery status notification: when it fails, nothing bounces (never a bounce to a bounce). */
  isBounce?: boolean;
}

/** Whether a recipient's NOTIFY asks for a failure notice (RFC 3461 4.1: FAILURE is the default). */
export const wantsFailureNotice = (notify: string | null | undefined): boolean => !notify || /(^|,)FAILURE(,|$)/i.test(notify);
/** Whether it asks for a delay notice: NOTIFY=DELAY, or no NOTIFY (the default taken as FAILURE,DELAY, as sendmail does). */
export const wantsDelayNotice = (notify: string | null | undefined): boolean => !notify || /(^|,)DELAY(,|$)/i.test(notify);

export interface OutboundRecipient {
  address: string;
  /** RFC 3461 NOTIFY (NEVER, or some of SUCCESS, FAILURE, DELAY); null: the default (FAILURE). */
  notify?: string | null;
  /** RFC 3461 ORCPT as given ("rfc822;user@example.com"). */
  orcpt?: string | null;
}

/** What happened to one recipient of a delivery, in the order they were given. */
export type DeliveryOutcome =
  | { status: 'stored'; accountId: number; mailboxId: number; messageId: number; uid: number; modseq: number }
  | { status: 'over-quota' | 'gone'; accountId: number };

export interface StoredMessage {
  id: number;
  mailboxId: number;
  mailbox: string;
  uid: number;
  modseq: number;
  /** System flags and keywords together, system flags first. */
  flags: string[];
  internalDate: Date;
  /** Prefix plus body. */
  size: number;
  hash: string;
  ternId: string;
  envelopeFrom: string;
}

export interface FlagChange {
  uid: number;
  modseq: number;
  flags: string[];
}

/** A STORE's result: the messages it changed, and those it left alone because they changed after `unchangedSince`. */
export interface FlagUpdate {
  changes: FlagChange[];
  /** Uids not changed because their modseq was above `unchangedSince` (RFC 7162 MODIFIED). */
  modified: number[];
}

/** What a page of messages read for FETCH or SEARCH carries beyond flags, dates and sizes. */
export interface MessageWants {
  /** The stored MIME structure (JSON, see mail/mime), null until parsed. */
  structure?: boolean;
  /** The decoded text for SEARCH BODY/TEXT. */
  text?: boolean;
  /** The per-recipient trace header lines stored before the body. */
  prefix?: boolean;
  /** The decoded top-level header fields ("name: value" lines, lower-cased). */
  headers?: boolean;
  /** The body bytes when the body is stored inline and small (INLINE_READ_LIMIT), so a FETCH of it needs no further read. */
  body?: boolean;
  /**
   * Only messages whose decoded text contains every string in `text` and that have, for
   * each of `headers`, a field of that name whose value contains that string (lower-case;
   * matched in the database as mail/mime's headerHas does). Messages not parsed yet are
   * included too, with `parsed: false`, for the caller to decide.
   */
  matching?: { text: string[]; headers: Array<{ field: string; value: string }> };
}

/** One message as FETCH and SEARCH see it. */
export interface MessageRecord {
  id: number;
  uid: number;
  modseq: number;
  flags: string[];
  /** Epoch milliseconds. */
  internalDate: number;
  /** Prefix plus body. */
  size: number;
  /** Bytes of trace header lines stored before the shared body (offsets in the structure start after them). */
  prefixLength: number;
  hash: string;
  structure?: string | null;
  /** Decoded text, lower-cased (null until parsed). */
  text?: string | null;
  /** Decoded header fields, "name: value" lines, lower-cased (null until parsed). */
  headers?: string | null;
  /** The body (without the prefix) when asked for and small enough; null otherwise. */
  body?: Buffer | null;
  prefix?: Buffer;
  /** With `matching`: false for a message whose body is not parsed yet (it matched nothing in the database). */
  parsed?: boolean;
}

export interface Expunged {
  uid: number;
  modseq: number;
}

export interface StoreStats {
  messages: number;
  blobs: number;
  domains: number;
  accounts: Array<{ address: string; messages: number; usedBytes: number }>;
}

/** The mailboxes every new account gets, with their RFC 6154 special-use attribute. */
export const DEFAULT_MAILBOXES: ReadonlyArray<{ name: string; specialUse: string | null }> = [
  { name: 'INBOX', specialUse: null },
  { name: 'Drafts', specialUse: '\\Drafts' },
  { name: 'Sent', specialUse: '\\Sent' },
  { name: 'Trash', specialUse: '\\Trash' },
  { name: 'Junk', specialUse: '\\Junk' },
  { name: 'Archive', specialUse: '\\Archive' },
];

export type DkimAlgorithm = 'rsa' | 'ed25519';
/** pending: published or about to be, not signing yet; active: signing; retiring: no longer signing, its record kept until retireAt. */
export type DkimKeyState = 'pending' | 'active' | 'retiring';

export type ApiScope = 'send' | 'read' | 'admin';

/** An address mail is not sent to: it bounced hard, or someone put it there. */
export interface Suppression {
  address: string;
  source: 'bounce' | 'manual' | 'import';
  reason: string;
  createdAt: Date;
}

/** One row of a report: DMARC (a source address and what it sent) or TLS-RPT (a policy's successes and failures). */
export type ReportRow =
  | { source: string; count: number; disposition: string; dkim: string; spf: string; headerFrom: string }
  | { policy: string; mx: string[]; success: number; failure: number; failures: Array<{ type: string; ip: string | null; count: number }> };

/** A DMARC aggregate (RFC 7489 7.2) or TLS-RPT (RFC 8460) report received for one of the site's domains. */
export interface Report {
  id: number;
  kind: 'dmarc' | 'tlsrpt';
  domain: string;
  /** The organisation that sent it. */
  reporter: string;
  reportId: string;
  begin: Date;
  end: Date;
  receivedAt: Date;
  rows: ReportRow[];
}

/** A domain's DMARC record as it was published (RFC 7489 6.3), with its aggregate report addresses. */
export interface PublishedDmarc {
  p: string;
  sp: string;
  pct: number;
  adkim: 'r' | 's';
  aspf: 'r' | 's';
  /** mailto: addresses (the `rua` tag), each with its size limit in bytes when the record gives one. */
  rua: Array<{ address: string; maxBytes: number | null }>;
}

/** What Tern saw of strangers' messages with one header From domain from one address (a report's `record`, RFC 7489 appendix C). */
export interface DmarcRow {
  source: string;
  headerFrom: string;
  envelopeFrom: string;
  disposition: 'none' | 'quarantine' | 'reject';
  /** Aligned DKIM and SPF as DMARC evaluated them. */
  dkim: 'pass' | 'fail';
  spf: 'pass' | 'fail';
  /** Why the disposition differs from the published policy: local_policy, sampled_out. */
  reasons: string[];
  dkimResults: Array<{ domain: string; selector: string; result: string }>;
  spfResult: { domain: string; scope: 'helo' | 'mfrom'; result: string };
}

export interface DmarcDomainDay {
  domain: string;
  policy: PublishedDmarc;
  rows: Array<DmarcRow & { count: number }>;
}

/** A client address refused on every port until `expiresAt` (brute force, or put there by an admin). */
export interface Ban {
  address: string;
  reason: string;
  createdAt: Date;
  expiresAt: Date;
}

export interface ApiKey {
  id: string;
  secretHash: string;
  scopes: ApiScope[];
  domain: string | null;
  description: string;
  /** Requests a minute allowed (null: no limit). */
  ratePerMinute: number | null;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export interface DkimKey {
  domain: string;
  selector: string;
  algorithm: DkimAlgorithm;
  /** PKCS#8 PEM. */
  privateKey: string;
  /** The p= value of the DNS record (base64). */
  publicKey: string;
  state: DkimKeyState;
  createdAt: Date;
  activatedAt: Date | null;
  retireAt: Date | null;
}

/** Everything recipient resolution needs to know about one address, in one read. */
export interface AddressLookup {
  /** Whether the address's domain is a local domain. */
  localDomain: boolean;
  /** Alias targets of the address (empty when it is no alias). */
  aliasTargets: string[];
  account: Account | null;
}

export interface DirectoryStore {
  addDomain(name: string): Promise<Domain>;
  listDomains(): Promise<Domain[]>;
  isLocalDomain(name: string): Promise<boolean>;
  /** Throws ConflictError while accounts or aliases still use the domain. */
  deleteDomain(name: string): Promise<void>;

  addAccount(account: NewAccount): Promise<Account>;
  listAccounts(domain?: string): Promise<Account[]>;
  getAccount(address: string): Promise<Account | null>;
  /** Domain, alias and account facts about one address (or `@domain`), in one round trip. */
  lookup(address: string): Promise<AddressLookup>;
  getPasswordHash(address: string): Promise<string | null>;
  setPasswordHash(address: string, passwordHash: string): Promise<void>;
  setQuota(address: string, quotaBytes: number | null): Promise<void>;
  /** Makes an account a site administrator or not (NotFoundError when there is none). */
  setAdmin(address: string, isAdmin: boolean): Promise<void>;
  /** Deletes the account, its mailboxes and messages, and blobs no longer referenced. */
  deleteAccount(address: string): Promise<void>;

  addAlias(address: string, target: string): Promise<void>;
  listAliases(): Promise<AliasRow[]>;
  aliasTargets(address: string): Promise<string[]>;
  /** Deletes one target, or every target of `address` when `target` is omitted. */
  deleteAlias(address: string, target?: string): Promise<void>;

  /** Adds a DKIM key (ConflictError if the selector exists for the domain). */
  addDkimKey(key: Omit<DkimKey, 'createdAt' | 'activatedAt' | 'retireAt'>): Promise<DkimKey>;
  /** Stores a new API key (ConflictError if the id exists; NotFoundError if its domain does not). */
  addApiKey(key: Omit<ApiKey, 'createdAt' | 'lastUsedAt' | 'revokedAt'>): Promise<ApiKey>;
  /** One key by id, revoked or not; null when there is none. */
  apiKey(id: string): Promise<ApiKey | null>;
  /** Keys, oldest first; only those of `domain` when given. */
  listApiKeys(domain?: string): Promise<ApiKey[]>;
  /**
   * Claims an Idempotency-Key of an API key: `new` (this caller does the work, then
   * finishes or drops it), `pending` (another request with it is under way) or `done` with
   * the first answer. Records older than `expiredBefore` are forgotten first.
   */
  claimIdempotency(
    keyId: string,
    idemKey: string,
    requestHash: string,
    expiredBefore: Date,
  ): Promise<{ state: 'new' } | { state: 'pending'; requestHash: string } | { state: 'done'; requestHash: string; status: number; response: string }>;
  finishIdempotency(keyId: string, idemKey: string, status: number, response: string): Promise<void>;
  /** Forgets an unfinished claim (the request failed; a retry may do the work). */
  dropIdempotency(keyId: string, idemKey: string): Promise<void>;
  /** Forgets every record older than `before`; returns how many. */
  purgeIdempotency(before: Date): Promise<number>;
  /** Adds addresses to the suppression list (those already there keep their entry); returns how many were new. */
  addSuppressions(entries: Array<Pick<Suppression, 'address' | 'source' | 'reason'>>): Promise<number>;
  /** Removes an address from the list (NotFoundError when it is not there). */
  deleteSuppression(address: string): Promise<void>;
  /** The list in address order, after `after`. */
  listSuppressions(page: { after?: string; limit: number }): Promise<Suppression[]>;
  /** Which of `addresses` are suppressed. */
  suppressed(addresses: string[]): Promise<Set<string>>;
  /** Keeps a received report; false when the same reporter's report id is already kept. */
  addReport(report: Omit<Report, 'id' | 'receivedAt'>): Promise<boolean>;
  /** Reports newest first (by the end of their period), of a domain and kind when given. */
  listReports(filter: { domain?: string; kind?: Report['kind']; limit: number }): Promise<Report[]>;
  /** Counts one stranger's message in the day's DMARC results for the domain whose policy applied (one write), and keeps that policy as last seen. */
  recordDmarc(r: { day: string; domain: string; policy: PublishedDmarc; row: DmarcRow }): Promise<void>;
  /** Days (YYYY-MM-DD, UTC) with DMARC results not yet taken, oldest first. */
  dmarcDays(): Promise<string[]>;
  /** Takes a day's DMARC results away (in one transaction, so of several nodes one gets them): per domain, its policy and counted rows. */
  takeDmarcDay(day: string): Promise<DmarcDomainDay[]>;
  /** Bans an address until `until` (a ban already there gets the later end); returns the ban. */
  addBan(address: string, reason: string, until: Date): Promise<Ban>;
  /** Lifts a ban; NotFoundError when there is none. */
  deleteBan(address: string): Promise<void>;
  /** Bans in force at `now`, oldest first (expired ones are deleted as bans are added). */
  listBans(now: Date): Promise<Ban[]>;
  /**
   * Greylisting (one write): whether mail for this triplet may pass now. A new triplet (or
   * one not retried within `retryMs`, or not seen for `keepMs`) starts waiting `delayMs`; a
   * retry after the delay passes, and passes at once for `keepMs` after it was last seen.
   */
  greylist(triplet: string, o: { now: Date; delayMs: number; retryMs: number; keepMs: number }): Promise<{ pass: boolean; waitMs: number }>;
  /** Records when a key was last used. */
  touchApiKey(id: string, at: Date): Promise<void>;
  /** Marks a key revoked (NotFoundError when there is none); a revoked key stays listed. */
  revokeApiKey(id: string): Promise<void>;
  /** DKIM keys, of one domain or all, by domain then creation. */
  dkimKeys(domain?: string): Promise<DkimKey[]>;
  /** Makes a key active; the domain's other active keys of the same algorithm start retiring (their records are kept until `retireAt`). */
  activateDkimKey(domain: string, selector: string, retireAt: Date): Promise<void>;
  deleteDkimKey(domain: string, selector: string): Promise<void>;

  /** Configuration that lives in the database. */
  getSetting(key: string): Promise<string | null>;
  /** Settings whose key starts with `prefix`, by key. */
  listSettings(prefix: string): Promise<Array<{ key: string; value: string }>>;
  /** Removes a setting (NotFoundError when there is none). */
  deleteSetting(key: string): Promise<void>;
  setSetting(key: string, value: string): Promise<void>;
  /** Sets the value only if the key has none; returns the value now stored (safe when nodes race). */
  initSetting(key: string, value: string): Promise<string>;
  /** Adds `by` to a numeric setting (a missing one counts as 0) in one transaction, so nodes counting at once never lose a step; returns the new value. */
  addToSetting(key: string, by: number): Promise<number>;
}

export interface MailboxStore {
  list(accountId: number): Promise<Mailbox[]>;
  get(accountId: number, name: string): Promise<Mailbox | null>;
  /** Creates a mailbox with a fresh UIDVALIDITY (from a counter, never the clock). ConflictError if it exists. */
  create(accountId: number, name: string, specialUse?: string | null): Promise<Mailbox>;
  /** Deletes a mailbox and its messages (INBOX cannot be deleted). */
  delete(accountId: number, name: string): Promise<void>;
  subscribe(accountId: number, name: string): Promise<void>;
  unsubscribe(accountId: number, name: string): Promise<void>;
  /** Subscribed names, including names whose mailbox no longer exists (LSUB shows them). */
  subscriptions(accountId: number): Promise<string[]>;

  /** Commits the message durably; one outcome per recipient. Throws StoreUnavailableError if it cannot. */
  deliver(delivery: NewDelivery): Promise<DeliveryOutcome[]>;
  /** Deliveries committed in one transaction (each with its own outcome or error): an API batch is durable all at once. */
  deliverTogether(deliveries: NewDelivery[]): Promise<Array<PromiseSettledResult<DeliveryOutcome[]>>>;
  messages(mailboxId: number): Promise<StoredMessage[]>;
  /** Every message of `address`'s mailbox `name` (INBOX by default), by uid. */
  messagesOf(address: string, name?: string): Promise<StoredMessage[]>;
  /** Adds, removes or replaces flags on the given uids; each changed message gets a new modseq. */
  setFlags(mailboxId: number, uids: number[], mode: 'add' | 'remove' | 'replace', flags: string[]): Promise<FlagChange[]>;
  /** setFlags for IMAP STORE: messages whose modseq is above `unchangedSince` (when given) are left alone and listed. */
  updateFlags(mailboxId: number, uids: number[], mode: 'add' | 'remove' | 'replace', flags: string[], unchangedSince: number | null): Promise<FlagUpdate>;
  /** Renames a mailbox and every mailbox below it ("a" → "b" takes "a/x" to "b/x"); renaming INBOX moves its messages to the new mailbox. */
  rename(accountId: number, from: string, to: string): Promise<void>;
  /** The uids of a mailbox, ascending. */
  uids(mailboxId: number): Promise<number[]>;
  /**
   * Messages by uid, ascending, with what `want` asks for: the given uids (at most
   * FETCH_PAGE = 500 per call), or every message in a uid range. Uids that are gone are left out.
   */
  fetch(mailboxId: number, uids: number[] | { from: number; to: number }, want: MessageWants): Promise<MessageRecord[]>;
  /** The lowest uid without \Seen, or null. */
  firstUnseen(mailboxId: number): Promise<number | null>;
  /** Uids flagged \Deleted, ascending. */
  deletedUids(mailboxId: number): Promise<number[]>;
  /** Messages whose modseq is above `since`, with their flags now. */
  changedSince(mailboxId: number, since: number): Promise<FlagChange[]>;
  /** Bytes [start, end) of the stored message (prefix and body), streamed. */
  readRange(messageId: number, start: number, end: number): AsyncIterable<Buffer>;
  /** Calls `listener` after each commit by this process that changed the mailbox's messages or flags. Returns the unsubscribe function. */
  watch(mailboxId: number, listener: () => void): () => void;
  /** Removes messages, leaving a tombstone with the expunge modseq (CONDSTORE/QRESYNC). */
  expunge(mailboxId: number, uids: number[]): Promise<Expunged[]>;
  /** Copies (or moves) messages to another mailbox of the same account; returns [source uid, new uid] pairs. */
  copy(mailboxId: number, uids: number[], targetMailboxId: number, move?: boolean): Promise<Array<[number, number]>>;
  /** Tombstones with modseq > `sinceModseq`. */
  expungedSince(mailboxId: number, sinceModseq: number): Promise<Expunged[]>;
  /** The whole stored message (prefix and body), streamed in chunks. */
  read(messageId: number): AsyncIterable<Buffer>;
  /** The stored copies of a delivery, by its Tern id (to settle an ambiguous commit failure). */
  findByTernId(ternId: string): Promise<DeliveryOutcome[]>;
  /**
   * Readies a mailbox for an import (Maildir, mbox), in one transaction: creates it when it
   * is missing, with the source's UIDVALIDITY when one is given; an existing mailbox that
   * holds no message takes the source's UIDVALIDITY (and starts its uids again at 1). Only
   * then may the import's deliveries keep the source's uids (`DeliveryRecipient.uid`, from
   * `lowestUid` up): `keepUids` says so. A mailbox with messages keeps its UIDVALIDITY and
   * imported messages get new uids.
   */
  prepareImport(
    accountId: number,
    name: string,
    source: { uidValidity: number | null; lowestUid?: number; specialUse?: string | null },
  ): Promise<{ mailbox: Mailbox; created: boolean; keepUids: boolean }>;
  /** Ends an import that kept uids: UIDNEXT becomes at least `uidNext` (uids the source used up stay unused). */
  finishImport(mailboxId: number, uidNext: number): Promise<Mailbox>;
}

export interface BlobStore {
  /** Starts staging a body too large to hold in memory; returns the upload id. */
  newUpload(): string;
  /** Writes one chunk of an upload (chunks numbered from 0). Bulk priority: never delays commits. */
  stage(upload: string, seq: number, data: Buffer): Promise<void>;
  /** Drops a staged upload that will not be committed. */
  discard(upload: string): Promise<void>;
  /** The blob's bytes, streamed in chunks; null when no such blob exists. */
  read(hash: string): Promise<AsyncIterable<Buffer> | null>;
  /** The bytes of a body not committed yet: its inline data, or its staged chunks. */
  staged(ref: BlobRef): AsyncIterable<Buffer>;
  /**
   * The blob's stored MIME structure and search text; null when no such blob exists. A blob
   * not parsed yet (stored without a structure, before the next open's backfill) is parsed
   * now from its bytes, without storing the result.
   */
  structure(hash: string): Promise<{ structure: MessageStructure; text: string } | null>;
}

export type QueueState = 'queued' | 'held' | 'bounce';
export type RecipientStatus = 'pending' | 'delivered' | 'failed';

export interface QueueRecipient {
  address: string;
  status: RecipientStatus;
  /** The last remote reply (or local reason) for this recipient. */
  reply: string | null;
  notify: string | null;
  orcpt: string | null;
}

/** One queued message for one destination domain. */
export interface QueueEntry {
  id: number;
  ternId: string;
  envelopeFrom: string;
  domain: string;
  /** Prefix plus body, in bytes. */
  size: number;
  hash: string;
  state: QueueState;
  isBounce: boolean;
  dsn: { ret: string | null; envid: string | null };
  attempts: number;
  nextAttemptAt: Date;
  createdAt: Date;
  recipients: QueueRecipient[];
}

/** Which entries a list or a bulk action covers; every given condition must hold. */
export interface QueueFilter {
  ids?: number[];
  state?: QueueState;
  domain?: string;
  sender?: string;
  recipient?: string;
  /** Entries created before this time. */
  olderThan?: Date;
}

/** One attempt's result for a recipient: final (delivered, failed) or to be tried again. */
export interface AttemptResult {
  address: string;
  status: 'delivered' | 'failed' | 'deferred';
  reply: string;
}

/** `stored`: a copy put in a local mailbox (queue id 0, the mailbox name as its reply); the others are an outbound recipient's. */
export type QueueEventKind = 'queued' | 'stored' | 'deferred' | 'delivered' | 'failed' | 'bounced' | 'deleted' | 'held' | 'released';

export interface QueueEvent {
  ternId: string;
  queueId: number;
  recipient: string;
  at: Date;
  event: QueueEventKind;
  reply: string | null;
  /** The envelope sender, on `queued` and `stored` events (who may read the trace). */
  sender?: string | null;
  /** The message's Message-ID and Subject, on `queued` and `stored` events (trace search). */
  messageId?: string | null;
  subject?: string | null;
}

/** What a trace search matches (every field given must match); newest first. */
export interface TraceQuery {
  messageId?: string;
  sender?: string;
  recipient?: string;
  since?: Date;
  until?: Date;
  limit: number;
}

/** One message a trace search found: when it arrived, who sent it, and where its copies went. */
export interface TraceHit {
  ternId: string;
  at: Date;
  sender: string | null;
  messageId: string | null;
  subject: string | null;
  /** Recipients queued for other hosts. */
  outbound: string[];
  /** Local accounts that got a copy. */
  local: string[];
}

export interface QueueStore {
  /**
   * Leases up to `limit` due entries to `owner` for `leaseMs` (entries whose lease expired,
   * a crashed worker's, are due again), except those for `skipDomains` (paused). Only
   * pending recipients are returned.
   */
  claim(owner: string, options: { limit: number; leaseMs: number; now?: Date; skipDomains?: string[] }): Promise<QueueEntry[]>;
  /**
   * Records one attempt. Deferred recipients are tried again at `retryAt`; with `retryAt`
   * null (given up) they fail. When no recipient is pending any more, the entry is removed,
   * or, when a recipient failed and a bounce is owed, kept in state `bounce` for `bounced`.
   * `suppress` (hard bounces) joins the suppression list in the same transaction, so whoever
   * sees the failure sees the address suppressed.
   */
  settle(
    id: number,
    results: AttemptResult[],
    retryAt: Date | null,
    suppress?: Array<Pick<Suppression, 'address' | 'source' | 'reason'>>,
  ): Promise<QueueState | 'done'>;
  /** Gives a claimed entry back, due at `until`, without counting an attempt (a rate limit said wait). */
  postpone(id: number, until: Date): Promise<void>;
  /** Removes an entry in state `bounce` once its DSN is committed. */
  bounced(id: number): Promise<void>;
  /** Entries matching the filter, by id, after `after` (cursor paging). */
  list(filter: QueueFilter, page: { after?: number; limit: number }): Promise<QueueEntry[]>;
  /** How many entries match (metrics: queue depth by state). */
  count(filter: QueueFilter): Promise<number>;
  get(id: number): Promise<QueueEntry | null>;
  /** Makes matching queued (and held, which are released) entries due now; returns how many. */
  retry(filter: QueueFilter): Promise<number>;
  /** Removes matching entries without delivering or bouncing them; returns how many. */
  delete(filter: QueueFilter): Promise<number>;
  /** Holds matching queued entries (never delivered until released); returns how many. */
  hold(filter: QueueFilter): Promise<number>;
  release(filter: QueueFilter): Promise<number>;
  /** The message as it is sent: the entry's prefix, then the body. */
  read(id: number): AsyncIterable<Buffer>;
  /** Every recipient event of a Tern id (or of a recipient address), oldest first. */
  events(query: { ternId?: string; recipient?: string; limit?: number }): Promise<QueueEvent[]>;
  /** Messages (inbound and outbound) whose trace starts with events matching `query`, newest first. */
  traceSearch(query: TraceQuery): Promise<TraceHit[]>;
  /** How many entries a delivery queued (settles an ambiguous commit of a message with only remote recipients). */
  countByTernId(ternId: string): Promise<number>;
  /** Calls `listener` after each commit by this process that may have made entries due (a delivery that queued, retry, release). Returns the unsubscribe function. */
  watch(listener: () => void): () => void;
}

/** What webhooks can subscribe to: mail that arrived, and each recipient's outcome of outbound mail. */
export const WEBHOOK_EVENTS = ['message.received', 'message.delivered', 'message.deferred', 'message.bounced', 'message.failed'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export interface Webhook {
  id: string;
  url: string;
  events: WebhookEvent[];
  /** The HMAC-SHA256 key its POSTs are signed with. */
  secret: string;
  /** Only events of this domain (the recipient's for message.received, the sender's otherwise); null: the whole site. */
  domain: string | null;
  description: string;
  enabled: boolean;
  createdAt: Date;
}

/** One POST owed to a webhook: the outbox row, kept after it is settled as the webhook's delivery log. */
export interface WebhookDelivery {
  id: number;
  webhookId: string;
  event: WebhookEvent | 'test';
  /** The event's data as JSON (for message.received, `{messageId}`: the summary is read when it is sent). */
  payload: string;
  state: 'pending' | 'delivered' | 'failed';
  attempts: number;
  nextAttemptAt: Date;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: Date;
  finishedAt: Date | null;
}

/** What a message.received POST tells about the stored message. */
export interface ReceivedMessage {
  messageId: number;
  ternId: string;
  address: string;
  mailbox: string;
  uid: number;
  size: number;
  internalDate: Date;
  envelopeFrom: string;
  /** The stored MIME structure (JSON), null until parsed. */
  structure: string | null;
}

/**
 * Webhook subscriptions and their outbox. The outbox rows are written by the operations that
 * make the events (a delivery, a queue settle), in the same transaction, so a committed event
 * always has its POSTs owed; dispatchers lease them like queue entries.
 */
export interface WebhookStore {
  add(hook: Omit<Webhook, 'createdAt' | 'enabled'>): Promise<Webhook>;
  get(id: string): Promise<Webhook | null>;
  /** All, or those limited to `domain`. */
  list(domain?: string): Promise<Webhook[]>;
  update(id: string, change: Partial<Pick<Webhook, 'url' | 'events' | 'description' | 'enabled'>>): Promise<Webhook>;
  /** Deletes the webhook with its outbox and log. */
  delete(id: string): Promise<void>;
  /** Owes `webhookId` a POST of `event` now (a test event); returns the delivery id. */
  enqueue(webhookId: string, event: WebhookDelivery['event'], payload: string): Promise<number>;
  /** Leases up to `limit` due pending deliveries of enabled webhooks (an expired lease is due again). */
  claim(options: { limit: number; leaseMs: number; now?: Date }): Promise<Array<WebhookDelivery & { url: string; secret: string }>>;
  /** Records one attempt: delivered, or failed for good (`retryAt` null), or due again at `retryAt`. */
  settle(id: number, result: { delivered: boolean; status: number | null; error: string | null; retryAt: Date | null }): Promise<void>;
  /** The webhook's deliveries, newest first, before id `before` (cursor paging). */
  deliveries(webhookId: string, page: { before?: number; limit: number }): Promise<WebhookDelivery[]>;
  /** The stored message a message.received event is about; null once it is gone. */
  receivedMessage(messageId: number): Promise<ReceivedMessage | null>;
  /** Deletes settled deliveries finished before `before`; returns how many. */
  purge(before: Date): Promise<number>;
  /** Calls `listener` after a commit by this process that may have owed POSTs. Returns the unsubscribe function. */
  watch(listener: () => void): () => void;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  readonly directory: DirectoryStore;
  readonly mailboxes: MailboxStore;
  readonly blobs: BlobStore;
  readonly queue: QueueStore;
  readonly webhooks: WebhookStore;

  stats(): Promise<StoreStats>;
  /** Problems found by the backend's integrity check; empty when healthy. */
  checkIntegrity(): Promise<string[]>;
  /** The durability settings in force on the connection that commits (tests assert them). */
  commitSettings(): Promise<Record<string, string>>;
  close(): Promise<void>;
}

/** Collects a streamed message or blob into one Buffer (tests, tools; not for hot paths). */
export async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
}

/** One outcome per recipient of `delivery`, from the copies found stored under its Tern id. */
export function outcomesFromStored(delivery: Pick<NewDelivery, 'recipients'>, stored: DeliveryOutcome[]): DeliveryOutcome[] {
  const byAccount = new Map(stored.map((o) => [o.accountId, o]));
  return delivery.recipients.map((r) => byAccount.get(r.accountId) ?? { status: 'gone', accountId: r.accountId });
}

const handedOver = new WeakSet<Buffer>();

/**
 * Marks a Buffer its owner will not touch again once given to the store (a message sink's
 * chunks), so a backend may move its memory to another thread instead of copying it.
 * Buffers not marked are always copied: the caller may still be using them.
 */
export function handOver(buffer: Buffer): Buffer {
  handedOver.add(buffer);
  return buffer;
}

export const isHandedOver = (buffer: Buffer): boolean => handedOver.has(buffer);
