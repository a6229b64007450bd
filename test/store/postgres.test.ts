/** Runs the Store contract against PostgreSQL, in a fresh database dropped afterwards. */
import { PostgresStore } from '../../src/store/postgres/index.js';
import { freshPgDatabase, pgSkipReason, type TestDatabase } from '../helpers/pg.js';
import { storeContract } from './contract.js';

let db: TestDatabase | undefined;
storeContract('postgres', async () => PostgresStore.open((db = await freshPgDatabase()).url), { skip: await pgSkipReason(), cleanup: async () => db?.drop() });
