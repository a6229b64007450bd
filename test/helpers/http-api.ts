/**
 * The HTTP API as tests call it: one request with an optional Bearer key and JSON body
 * (or raw text), the answer's status, headers and body (parsed when it is JSON); and API
 * keys made with the real `tern apikey create`.
 */
import { cli, type Site } from './tern.js';

export interface ApiAnswer {
  status: number;
  headers: Headers;
  body: unknown;
}

export async function callApi(
  base: string,
  method: string,
  path: string,
  o: { key?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<ApiAnswer> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(o.key ? { authorization: `Bearer ${o.key}` } : {}),
      ...(o.body !== undefined || o.raw ? { 'content-type': 'application/json' } : {}),
      ...o.headers,
    },
    body: o.raw ?? (o.body === undefined ? undefined : JSON.stringify(o.body)),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text && res.headers.get('content-type')?.includes('json') ? (JSON.parse(text) as unknown) : text };
}

/** A new API key (`tern apikey create ARGS…`): its secret. */
export async function createApiKey(site: Site, ...args: string[]): Promise<string> {
  return (JSON.parse(await cli(['apikey', 'create', ...args, '--json', ...site.args])) as { key: string }).key;
}
