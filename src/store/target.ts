/**
 * Where `--db URL` / `--data DIR` point: PostgreSQL for postgres:// and postgresql:// URLs,
 * otherwise SQLite (a file path, `sqlite:PATH`, or the default `<dataDir>/tern.db`).
 */
import path from 'node:path';
import { UserError } from '../errors.js';

/** The URL with any password removed, safe for messages and logs. */
export function redactDbUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    u.searchParams.delete('password');
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1@');
  }
}

/** Where `--db URL` / `--data DIR` point: a PostgreSQL URL or a SQLite file. */
export type DbTarget = { backend: 'postgres'; url: string } | { backend: 'sqlite'; file: string };

export function dbTarget(opts: { dataDir: string; dbUrl?: string }): DbTarget {
  const url = opts.dbUrl?.trim();
  if (!url) return { backend: 'sqlite', file: path.join(opts.dataDir, 'tern.db') };
  if (/^postgres(ql)?:\/\//i.test(url)) return { backend: 'postgres', url };
  if (/^sqlite:/i.test(url)) {
    const file = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, ''); // sqlite:///abs/path → /abs/path
    if (!file) throw new UserError('the SQLite database URL has no path (expected sqlite:PATH)');
    return { backend: 'sqlite', file };
  }
  // A scheme is two or more letters before ':' (so a Windows drive letter still reads as a path).
  const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(url);
  if (scheme) {
    throw new UserError(`unsupported database URL scheme "${scheme[1]}:" in ${redactDbUrl(url)} (use postgres://…, sqlite:PATH or a file path)`);
  }
  return { backend: 'sqlite', file: url };
}
