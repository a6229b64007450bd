/**
 * The one SQL surface both backends offer the shared reads and writes (sql/reads.ts,
 * sql/writes.ts): `?` placeholders (the PostgreSQL executor numbers them), rows as plain
 * objects, epoch-millisecond dates, 0/1 for booleans, Buffers for bytes.
 */
export type Row = Record<string, unknown>;

export interface Sql {
  readonly dialect: 'sqlite' | 'postgres';
  /** Runs a statement and returns its rows (none for statements without RETURNING). */
  all(sql: string, params?: unknown[]): Promise<Row[]>;
  /** Runs a query and returns its rows as arrays of values in SELECT order: cheaper than objects for pages of many rows. */
  arrays(sql: string, params?: unknown[]): Promise<unknown[][]>;
  /** Runs a statement and returns how many rows it changed. */
  run(sql: string, params?: unknown[]): Promise<number>;
  /** Runs a query of one byte column and returns its values, in order (PostgreSQL reads them in binary: postgres/binary-copy.ts). */
  bytes(sql: string, params?: unknown[]): Promise<Buffer[]>;
}

/** `?, ?, ?` for an IN list of `n` values (n ≥ 1). */
export const placeholders = (n: number): string => Array.from({ length: n }, () => '?').join(', ');

export async function one(sql: Sql, text: string, params: unknown[] = []): Promise<Row | undefined> {
  return (await sql.all(text, params))[0];
}

/** Rewrites `?` placeholders to PostgreSQL's `$1, $2, …` (the shared SQL never has `?` inside literals). */
export function numberPlaceholders(text: string): string {
  let n = 0;
  return text.replace(/\?/g, () => `$${++n}`);
}
