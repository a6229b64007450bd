/** Runs the Store contract against SQLite, in a fresh temporary directory. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../../src/store/sqlite/index.js';
import { storeContract } from './contract.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-store-'));
storeContract('sqlite', async () => new SqliteStore(path.join(dir, 'tern.db')), { cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }) });
