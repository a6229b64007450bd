/**
 * What a site is, table by table, for the archive: the tables in the order an import
 * inserts them (each after the ones it refers to), and the two sides every backend
 * implements: a SiteSource reads one consistent snapshot, a SiteSink fills an empty
 * database in one transaction that commits only once the whole archive has been read
 * and checked.
 */
import type { Value } from './archive.js';

/**
 * Every table of the schema but schema_migrations (its version goes in the manifest).
 * Other tables in the database (another application's) are not Tern's and are left out;
 * a test checks that every table the migrations create is here, so a new one cannot be
 * left out of backups silently.
 */
export const SITE_TABLES = [
  'settings',
  'counters',
  'domains',
  'accounts',
  'aliases',
  'mailboxes',
  'subscriptions',
  'blobs',
  'blob_chunks',
  'blob_structures',
  'blob_search',
  'messages',
  'keywords',
  'expunged',
  'queue',
  'queue_recipients',
  'queue_events',
  'dkim_keys',
  'api_keys',
  'idempotency',
  'suppressions',
  'webhooks',
  'webhook_deliveries',
  'bans',
  'greylist',
  'reports',
  'dmarc_records',
  'dmarc_policies',
] as const;

/** Rows worth reading: staged chunks no committed blob refers to are an upload in flight, not part of the site. */
export const TABLE_FILTER: Partial<Record<string, string>> = {
  blob_chunks: 'upload IN (SELECT upload FROM blobs WHERE upload IS NOT NULL)',
};

/** Tables whose rows are large (bodies): read a few at a time. */
export const LARGE_ROWS = new Set(['blobs', 'blob_chunks']);

export interface SiteSource {
  readonly backend: 'sqlite' | 'postgres';
  /** Schema version of the snapshot. */
  readonly schema: number;
  /** SITE_TABLES that exist in this schema, in order. */
  readonly tables: string[];
  /** The table's rows in batches, from the snapshot. */
  rows(table: string): AsyncIterable<{ columns: string[]; rows: Value[][] }>;
  count(table: string): Promise<number>;
  close(): Promise<void>;
}

export interface SiteSink {
  /** Creates the schema at the archive's version, inside the import's transaction. */
  begin(schema: number): Promise<void>;
  table(name: string, columns: string[]): Promise<void>;
  row(values: Value[]): Promise<void>;
  /** Runs the migrations after the archive's version, then commits and syncs. */
  commit(): Promise<void>;
  /** Leaves nothing behind. */
  abort(): Promise<void>;
}
