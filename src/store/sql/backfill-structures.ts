/**
 * Parses, once, the bodies stored without a MIME structure (before schema version 3, or
 * by a path that gave none): when the store opens, after its migrations, pages of such
 * blobs in hash order are streamed through the parser (mail/mime) and their structures
 * written in rounds through the one write path (the setStructure operation). Every blob
 * is visited once per run, and a body that cannot be read is given the structure of what
 * could be, so the backfill always ends. Nodes opening one PostgreSQL database together
 * may parse the same blobs; only the first structure written is kept.
 */
import { MimeParser, storedForm, type MessageStructure } from '../../mail/mime/index.js';
import type { BlobStructure } from '../store.js';
import type { StoreEngine } from './facade.js';

/** Blobs listed, and at most written, per round. */
export const BACKFILL_ROUND = 200;
/** A round is written early once its structures and texts reach this many characters. */
const ROUND_CHARS = 8 * 1024 * 1024;
/** Progress is logged at most this often. */
const PROGRESS_EVERY_MS = 5000;

/** Where the store reports what it does at open (pino's `logger.info.bind(logger)` order: fields, then message). */
export type StoreLog = (fields: Record<string, unknown>, message: string) => void;

/** The default: a line on stderr (a process with a logger passes its own). */
export const stderrLog: StoreLog = (_fields, message) => process.stderr.write(`tern: ${message}\n`);

/** Parses a stored blob from its chunks; a chunk that cannot be read ends the body there. Null when the blob does not exist. */
export async function parseStoredBlob(engine: StoreEngine, hash: string): Promise<MessageStructure | null> {
  const layout = await engine.read('blobLayout', hash);
  if (!layout) return null;
  const parser = new MimeParser();
  if ('data' in layout) parser.write(layout.data);
  else {
    try {
      for (let seq = 0; seq < layout.chunks; seq++) parser.write(await engine.read('blobChunk', layout.upload, seq));
    } catch {
      // a missing or unreadable chunk: the structure of what was read
    }
  }
  return parser.end();
}

/** Parses and stores every blob without a structure; returns how many were parsed. Failures are logged, never thrown: mail is served meanwhile. */
export async function backfillStructures(engine: StoreEngine, log: StoreLog = stderrLog): Promise<number> {
  let done = 0;
  try {
    const total = await engine.read('unparsedBlobCount');
    if (total === 0) return 0;
    log({ total }, `parsing ${total} stored message bodies (once, after an upgrade)`);
    let after = '';
    let lastLog = Date.now();
    for (;;) {
      const hashes = await engine.read('unparsedBlobs', after, BACKFILL_ROUND);
      if (hashes.length === 0) break;
      after = hashes[hashes.length - 1]!;
      let round: Array<{ hash: string } & BlobStructure> = [];
      let chars = 0;
      for (const hash of hashes) {
        const parsed = await parseStoredBlob(engine, hash);
        if (!parsed) continue; // deleted meanwhile
        const stored = storedForm(parsed);
        round.push({ hash, ...stored });
        chars += stored.json.length + stored.text.length + stored.headers.length;
        if (chars >= ROUND_CHARS) {
          await engine.write('setStructure', { blobs: round }, { bulk: true });
          round = [];
          chars = 0;
        }
      }
      if (round.length > 0) await engine.write('setStructure', { blobs: round }, { bulk: true });
      done += hashes.length;
      if (Date.now() - lastLog >= PROGRESS_EVERY_MS) {
        lastLog = Date.now();
        log({ done, total }, `parsed ${done} of ${total} stored message bodies`);
      }
    }
    log({ done, total }, `parsed ${done} stored message bodies`);
  } catch (err) {
    log({ done, err: err instanceof Error ? err.message : String(err) }, 'parsing stored message bodies stopped; the rest is parsed at the next start');
  }
  return done;
}
