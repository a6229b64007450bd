/**
 * SQLite on a full disk: the data dir lives on a small tmpfs. Once the disk fills,
 * clients get 451 4.3.0 (never 250 for what was not committed), the server keeps
 * serving, and delivery resumes by itself when space is freed. Needs root (mount); skipped
 * otherwise.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { createSite, startTern, status, tempDir, type TernServer } from '../helpers/tern.js';

async function send(port: number, seq: number): Promise<number> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, ignoreTLS: true });
  try {
    await transport.sendMail({
      envelope: { from: 'sender@remote.test', to: 'alice@example.test' },
      raw: `Subject: fill ${seq}\r\n\r\n${`${seq} `.repeat(20_000)}\r\n`,
    });
    return 250;
  } catch (err) {
    const code = (err as { responseCode?: number }).responseCode;
    if (code === undefined) throw err;
    return code;
  } finally {
    transport.close();
  }
}

const notRoot = process.getuid?.() === 0 ? undefined : 'needs root to mount a small tmpfs as a full disk';

describe('disk full (SQLite)', { skip: notRoot }, () => {
  let mountPoint: string | undefined;
  let server: TernServer | undefined;

  before(() => {
    mountPoint = tempDir('tern-diskfull-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mountPoint]);
  });
  after(async () => {
    await server?.stop();
    if (mountPoint) execFileSync('umount', ['-l', mountPoint]);
  });

  it('replies 451 while the disk is full and recovers when space is freed', async () => {
    const disk = mountPoint!;
    const dataDir = join(disk, 'data');
    mkdirSync(dataDir);
    const site = await createSite({ dataDir });
    server = await startTern(site);
    // Leave about 1 MB free so a few messages fit, then the disk is full.
    const filler = join(disk, 'filler');
    const free = Number(execFileSync('df', ['--output=avail', '-B1', disk]).toString().split('\n')[1]);
    writeFileSync(filler, Buffer.alloc(Math.max(0, free - 1024 * 1024)));

    const codes: number[] = [];
    for (let seq = 0; seq < 40 && !codes.includes(451); seq++) codes.push(await send(server.smtpPort, seq));
    assert.ok(codes.includes(451), `the full disk produced a 451 (got ${codes.join(',')})`);
    assert.ok(
      codes.every((c) => c === 250 || c === 451),
      `only 250 or 451 (got ${codes.join(',')})`,
    );
    const acked = codes.filter((c) => c === 250).length;

    rmSync(filler);
    assert.equal(await send(server.smtpPort, 1000), 250, 'delivery resumes once space is freed');
    assert.equal(await server.stop(), 0);
    server = undefined;
    const s = await status(site);
    assert.equal(s.accounts.find((a) => a.address === 'alice@example.test')?.messages, acked + 1, 'every 250 was stored, nothing else');
  });
});
