/** Every failure the client reports: an answer of the API's error shape, an upload the
 * check refused, a network failure, an abort. `code` is the API's own code
 * (`storage_quota_exceeded`, `rate_limited`, `type_mismatch`, ...) or one of the client's:
 * `network_error`, `aborted`, `upload_failed`, `upload_not_checked`, `http_<status>`. */
export declare class AgentfilesError extends Error {
    readonly status: number;
    readonly code: string;
    readonly details: Record<string, unknown>;
    constructor(status: number, code: string, message: string, details?: Record<string, unknown>);
    /** Worth sending again unchanged (with the same idempotency key, for a message). */
    get retryable(): boolean;
}
export declare function aborted(): AgentfilesError;
/** The error an HTTP answer carries: `{"error": {code, message, details?}}`, or the
 * gateway's own `{"message"}` (a 401 from the JWT authorizer). */
export declare function errorOf(status: number, body: unknown, text: string): AgentfilesError;
