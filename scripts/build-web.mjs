#!/usr/bin/env node
// Builds the admin portal (src/web, Preact + uPlot) with Vite into dist/web/, then writes a .gz and a .br next to
// every file over 1 KB so the http role can send them precompressed. Prints each file's size raw, gzip and brotli,
// and fails when the first load (every file: the portal is one page with one script and one stylesheet) is over
// the 200 KB compressed budget of docs/portal.md.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { build } from 'vite';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const root = join(repo, 'src/web');
const out = join(repo, 'dist/web');
const BUDGET = 200 * 1024;

await build({ root, configFile: join(root, 'vite.config.ts'), logLevel: 'warn' });

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : /\.(gz|br)$/.test(name) ? [] : [p];
  });
}

const rows = files(out)
  .sort()
  .map((path) => {
    const data = readFileSync(path);
    const gz = gzipSync(data, { level: 9 });
    const br = brotliCompressSync(data, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: data.length },
    });
    // Files up to 1 KB are sent as they are (compressing them saves next to nothing), so that is their size on the wire.
    if (data.length <= 1024) return { file: relative(out, path), raw: data.length, gz: data.length, br: data.length };
    writeFileSync(`${path}.gz`, gz);
    writeFileSync(`${path}.br`, br);
    return { file: relative(out, path), raw: data.length, gz: gz.length, br: br.length };
  });

const total = rows.reduce((t, r) => ({ file: 'total', raw: t.raw + r.raw, gz: t.gz + r.gz, br: t.br + r.br }), { file: 'total', raw: 0, gz: 0, br: 0 });
const kb = (n) => `${(n / 1024).toFixed(1)} KB`.padStart(10);
const width = Math.max(...rows.map((r) => r.file.length), 5);
console.log(`dist/web/${' '.repeat(Math.max(width - 9, 0))}       raw      gzip    brotli`);
for (const r of [...rows, total]) console.log(`${r.file.padEnd(width)}${kb(r.raw)}${kb(r.gz)}${kb(r.br)}`);
if (total.gz > BUDGET) {
  console.error(`build-web: the first load is ${kb(total.gz).trim()} gzipped, over the ${BUDGET / 1024} KB budget`);
  process.exit(1);
}
