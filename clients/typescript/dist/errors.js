/** Every failure the client reports: an answer of the API's error shape, an upload the
 * check refused, a network failure, an abort. `code` is the API's own code
 * (`storage_quota_exceeded`, `rate_limited`, `type_mismatch`, ...) or one of the client's:
 * `network_error`, `aborted`, `upload_failed`, `upload_not_checked`, `http_<status>`. */
export class AgentfilesError extends Error {
    status;
    code;
    details;
    constructor(status, code, message, details) {
        super(message);
        this.name = "AgentfilesError";
        this.status = status;
        this.code = code;
        this.details = details ?? {};
    }
    /** Worth sending again unchanged (with the same idempotency key, for a message). */
    get retryable() {
        return this.code === "network_error" || (this.status === 409 && this.code === "conflict") || this.status >= 502;
    }
}
export function aborted() {
    return new AgentfilesError(0, "aborted", "the operation was aborted");
}
/** The error an HTTP answer carries: `{"error": {code, message, details?}}`, or the
 * gateway's own `{"message"}` (a 401 from the JWT authorizer). */
export function errorOf(status, body, text) {
    const shaped = body;
    const error = shaped && typeof shaped === "object" ? shaped.error : undefined;
    if (error && typeof error.code === "string") {
        return new AgentfilesError(status, error.code, error.message ?? error.code, error.details);
    }
    const message = shaped && typeof shaped === "object" && typeof shaped.message === "string" ? shaped.message : text.slice(0, 200);
    return new AgentfilesError(status, status === 401 ? "unauthorized" : `http_${status}`, message || `HTTP ${status}`);
}
