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
export declare function request<T>(transport: Transport, method: string, path: string, options?: RequestOptions): Promise<T>;
/** Waits `ms`, or rejects with `aborted` as soon as the signal fires. */
export declare function sleep(ms: number, signal?: AbortSignal): Promise<void>;
/** Exponential backoff with jitter: attempt 0 → about `base` ms, doubling up to `max`. */
export declare function backoff(attempt: number, base?: number, max?: number): number;
