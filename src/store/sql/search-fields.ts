/**
 * `blob_search`: per body, the values of the header fields SEARCH has keys of their own for
 * (mail/mime SEARCH_FIELDS), lower-cased, one short column each and NULL where the field
 * is absent. Written with `blob_structures`, so SEARCH FROM … SUBJECT tests a few bytes
 * per message with instr/strpos rather than every header line (about half the time on
 * 10,000 messages).
 */
import { SEARCH_FIELDS, searchValues, type SearchField } from '../../mail/mime/index.js';
import { placeholders, type Sql } from './sql.js';

export const SEARCH_COLUMNS: Record<SearchField, string> = { from: 'hdr_from', to: 'hdr_to', cc: 'hdr_cc', bcc: 'hdr_bcc', subject: 'hdr_subject' };

/** Inserts the rows of bodies given with their stored header lines (at most a statement's worth). */
export async function insertSearchFields(sql: Sql, bodies: Array<{ hash: string; headers: string }>): Promise<void> {
  if (bodies.length === 0) return;
  const columns = ['hash', ...SEARCH_FIELDS.map((f) => SEARCH_COLUMNS[f])];
  await sql.run(
    `INSERT INTO blob_search (${columns.join(', ')}) VALUES ${bodies.map(() => `(${placeholders(columns.length)})`).join(', ')} ON CONFLICT (hash) DO NOTHING`,
    bodies.flatMap((b) => {
      const values = searchValues(b.headers);
      return [b.hash, ...SEARCH_FIELDS.map((f) => values[f])];
    }),
  );
}
