/**
 * `tern queue list|show|trace|retry|hold|release|delete` (the outbound queue, by id or by filter),
 * `tern queue pause|resume|rate` (per destination), `tern queue warmup` (per sending domain),
 * `tern route add|list|del` (per-domain routes)
 * and `tern send` (compose a plain-text message, or take one from a file, and hand it to
 * delivery like any other: local recipients get it now, others are queued for the worker
 * of a running `tern serve`).
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { DEFAULT_WARMUP_SCHEDULE, formatWarmup, parseWarmup, warmupCounterKey, warmupDay, WARMUP_PREFIX, WARMUP_SENT_PREFIX } from '../queue/warmup.js';
import { NotFoundError, UserError } from '../errors.js';
import { PAUSED_PREFIX, SETTINGS_MS } from '../queue/worker.js';
import { deleteRateLimit, deleteRoute, listRoutes, setRateLimit, setRoute } from '../admin/routes.js';
import { normalizeAddress, normalizeDomain } from '../mail/address.js';
import { rfc5322Date } from '../mail/trace-headers.js';
import { parseInteger } from '../config/parse.js';
import { siteHostname } from '../config/init-data-dir.js';
import {
  entryJson,
  eventJson,
  listQueue,
  queueAction,
  queueEntry,
  queueFilter,
  QUEUE_STATES,
  type QueueAction,
  type QueueFilterInput,
} from '../admin/queue.js';
import { printJson, printTable, withInjector, withStore, type GlobalOptions } from './context.js';

type Globals = () => GlobalOptions;

type FilterOptions = Omit<QueueFilterInput, 'ids'>;

function withFilterOptions(c: Command): Command {
  return c
    .option('--state <state>', `only entries in this state (${QUEUE_STATES.join(', ')})`)
    .option('--domain <domain>', 'only entries for this destination domain')
    .option('--sender <address>', 'only entries from this envelope sender ("" for bounces)')
    .option('--recipient <address>', 'only entries with this recipient')
    .option('--older-than <duration>', 'only entries queued longer ago than this, e.g. 1h');
}

export function registerQueueCommands(program: Command, globals: Globals): void {
  const queue = program.command('queue').description('inspect and act on the outbound queue');
  withFilterOptions(queue.command('list'))
    .description('list queue entries, oldest first (cursor paging with --after)')
    .option('--limit <n>', 'entries per page', '100')
    .option('--after <id>', 'entries after this id (the last id of the previous page)')
    .option('--json', 'print JSON')
    .action(async (o: FilterOptions & { limit: string; after?: string; json?: boolean }) => {
      const filter = queueFilter(o, null);
      const page = { limit: parseInteger('--limit', o.limit, 1, 10_000), after: o.after ? parseInteger('--after', o.after, 0) : undefined };
      const entries = await withStore(globals(), (s) => listQueue(s, null, filter, page));
      if (o.json) return printJson(entries.map(entryJson));
      printTable(
        ['ID', 'STATE', 'DOMAIN', 'SENDER', 'RECIPIENTS', 'SIZE', 'TRIES', 'NEXT', 'LAST REPLY'],
        entries.map((e) => {
          const pending = e.recipients.filter((r) => r.status === 'pending');
          const last = e.recipients.find((r) => r.reply)?.reply ?? '';
          return [
            String(e.id),
            e.state,
            e.domain,
            e.envelopeFrom || '<>',
            `${pending.length}/${e.recipients.length} ${pending.map((r) => r.address).join(',')}`,
            String(e.size),
            String(e.attempts),
            e.state === 'queued' ? e.nextAttemptAt.toISOString() : '-',
            last.slice(0, 80),
          ];
        }),
      );
    });
  queue
    .command('show <id>')
    .description('one entry with every recipient and its events')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const n = parseInteger('queue id', id, 1);
      const { entry, events } = await withStore(globals(), (s) => queueEntry(s, null, n));
      if (o.json) return printJson({ ...entryJson(entry), events: events.map(eventJson) });
      console.log(
        `entry ${entry.id} (${entry.ternId}) ${entry.state}, from <${entry.envelopeFrom}> to ${entry.domain}, ${entry.size} bytes, ${entry.attempts} attempts`,
      );
      printTable(
        ['RECIPIENT', 'STATUS', 'REPLY'],
        entry.recipients.map((r) => [r.address, r.status, r.reply ?? '']),
      );
      printTable(
        ['AT', 'RECIPIENT', 'EVENT', 'REPLY'],
        events.map((e) => [e.at.toISOString(), e.recipient, e.event, e.reply ?? '']),
      );
    });
  queue
    .command('trace <id-or-address>')
    .description('every recipient event of a message (its Tern id) or of a recipient address, also after delivery')
    .option('--json', 'print JSON')
    .action(async (key: string, o: { json?: boolean }) => {
      const query = key.includes('@') ? { recipient: normalizeAddress(key) } : { ternId: key.toUpperCase() };
      const events = await withStore(globals(), (s) => s.queue.events(query));
      if (o.json) return printJson(events.map(eventJson));
      printTable(
        ['AT', 'ID', 'RECIPIENT', 'EVENT', 'REPLY'],
        events.map((e) => [e.at.toISOString(), e.ternId, e.recipient, e.event, e.reply ?? '']),
      );
    });
  queue
    .command('pause [domains...]')
    .description('stop delivering to these destination domains (or --all) until resumed; new mail still queues. Without arguments: what is paused')
    .option('--all', 'every destination')
    .action(async (domains: string[], o: { all?: boolean }) => {
      const keys = o.all ? ['*'] : domains.map((d) => normalizeDomain(d));
      const paused = await withStore(globals(), async (s) => {
        for (const k of keys) await s.directory.setSetting(`${PAUSED_PREFIX}${k}`, new Date().toISOString());
        return s.directory.listSettings(PAUSED_PREFIX);
      });
      if (keys.length > 0) console.log(`paused: ${keys.join(', ')} (a running server stops within ${SETTINGS_MS / 1000} s)`);
      else console.log(paused.length ? paused.map((p) => `${p.key.slice(PAUSED_PREFIX.length)} since ${p.value}`).join('\n') : 'nothing is paused');
    });
  queue
    .command('resume [domains...]')
    .description('deliver to these paused destinations again (--all: every pause)')
    .option('--all', 'every paused destination')
    .action(async (domains: string[], o: { all?: boolean }) => {
      if (!o.all && domains.length === 0) throw new UserError('queue resume: name the domains, or --all');
      const resumed = await withStore(globals(), async (s) => {
        const keys = o.all ? (await s.directory.listSettings(PAUSED_PREFIX)).map((p) => p.key) : domains.map((d) => `${PAUSED_PREFIX}${normalizeDomain(d)}`);
        const done: string[] = [];
        for (const k of keys) {
          await s.directory.deleteSetting(k).then(
            () => done.push(k.slice(PAUSED_PREFIX.length)),
            (err: unknown) => {
              if (!(err instanceof NotFoundError)) throw err;
            },
          );
        }
        return done;
      });
      console.log(resumed.length ? `resumed: ${resumed.join(', ')}` : 'nothing was paused');
    });
  queue
    .command('rate <domain-or-mx-host> <per-minute>')
    .description('at most this many messages a minute to a destination domain or MX host, over all its connections ("off" removes the limit)')
    .action(async (domain: string, perMinute: string) => {
      if (perMinute === 'off') {
        const d = await withStore(globals(), (s) => deleteRateLimit(s.directory, null, domain)).catch((err: unknown) => {
          throw err instanceof NotFoundError ? new UserError(err.message) : err;
        });
        return console.log(`no rate limit for ${d}`);
      }
      const r = await withStore(globals(), (s) => setRateLimit(s.directory, null, domain, perMinute));
      console.log(`at most ${r.perMinute} messages a minute to ${r.destination}`);
    });
  queue
    .command('warmup [domain] [off]')
    .description(
      "limit a new sending domain's outbound mail day by day (UTC) so large receivers learn to trust it; over the day's limit, mail waits for the next day. Without arguments: every warm-up and where it stands",
    )
    .option('--schedule <n,n,...>', 'messages allowed on each day, from the first', DEFAULT_WARMUP_SCHEDULE.join(','))
    .option('--start <YYYY-MM-DD>', 'the first day (default: today)')
    .action(async (domain: string | undefined, off: string | undefined, o: { schedule: string; start?: string }) => {
      if (off !== undefined && off !== 'off') throw new UserError(`queue warmup: expected "off" after the domain, got ${JSON.stringify(off)}`);
      await withStore(globals(), async (s) => {
        if (domain === undefined) {
          const all = await s.directory.listSettings(WARMUP_PREFIX);
          if (all.length === 0) return console.log('no sending domain is warming up');
          const rows: string[][] = [];
          for (const { key, value } of all) {
            const d = key.slice(WARMUP_PREFIX.length);
            const w = parseWarmup(value);
            const today = warmupDay(w, Date.now());
            const sent = Number((await s.directory.getSetting(warmupCounterKey(d, today.key))) ?? 0);
            const state = today.limit !== null ? `day ${today.day + 1} of ${w.schedule.length}` : today.day < 0 ? 'not started' : 'done';
            rows.push([d, formatWarmup(w), state, today.limit === null ? '-' : `${sent}/${today.limit}`]);
          }
          return printTable(['DOMAIN', 'SCHEDULE', 'STATE', 'TODAY'], rows);
        }
        const d = normalizeDomain(domain);
        if (off !== undefined) {
          await s.directory.deleteSetting(`${WARMUP_PREFIX}${d}`).catch((err: unknown) => {
            throw err instanceof NotFoundError ? new UserError(`${d} is not warming up`) : err;
          });
          for (const c of await s.directory.listSettings(`${WARMUP_SENT_PREFIX}${d}:`)) await s.directory.deleteSetting(c.key);
          return console.log(`${d}: warm-up off, no daily limit`);
        }
        const w = parseWarmup(`${o.start ?? new Date().toISOString().slice(0, 10)} ${o.schedule}`);
        await s.directory.setSetting(`${WARMUP_PREFIX}${d}`, formatWarmup(w));
        const last = new Date(w.start.getTime() + (w.schedule.length - 1) * 86_400_000).toISOString().slice(0, 10);
        console.log(
          `${d}: warming up from ${formatWarmup(w).slice(0, 10)}: ${w.schedule[0]} messages on the first day, ${w.schedule.at(-1)} on ${last}, then no limit`,
        );
      });
    });
  const bulk: Array<[string, string, QueueAction, string]> = [
    ['retry', 'make entries due now (held ones are released)', 'retry', 'made due'],
    ['hold', 'hold entries: never delivered until released', 'hold', 'held'],
    ['release', 'release held entries', 'release', 'released'],
    ['delete', 'remove entries without delivering or bouncing them', 'delete', 'deleted'],
  ];
  for (const [name, description, action, done] of bulk) {
    withFilterOptions(queue.command(`${name} [ids...]`))
      .description(description)
      .option('--all', 'every entry')
      .action(async (ids: string[], o: FilterOptions) => {
        const filter = queueFilter({ ...o, ids }, `queue ${name}`);
        const n = await withStore(globals(), (s) => queueAction(s, null, action, filter));
        console.log(`${n} ${n === 1 ? 'entry' : 'entries'} ${done}`);
      });
  }
}

export function registerRouteCommands(program: Command, globals: Globals): void {
  const route = program.command('route').description("per-domain routes: a domain's outbound mail goes to a host instead of its MX hosts");
  route
    .command('add <domain> <host:port>')
    .description('route the domain (replaces its route if it has one); a running server sees it within 30 s')
    .action(async (domain: string, target: string) => {
      const r = await withStore(globals(), (s) => setRoute(s.directory, null, domain, target));
      console.log(`mail for ${r.domain} goes to ${r.target}`);
    });
  route
    .command('list')
    .description('the routes')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const routes = await withStore(globals(), (s) => listRoutes(s.directory, null));
      if (o.json) return printJson(routes);
      printTable(
        ['DOMAIN', 'TARGET'],
        routes.map((r) => [r.domain, r.target]),
      );
    });
  route
    .command('del <domain>')
    .description("remove a domain's route (its mail goes to its MX hosts again)")
    .action(async (domain: string) => {
      const d = await withStore(globals(), (s) => deleteRoute(s.directory, null, domain));
      console.log(`route of ${d} removed`);
    });
}

export function registerSendCommand(program: Command, globals: Globals): void {
  program
    .command('send')
    .description('send a message: local recipients get it now, others are queued for `tern serve` to deliver')
    .requiredOption('--from <address>', 'envelope sender and From header')
    .requiredOption('--to <address...>', 'recipients')
    .option('--subject <text>', 'subject (with --text)', '')
    .option('--text <text>', 'plain-text body')
    .option('--file <path>', 'a whole RFC 5322 message to send as it is')
    .action(async (o: { from: string; to: string[]; subject: string; text?: string; file?: string }) => {
      if ((o.text === undefined) === (o.file === undefined)) throw new UserError('give exactly one of --text and --file');
      const from = normalizeAddress(o.from);
      const to = o.to.flatMap((t) => t.split(',')).map((t) => normalizeAddress(t.trim()));
      const result = await withStore(globals(), async (store) => {
        const hostname = await siteHostname(store, undefined);
        const data = o.file ? await readFile(o.file) : composeText({ from, to, subject: o.subject, text: o.text!, hostname });
        return withInjector(store, hostname, (injector) => injector.inject({ from, to, data }));
      });
      for (const r of result.refused) console.error(`tern: ${r.address}: ${r.reason}`);
      console.log(`message ${result.ternId}: ${result.stored} delivered locally, ${result.queued} queued`);
      if (result.stored + result.queued === 0) process.exitCode = 1;
    });
}

/** A plain-text message; header values are sanitised to one line. */
function composeText(m: { from: string; to: string[]; subject: string; text: string; hostname: string }): Buffer {
  const line = (s: string) => s.replace(/[\r\n]+/g, ' ');
  const body = m.text.replace(/\r?\n/g, '\r\n');
  const ascii = /^[\x20-\x7e]*$/.test(m.subject);
  const subject = ascii ? m.subject : `=?UTF-8?B?${Buffer.from(line(m.subject)).toString('base64')}?=`;
  return Buffer.from(
    [
      `From: <${m.from}>`,
      `To: ${m.to.map((t) => `<${t}>`).join(', ')}`,
      `Subject: ${line(subject)}`,
      `Date: ${rfc5322Date(new Date())}`,
      `Message-ID: <${Date.now().toString(36)}.${Math.random().toString(36).slice(2)}@${m.hostname}>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      body.endsWith('\r\n') ? body : `${body}\r\n`,
    ].join('\r\n'),
  );
}
