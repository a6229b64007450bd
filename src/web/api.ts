/**
 * The portal's only way to the server: JSON requests to /api/v1 with the session cookie. Non-GET requests carry
 * the session's CSRF token; a 401 while signed in means the session ended (idle or too old), which main.tsx turns
 * into the login form saying so. Every failure is an ApiError whose message is the server's own.
 */

export interface Session {
  address: string;
  csrfToken: string;
  idleTimeoutSeconds: number;
  expiresAt: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let session: Session | null = null;
let onSessionLost: () => void = () => {};

/** Called once by the app: what to do when a request finds the session gone. */
export function whenSessionLost(handler: () => void): void {
  onSessionLost = handler;
}

type Query = Record<string, string | number | undefined>;

/** `path` with the query's non-empty values. */
export function withQuery(path: string, query: Query = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/** Requests under way: signing out waits for them, so none reaches the server after the session is gone. */
const pending = new Set<Promise<unknown>>();

/** One request; the parsed body (undefined for 204) and the response, or an ApiError. */
function send<T>(method: string, path: string, body?: unknown, background = false): Promise<{ data: T; response: Response }> {
  const p = request<T>(method, path, body, background);
  pending.add(p);
  const done = () => pending.delete(p);
  p.then(done, done);
  return p;
}

async function request<T>(method: string, path: string, body?: unknown, background = false): Promise<{ data: T; response: Response }> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  // A poll the page makes by itself: the server does not count it as use, so an open dashboard still idles out.
  if (background) headers['X-Tern-Background'] = '1';
  // No Content-Type without a body: the server refuses an empty body declared as JSON.
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && session) headers['X-CSRF-Token'] = session.csrfToken;
  let response: Response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network', 'The server cannot be reached. Check the connection and try again.');
  }
  const text = await response.text();
  let data: unknown;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!response.ok) {
    const error = (data as { error?: { code?: string; message?: string } } | undefined)?.error;
    const fallback = error?.code
      ? `${error.code.replace(/_/g, ' ')} (${response.status})`
      : `The server answered ${response.status} ${response.statusText}`.trim();
    const err = new ApiError(response.status, error?.code ?? 'http', error?.message || fallback);
    if (response.status === 401 && session && !path.startsWith('/session')) {
      session = null;
      onSessionLost();
    }
    throw err;
  }
  return { data: data as T, response };
}

export const api = {
  get: async <T>(path: string, query?: Query) => (await send<T>('GET', withQuery(path, query))).data,
  /** A GET the page makes by itself (a poll), not the administrator: it does not keep the session alive. */
  poll: async <T>(path: string) => (await send<T>('GET', path, undefined, true)).data,
  post: async <T>(path: string, body?: unknown) => (await send<T>('POST', path, body)).data,
  put: async <T>(path: string, body?: unknown) => (await send<T>('PUT', path, body)).data,
  patch: async <T>(path: string, body?: unknown) => (await send<T>('PATCH', path, body)).data,
  delete: async (path: string, query?: Query) => {
    await send<undefined>('DELETE', withQuery(path, query));
  },
  /** A list and the X-Total-Count header (null when the server did not send one). */
  page: async <T>(path: string, query?: Query) => {
    const { data, response } = await send<T[]>('GET', withQuery(path, query));
    const total = response.headers.get('X-Total-Count');
    return { items: data, total: total === null ? null : Number(total) };
  },
};

/** A path segment: an address or a domain name taken as it is. */
export const seg = encodeURIComponent;

/** The session the server knows about this browser, or null (the server answers 204 when there is none). */
export async function currentSession(): Promise<Session | null> {
  session = (await api.get<Session | undefined>('/session')) ?? null;
  return session;
}

export async function signIn(address: string, password: string): Promise<Session> {
  session = await api.post<Session>('/session', { address, password });
  return session;
}

export async function signOut(): Promise<void> {
  await Promise.allSettled([...pending]);
  try {
    await api.delete('/session');
  } finally {
    session = null;
  }
}

/** The message to show for anything a request threw. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
