/** Runs the Store contract against SQLite, in a fresh temporary directory. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { storeContract, type Row } from './contract.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-store-'));
const file = path.join(dir, 'tern.db');
let inspector: Database.Database | undefined;

storeContract('sqlite', () => openSqliteStore(file), {
  // A read-only connection of its own: WAL lets it read what the writer thread committed.
  async inspect(sql, params = []) {
    inspector ??= new Database(file, { readonly: true });
    return inspector.prepare(sql).all(...params) as Row[];
  },
  async cleanup() {
    inspector?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  },
});
