/**
 * Webhooks as an admin action, the same for `tern webhook` and the HTTP API: an http(s) URL,
 * at least one known event, a secret made here (shown when made and to whoever manages the
 * webhook), and domain scoping as for API keys: a key limited to a domain makes webhooks
 * for that domain's events only, and sees no others.
 */
import { randomBytes } from 'node:crypto';
import { ForbiddenError, NotFoundError, UserError } from '../errors.js';
import { normalizeDomain } from '../mail/address.js';
import { WEBHOOK_EVENTS, type Store, type Webhook, type WebhookDelivery, type WebhookEvent } from '../store/store.js';
import { manages, scopeDomain, type Actor } from './actor.js';

const MAX_URL_LENGTH = 2048;

export function parseWebhookEvents(input: string | string[]): WebhookEvent[] {
  const list = (Array.isArray(input) ? input : input.split(',')).map((e) => e.trim().toLowerCase()).filter(Boolean);
  if (list.length === 0) throw new UserError(`give at least one event: ${WEBHOOK_EVENTS.join(', ')}`);
  for (const e of list)
    if (!WEBHOOK_EVENTS.includes(e as WebhookEvent)) throw new UserError(`unknown event ${JSON.stringify(e)} (events: ${WEBHOOK_EVENTS.join(', ')})`);
  return WEBHOOK_EVENTS.filter((e) => list.includes(e));
}

function checkUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(`not a URL: ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new UserError('a webhook URL is http:// or https://');
  if (u.username || u.password) throw new UserError('a webhook URL carries no credentials: receivers check the signature');
  if (url.length > MAX_URL_LENGTH) throw new UserError(`a webhook URL is at most ${MAX_URL_LENGTH} characters`);
  return u.toString();
}

export function publicWebhook(w: Webhook) {
  return { ...w, createdAt: w.createdAt.toISOString() };
}

export function publicDelivery(d: WebhookDelivery) {
  return {
    id: d.id,
    event: d.event,
    state: d.state,
    attempts: d.attempts,
    nextAttemptAt: d.state === 'pending' ? d.nextAttemptAt.toISOString() : null,
    lastStatus: d.lastStatus,
    lastError: d.lastError,
    createdAt: d.createdAt.toISOString(),
    finishedAt: d.finishedAt?.toISOString() ?? null,
  };
}

async function existingWebhook(store: Store, actor: Actor, id: string): Promise<Webhook> {
  const hook = await store.webhooks.get(id);
  if (!hook || !manages(actor, hook.domain)) throw new NotFoundError(`webhook ${id} does not exist`);
  return hook;
}

export async function createWebhook(
  store: Store,
  actor: Actor,
  o: { url: string; events: WebhookEvent[]; domain?: string | null; description?: string },
): Promise<Webhook> {
  let domain = o.domain ? normalizeDomain(o.domain) : null;
  if (actor?.domain) {
    if (domain !== null && domain !== actor.domain) throw new ForbiddenError(`this key manages only ${actor.domain}`);
    domain = actor.domain;
  }
  return store.webhooks.add({
    id: randomBytes(6).toString('hex'),
    url: checkUrl(o.url),
    events: o.events,
    secret: `whsec_${randomBytes(24).toString('base64url')}`,
    domain,
    description: o.description ?? '',
  });
}

export async function listWebhooks(store: Store, actor: Actor, domain?: string): Promise<Webhook[]> {
  return store.webhooks.list(scopeDomain(actor, domain ? normalizeDomain(domain) : undefined));
}

export const getWebhook = existingWebhook;

export async function updateWebhook(
  store: Store,
  actor: Actor,
  id: string,
  change: { url?: string; events?: WebhookEvent[]; description?: string; enabled?: boolean },
): Promise<Webhook> {
  await existingWebhook(store, actor, id);
  return store.webhooks.update(id, { ...change, url: change.url === undefined ? undefined : checkUrl(change.url) });
}

export async function deleteWebhook(store: Store, actor: Actor, id: string): Promise<void> {
  await existingWebhook(store, actor, id);
  await store.webhooks.delete(id);
}

/** Owes the webhook a `test` event now; returns the delivery id (see its log for the outcome). */
export async function testWebhook(store: Store, actor: Actor, id: string): Promise<number> {
  const hook = await existingWebhook(store, actor, id);
  return store.webhooks.enqueue(hook.id, 'test', JSON.stringify({ webhook: hook.id, message: 'a test event from Tern' }));
}

export async function webhookLog(store: Store, actor: Actor, id: string, page: { before?: number; limit: number }): Promise<WebhookDelivery[]> {
  await existingWebhook(store, actor, id);
  return store.webhooks.deliveries(id, page);
}
