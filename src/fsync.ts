/** Flushing files to stable storage. */
import { fdatasync, write } from 'node:fs';
import { open } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';

/** Flushes a file or a directory (a rename or a new entry in it) to stable storage. */
export async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

const writeAsync = promisify(write);
const fdatasyncAsync = promisify(fdatasync);

/**
 * A stream writing to `fd` that flushes it to the disk after every `syncEvery` bytes. A
 * long file written beside a live server (a backup) then never leaves hundreds of MB for
 * its final fsync, which would hold the server's commits behind it on the same disk.
 * The caller still syncs once at the end and closes `fd`.
 */
export function syncingWriteStream(fd: number, syncEvery = 4 * 1024 * 1024): Writable {
  let unsynced = 0;
  const writeAll = async (chunk: Buffer) => {
    for (let done = 0; done < chunk.length;) done += (await writeAsync(fd, chunk, done, chunk.length - done, null)).bytesWritten;
    unsynced += chunk.length;
    if (unsynced >= syncEvery) {
      unsynced = 0;
      await fdatasyncAsync(fd);
    }
  };
  return new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      writeAll(chunk).then(() => callback(), callback);
    },
  });
}
