/**
 * The Store contract: everything Tern keeps (domains, accounts, aliases, mailboxes,
 * messages, content-addressed blobs, settings). Protocol code talks to this interface
 * only; the backends (sqlite/, postgres/) implement it and pass one contract suite
 * (test/store/contract.ts).
 *
 * Rules every backend keeps:
 * - `deliver` resolves only after the transaction holding the message has committed
 *   and reached stable storage; concurrent deliveries share commits (group commit).
 * - A blob is stored once per SHA-256, however many mailboxes reference it.
 * - Addresses and domain names are stored lower-case (see mail/address.ts).
 */

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
  name: string;
  specialUse: string | null;
  uidValidity: number;
  uidNext: number;
  highestModseq: number;
  messages: number;
}

/** A message ready to commit: one blob, one mailbox entry per recipient account. */
export interface NewDelivery {
  /** Tern's id for this transaction (logs, Received header). */
  ternId: string;
  /** Full stored message, trace headers included. */
  blob: Buffer;
  /** Hex SHA-256 of `blob`. */
  hash: string;
  envelopeFrom: string;
  /** Distinct account ids; each gets the message in its INBOX. */
  accountIds: number[];
  internalDate: Date;
}

export interface DeliveredEntry {
  accountId: number;
  mailboxId: number;
  uid: number;
  modseq: number;
}

export interface StoredMessage {
  id: number;
  mailbox: string;
  uid: number;
  modseq: number;
  flags: string[];
  internalDate: Date;
  size: number;
  hash: string;
  ternId: string;
  envelopeFrom: string;
}

export interface StoreStats {
  messages: number;
  blobs: number;
  domains: number;
  accounts: Array<{ address: string; messages: number }>;
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

export interface Store {
  readonly kind: 'sqlite' | 'postgres';

  // domains
  addDomain(name: string): Promise<Domain>;
  listDomains(): Promise<Domain[]>;
  isLocalDomain(name: string): Promise<boolean>;
  /** Throws ConflictError while accounts or aliases still use the domain. */
  deleteDomain(name: string): Promise<void>;

  // accounts
  addAccount(account: NewAccount): Promise<Account>;
  listAccounts(domain?: string): Promise<Account[]>;
  getAccount(address: string): Promise<Account | null>;
  getPasswordHash(address: string): Promise<string | null>;
  setPasswordHash(address: string, passwordHash: string): Promise<void>;
  /** Deletes the account, its mailboxes and messages, and blobs no longer referenced. */
  deleteAccount(address: string): Promise<void>;
  listMailboxes(address: string): Promise<Mailbox[]>;
  /** Bytes stored in all of an account's mailboxes (for its quota). */
  usedBytes(accountId: number): Promise<number>;

  // aliases
  addAlias(address: string, target: string): Promise<void>;
  listAliases(): Promise<AliasRow[]>;
  aliasTargets(address: string): Promise<string[]>;
  /** Deletes one target, or every target of `address` when `target` is omitted. */
  deleteAlias(address: string, target?: string): Promise<void>;

  // settings (configuration that lives in the database)
  getSetting(key: string): Promise<string | null>;
  setSetting(key: string, value: string): Promise<void>;

  // messages
  /** Commits the message durably (group commit), then resolves. Throws StoreUnavailableError if it cannot. */
  deliver(delivery: NewDelivery): Promise<DeliveredEntry[]>;
  listMessages(address: string, mailbox?: string): Promise<StoredMessage[]>;
  readBlob(hash: string): Promise<Buffer | null>;

  // operations
  stats(): Promise<StoreStats>;
  /** Problems found by the backend's integrity check; empty when healthy. */
  checkIntegrity(): Promise<string[]>;
  close(): Promise<void>;
}
