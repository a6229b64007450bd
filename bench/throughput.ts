// The throughput phase: for each load (size × messages), the same smtp-source run against
// smtp-sink (the ceiling), Tern on each backend, Postfix (accepted, and delivered into its
// Maildir) and, for LMTP, Dovecot. Each Tern instance is fresh, so each row starts empty.
import { join } from 'node:path';
import { BACKEND_NAMES, errorText, loadRow, loadSpec, measureTern, newTern, warmUp, withTern, type BenchContext } from './context.js';
import type { Protocol } from './config.js';
import { createDovecot } from './dovecot.js';
import { createPostfix } from './postfix.js';
import type { Load, Row } from './report.js';
import { startSink } from './smtp-sink.js';
import { runLoad } from './smtp-source.js';
import { countFiles, countOccurrences, portIsFree, waitForFiles, type ReferenceServer } from './util.js';

const failed = (load: Load, protocol: Protocol, server: string, kind: Row['kind'], error: string): Row => ({
  load: load.label,
  protocol,
  server,
  kind,
  ok: false,
  error,
});

async function ceilingRow(ctx: BenchContext, load: Load, protocol: Protocol): Promise<Row> {
  const server = 'smtp-sink';
  const port = ctx.config.ports.sink;
  if (!(await portIsFree(port))) return failed(load, protocol, server, 'ceiling', `127.0.0.1:${port} is already in use`);
  let sink;
  try {
    sink = await startSink(port, protocol === 'lmtp', ctx.user);
  } catch (error) {
    return failed(load, protocol, server, 'ceiling', errorText(error));
  }
  const forget = ctx.onCleanup(sink.stop);
  try {
    await warmUp(ctx, load, port, protocol === 'lmtp');
    ctx.log(`smtp-sink ${protocol.toUpperCase()} ${load.label} x ${load.messages}`);
    return loadRow(load, protocol, server, 'ceiling', await runLoad(loadSpec(ctx, load), port, protocol === 'lmtp'));
  } finally {
    forget();
    await sink.stop();
  }
}

/** A reference server started once for the whole phase (on first use) and stopped at its end. */
class Reference {
  private server: ReferenceServer | null = null;
  private startError = '';

  constructor(
    private readonly ctx: BenchContext,
    readonly name: string,
    readonly port: number,
    private readonly create: () => Promise<ReferenceServer>,
  ) {}

  async get(): Promise<ReferenceServer> {
    if (this.server) return this.server;
    if (this.startError) throw new Error(this.startError);
    try {
      if (!(await portIsFree(this.port))) throw new Error(`127.0.0.1:${this.port} is already in use`);
      const server = await this.create();
      this.ctx.onCleanup(server.stop);
      await server.start();
      this.server = server;
      return server;
    } catch (error) {
      this.startError = `could not start: ${errorText(error)}`;
      throw new Error(this.startError);
    }
  }

  async stop(): Promise<void> {
    await this.server?.stop();
  }
}

/** Warms a reference server up and waits until its warm-up messages are all in the Maildir, so the timed run starts quiet. */
async function warmedUp(ctx: BenchContext, server: ReferenceServer, load: Load, port: number, lmtp: boolean): Promise<void> {
  const before = await countFiles(server.maildirNew);
  const sent = await warmUp(ctx, load, port, lmtp);
  if (sent > 0) await waitForFiles(server.maildirNew, before + sent, 120_000);
}

/**
 * Postfix: one row for the rate smtp-source saw (queued, 250 sent) and one for the rate into the
 * Maildir (from the start of the run until the last message's file is there).
 */
async function postfixRows(ctx: BenchContext, postfix: Reference, load: Load): Promise<Row[]> {
  let server: ReferenceServer;
  try {
    server = await postfix.get();
  } catch (error) {
    return [failed(load, 'smtp', 'Postfix 250', 'reference', errorText(error))];
  }
  await warmedUp(ctx, server, load, postfix.port, false);
  const filesBefore = await countFiles(server.maildirNew);
  const logBefore = countOccurrences(server.logFile, server.deliveryLogText);
  ctx.log(`Postfix SMTP ${load.label} x ${load.messages} on 127.0.0.1:${postfix.port}`);
  const result = await runLoad(loadSpec(ctx, load), postfix.port, false);
  const accepted = loadRow(load, 'smtp', 'Postfix 250', 'reference', result);
  const drained = await waitForFiles(server.maildirNew, filesBefore + load.messages, 120_000);
  const stored = drained.count - filesBefore;
  const seconds = result.seconds + drained.seconds;
  const allThere = result.ok && stored >= load.messages;
  const delivered: Row = {
    load: load.label,
    protocol: 'smtp',
    server: 'Postfix Maildir',
    kind: 'reference',
    ok: allThere,
    command: result.command,
    seconds,
    perSecond: allThere ? load.messages / seconds : undefined,
    mbPerSecond: allThere ? (load.messages * load.size) / 1e6 / seconds : undefined,
    stored,
    expected: load.messages,
    logLines: countOccurrences(server.logFile, server.deliveryLogText) - logBefore,
    error: allThere ? undefined : result.ok ? `${stored} of ${load.messages} in the Maildir after 120 s` : result.error,
  };
  return [accepted, delivered];
}

