import { AgentfilesError, aborted, errorOf } from "./errors.js";

export type TokenSource = () => string | Promise<string>;

export interface Transport {
  baseUrl: string;
  getToken: TokenSource;
  fetch: typeof fetch;
}

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  query?: Record<string, string | number | undefined>;
  signal?: AbortSignal;
  /** Send no Authorization header (the public routes). */
  anonymous?: boolean;
}

/** One call of the API: JSON in, JSON out, any failure an AgentfilesError. */
export async function request<T>(transport: Transport, method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { ...options.headers };
  if (!options.anonymous) headers.Authorization = `Bearer ${await transport.getToken()}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  let url = `${transport.baseUrl}${path}`;
  const query = Object.entries(options.query ?? {}).filter(([, value]) => value !== undefined);
  if (query.length) url += `?${new URLSearchParams(query.map(([k, v]) => [k, String(v)]))}`;
  let response: Response;
  try {
    response = await transport.fetch(url, { method, headers, body, signal: options.signal });
  } catch (error) {
    if (options.signal?.aborted) throw aborted();
    throw new AgentfilesError(0, "network_error", `cannot reach ${transport.baseUrl}: ${String((error as Error)?.message ?? error)}`);
  }
  const text = await response.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) throw errorOf(response.status, data, text);
  return data as T;
}

/** Waits `ms`, or rejects with `aborted` as soon as the signal fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(aborted());
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(aborted());
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Exponential backoff with jitter: attempt 0 → about `base` ms, doubling up to `max`. */
export function backoff(attempt: number, base = 250, max = 5000): number {
  const ceiling = Math.min(max, base * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}
