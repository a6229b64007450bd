/** `tern webhook add|list|del|log|test`: webhook subscriptions (admin/webhooks.ts holds the rules; `tern serve`'s http role sends them). */
import type { Command } from 'commander';
import { createWebhook, deleteWebhook, listWebhooks, parseWebhookEvents, publicDelivery, publicWebhook, testWebhook, webhookLog } from '../admin/webhooks.js';
import { parseInteger } from '../config/parse.js';
import { WEBHOOK_EVENTS } from '../store/store.js';
import { printJson, printTable, withStore, type GlobalOptions } from './context.js';

export function registerWebhookCommands(program: Command, globals: () => GlobalOptions): void {
  const webhook = program.command('webhook').description('POST events to a URL, signed (Tern-Signature), retried for a day');
  webhook
    .command('add <url>')
    .description('subscribe a URL; prints the secret its POSTs are signed with')
    .requiredOption('--events <events>', `comma-separated: ${WEBHOOK_EVENTS.join(', ')}`)
    .option('--domain <domain>', "only this domain's events (received mail for it, outcomes of mail from it)")
    .option('--description <text>', 'what the webhook is for', '')
    .option('--json', 'print JSON')
    .action(async (url: string, o: { events: string; domain?: string; description: string; json?: boolean }) => {
      const events = parseWebhookEvents(o.events);
      const hook = await withStore(globals(), (s) => createWebhook(s, null, { url, events, domain: o.domain, description: o.description }));
      if (o.json) return printJson(publicWebhook(hook));
      console.log(`webhook ${hook.id} -> ${hook.url} (${hook.events.join(', ')})\nsigning secret: ${hook.secret}`);
    });
  webhook
    .command('list')
    .description('webhooks and their secrets')
    .option('--domain <domain>', 'only those limited to this domain')
    .option('--json', 'print JSON')
    .action(async (o: { domain?: string; json?: boolean }) => {
      const hooks = await withStore(globals(), (s) => listWebhooks(s, null, o.domain));
      if (o.json) return printJson(hooks.map(publicWebhook));
      printTable(
        ['ID', 'URL', 'EVENTS', 'DOMAIN', 'STATE', 'DESCRIPTION'],
        hooks.map((h) => [h.id, h.url, h.events.join(','), h.domain ?? '*', h.enabled ? 'enabled' : 'paused', h.description]),
      );
    });
  webhook
    .command('del <id>')
    .description('delete a webhook with the POSTs it is still owed and its log')
    .action(async (id: string) => {
      await withStore(globals(), (s) => deleteWebhook(s, null, id));
      console.log(`webhook ${id} deleted`);
    });
  webhook
    .command('test <id>')
    .description('owe the webhook a test event now (a running server sends it; see `tern webhook log`)')
    .action(async (id: string) => {
      const delivery = await withStore(globals(), (s) => testWebhook(s, null, id));
      console.log(`test event ${delivery} queued for webhook ${id}`);
    });
  webhook
    .command('log <id>')
    .description('the latest deliveries to a webhook, newest first')
    .option('--limit <n>', 'how many', '50')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { limit: string; json?: boolean }) => {
      const log = (await withStore(globals(), (s) => webhookLog(s, null, id, { limit: parseInteger('--limit', o.limit, 1, 1000) }))).map(publicDelivery);
      if (o.json) return printJson(log);
      printTable(
        ['ID', 'EVENT', 'STATE', 'TRIES', 'CREATED', 'LAST'],
        log.map((d) => [String(d.id), d.event, d.state, String(d.attempts), d.createdAt, d.lastError ?? (d.lastStatus === null ? '' : String(d.lastStatus))]),
      );
    });
}