async function dovecotRow(ctx: BenchContext, dovecot: Reference, load: Load): Promise<Row> {
  let server: ReferenceServer;
  try {
    server = await dovecot.get();
  } catch (error) {
    return failed(load, 'lmtp', 'Dovecot', 'reference', errorText(error));
  }
  await warmedUp(ctx, server, load, dovecot.port, true);
  const filesBefore = await countFiles(server.maildirNew);
  const logBefore = countOccurrences(server.logFile, server.deliveryLogText);
  ctx.log(`Dovecot LMTP ${load.label} x ${load.messages} on 127.0.0.1:${dovecot.port}`);
  const row = loadRow(load, 'lmtp', 'Dovecot', 'reference', await runLoad(loadSpec(ctx, load), dovecot.port, true));
  const drained = await waitForFiles(server.maildirNew, filesBefore + load.messages, 30_000);
  return {
    ...row,
    stored: drained.count - filesBefore,
    expected: load.messages,
    logLines: countOccurrences(server.logFile, server.deliveryLogText) - logBefore,
  };
}

/** Fills in ratios to the reference and to the ceiling for every row of one load and protocol. */
export function compareRows(rows: Row[]): void {
  const rate = (server: string, load: string, protocol: Protocol): number | undefined =>
    rows.find((r) => r.server === server && r.load === load && r.protocol === protocol && r.ok)?.perSecond;
  const ratio = (value: number | undefined, to: number | undefined): number | null => (value && to ? value / to : null);
  for (const r of rows) {
    const ceiling = rate('smtp-sink', r.load, r.protocol);
    if (r.kind !== 'ceiling') r.percentOfCeiling = ratio(r.perSecond, ceiling) === null ? null : 100 * ratio(r.perSecond, ceiling)!;
    if (r.kind !== 'tern') continue;
    r.ratio = ratio(r.perSecond, rate(r.protocol === 'smtp' ? 'Postfix 250' : 'Dovecot', r.load, r.protocol));
    if (r.protocol === 'smtp') r.ratioDelivered = ratio(r.perSecond, rate('Postfix Maildir', r.load, r.protocol));
  }
}

export async function throughputPhase(ctx: BenchContext): Promise<Row[]> {
  const { config } = ctx;
  const options = { root: ctx.root, domain: 'bench.test', localPart: 'bench', user: ctx.user };
  const postfix = new Reference(ctx, 'Postfix', config.ports.postfix, () => createPostfix({ ...options, port: config.ports.postfix }));
  const dovecot = new Reference(ctx, 'Dovecot', config.ports.dovecot, () => createDovecot({ ...options, port: config.ports.dovecot }));
  const rows: Row[] = [];
  try {
    for (const load of config.loads) {
      for (const protocol of config.protocols) rows.push(await ceilingRow(ctx, load, protocol));
      for (const backend of config.backends) {
        const server = BACKEND_NAMES[backend];
        const name = `tern_${backend}_${load.size}`;
        try {
          const tern = await newTern(ctx, { backend, name, lmtp: config.protocols.includes('lmtp') });
          await withTern(ctx, tern, async () => {
            for (const protocol of config.protocols) rows.push(await measureTern(ctx, tern, server, load, protocol));
          });
        } catch (error) {
          for (const protocol of config.protocols) {
            if (!rows.some((r) => r.server === server && r.load === load.label && r.protocol === protocol)) {
              rows.push(failed(load, protocol, server, 'tern', errorText(error)));
            }
          }
        }
      }
      if (config.protocols.includes('smtp')) rows.push(...(await postfixRows(ctx, postfix, load)));
      if (config.protocols.includes('lmtp')) rows.push(await dovecotRow(ctx, dovecot, load));
      compareRows(rows);
      for (const r of rows.filter((row) => row.load === load.label && !row.ok)) ctx.log(`${r.server} ${r.protocol.toUpperCase()} failed: ${r.error}`);
    }
  } finally {
    await postfix.stop();
    await dovecot.stop();
  }
  return rows;
}

/** Where Postfix and Dovecot keep their queue and Maildirs under the bench temp dir. */
export function referenceDirs(root: string): Record<string, string> {
  return { 'Postfix queue and Maildir': join(root, 'postfix'), 'Dovecot Maildir': join(root, 'dovecot'), 'Dovecot IMAP Maildir': join(root, 'dovecot-imap') };
}
