import { AgentfilesError } from "./errors.js";
import { backoff, request, sleep } from "./http.js";
import { upload, waitForCheck } from "./files.js";
import { LiveSocket, follow } from "./live.js";
export { AgentfilesError } from "./errors.js";
export { ENDED } from "./live.js";
export { mediaTypeOf } from "./files.js";
function newKey() {
    return globalThis.crypto.randomUUID();
}
/** Sends until it is not worth retrying: the same request each time (same key). */
async function withRetries(retries, signal, call) {
    for (let attempt = 0;; attempt++) {
        try {
            return await call();
        }
        catch (error) {
            if (!(error instanceof AgentfilesError) || !error.retryable || attempt >= retries)
                throw error;
            await sleep(backoff(attempt), signal);
        }
    }
}
export function createClient(options) {
    const transport = {
        baseUrl: options.baseUrl.replace(/\/+$/, ""),
        getToken: options.getToken,
        fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
    };
    const call = (method, path, rest = {}) => request(transport, method, path, rest);
    let websocketUrl = options.websocketUrl !== undefined ? Promise.resolve(options.websocketUrl) : null;
    const socketUrl = () => (websocketUrl ??= call("GET", "/health", { anonymous: true }).then((health) => health.websocketUrl ?? null, () => null));
    const live = new LiveSocket(socketUrl, options.getToken, options.WebSocket ?? globalThis.WebSocket);
    // Settled uploads as the socket pushes them (heard only while it is open).
    const pushedFiles = (listener) => live.onAccount((frame) => {
        if (frame.type === "file")
            listener(frame.file);
    });
    const files = {
        upload: (blob, uploadOptions) => upload(transport, blob, uploadOptions, pushedFiles),
        get: async (fileId, signal) => (await call("GET", `/files/${fileId}`, { signal })).file,
        /** The file once checked: ready, or an AgentfilesError with the check's code. */
        waitForCheck: (fileId, signal) => waitForCheck(transport, fileId, { signal, pushed: pushedFiles }),
        list: (page = {}) => call("GET", "/files", { query: { limit: page.limit, cursor: page.cursor }, signal: page.signal }),
        delete: (fileId) => call("DELETE", `/files/${fileId}`),
    };
    const threads = {
        create: async (title) => (await call("POST", "/threads", { body: title ? { title } : {} })).thread,
        get: async (threadId) => (await call("GET", `/threads/${threadId}`)).thread,
        list: (page = {}) => call("GET", "/threads", { query: { limit: page.limit, cursor: page.cursor }, signal: page.signal }),
        delete: (threadId) => call("DELETE", `/threads/${threadId}`),
        /** Every frame pushed for the thread (new messages, status changes, deltas) while the
         * socket is open; `subscribed` again after each reconnect. Returns the unsubscribe. */
        watch: (threadId, onFrame) => {
            live.follow(threadId, onFrame).catch(() => { }); // no socket: nothing is pushed, nothing to hear
            return () => live.unfollow(threadId, onFrame);
        },
    };
    const messages = {
        /** Saves the message (and its pending reply, unless `generate: false`). A network
         * failure or a 409/5xx is retried with the same Idempotency-Key: saved once. */
        send: (threadId, content, sendOptions = {}) => {
            const key = sendOptions.idempotencyKey ?? newKey();
            const body = { content };
            if (sendOptions.generate !== undefined)
                body.generate = sendOptions.generate;
            if (sendOptions.model)
                body.model = sendOptions.model;
            return withRetries(sendOptions.retries ?? 3, sendOptions.signal, () => call("POST", `/threads/${threadId}/messages`, { body, headers: { "Idempotency-Key": key }, signal: sendOptions.signal }));
        },
        /** One page, newest first; pass `nextCursor` back as `cursor` for the next. */
        list: (threadId, page = {}) => call("GET", `/threads/${threadId}/messages`, { query: { limit: page.limit, cursor: page.cursor }, signal: page.signal }),
        /** Every message, newest first, page after page. */
        async *all(threadId, page = {}) {
            let cursor;
            do {
                const next = await messages.list(threadId, { ...page, cursor });
                yield* next.items;
                cursor = next.nextCursor ?? undefined;
            } while (cursor);
        },
        get: async (threadId, messageId) => (await call("GET", `/threads/${threadId}/messages/${messageId}`)).message,
        delete: (threadId, messageId) => call("DELETE", `/threads/${threadId}/messages/${messageId}`),
    };
    const images = {
        create: (threadId, prompt, imageOptions = {}) => {
            const key = imageOptions.idempotencyKey ?? newKey();
            const body = { prompt };
            if (imageOptions.size)
                body.size = imageOptions.size;
            if (imageOptions.model)
                body.model = imageOptions.model;
            return withRetries(3, imageOptions.signal, () => call("POST", `/threads/${threadId}/images`, { body, headers: { "Idempotency-Key": key }, signal: imageOptions.signal }));
        },
    };
    const replies = {
        follow: (threadId, messageId, handlers) => follow(transport, live, threadId, messageId, handlers),
        /** The reply ends `stopped` with what streamed so far (or is returned unchanged once ended). */
        stop: async (threadId, messageId) => (await call("POST", `/threads/${threadId}/messages/${messageId}/stop`)).message,
        /** The reply's deltas after `after`, as kept for catching up. */
        stream: (threadId, messageId, after = 0) => call("GET", `/threads/${threadId}/messages/${messageId}/stream`, { query: { after } }),
    };
    return {
        files,
        threads,
        messages,
        images,
        replies,
        usage: () => call("GET", "/usage"),
        account: {
            get: async () => (await call("GET", "/account")).account,
            /** Erases every thread, message and file of the account, in the background; writes answer 409 `account_erasing` until it is done. */
            erase: async () => (await call("DELETE", "/account")).erasure,
        },
        exports: {
            /** Starts one ZIP of the account (409 `export_running` while another is being made). */
            create: async () => (await call("POST", "/exports")).export,
            /** Its status; once ready, a short-lived `url` of the ZIP. */
            get: async (exportId) => (await call("GET", `/exports/${exportId}`)).export,
        },
        models: () => call("GET", "/models"),
        /** Whether replies arrive over the socket right now (else they are polled). */
        get live() {
            return live.open;
        },
        /** Closes the socket (sign out). */
        close: () => live.close(),
    };
}
