/**
 * A typed client of the agentfiles API, for browsers and Node.js (20+), with no
 * dependency beyond the platform's fetch and WebSocket.
 *
 *   const client = createClient({ baseUrl, getToken: () => token });
 *   const { file } = await client.files.upload(blob, { onProgress });
 *   const { reply } = await client.messages.send(thread.id, [{ type: "text", text: "Hi" }, { type: "image", fileId: file.id }]);
 *   const final = await client.replies.follow(thread.id, reply!.id, { onText: (text) => render(text) }).done;
 */
import type { components } from "./schema.js";
import { type TokenSource } from "./http.js";
import { type UploadOptions, type UploadResult } from "./files.js";
import { type FollowHandlers, type Following, type Frame, type MessageOut } from "./live.js";
export { AgentfilesError } from "./errors.js";
export { ENDED, type Delta, type FollowHandlers, type Following, type Frame, type MessageOut, type StreamOut } from "./live.js";
export { mediaTypeOf, type FileOut, type UploadOptions, type UploadProgress, type UploadResult } from "./files.js";
export type { components, paths } from "./schema.js";
type Schemas = components["schemas"];
export type ThreadOut = Schemas["ThreadOut"];
export type Part = Schemas["TextPart"] | Schemas["ImagePart"] | Schemas["FilePart"];
export type UsageOut = Schemas["UsageOut"];
export type ModelsOut = Schemas["ModelsOut"];
export type AccountOut = Schemas["AccountOut"];
export type ErasureOut = Schemas["ErasureOut"];
export type ExportOut = Schemas["ExportOut"];
export interface Page<T> {
    items: T[];
    nextCursor?: string | null;
}
export interface PageOptions {
    limit?: number;
    cursor?: string;
    signal?: AbortSignal;
}
export interface Exchange {
    message: MessageOut;
    reply?: MessageOut | null;
}
export interface ClientOptions {
    /** The HTTP API's URL (the stack output `ApiUrl`; locally http://127.0.0.1:8000). */
    baseUrl: string;
    /** The WebSocket URL (the stack output `WebSocketUrl`). Left out: asked of `GET /health`
     * (the local stack says it); `null`: no socket, replies are polled. */
    websocketUrl?: string | null;
    /** The bearer token (a JWT), asked for on every call so a refreshed one is used. */
    getToken: TokenSource;
    fetch?: typeof fetch;
    WebSocket?: new (url: string) => WebSocket;
}
export interface SendOptions {
    /** Reused on every retry, so the message is saved once; generated when left out. */
    idempotencyKey?: string;
    generate?: boolean;
    model?: string;
    signal?: AbortSignal;
    /** Tries after the first when the API or the network says to try again (default 3). */
    retries?: number;
}
export interface ImageOptions {
    size?: string;
    model?: string;
    idempotencyKey?: string;
    signal?: AbortSignal;
}
export declare function createClient(options: ClientOptions): {
    files: {
        upload: (blob: Blob, uploadOptions?: UploadOptions) => Promise<UploadResult>;
        get: (fileId: string, signal?: AbortSignal) => Promise<{
            id: string;
            filename: string;
            mediaType: string;
            size: number;
            sha256?: string | null;
            status: "pending" | "ready" | "rejected" | "deleting";
            refcount: number;
            createdAt: string;
            updatedAt: string;
            rejection?: components["schemas"]["Rejection"] | null;
            width?: number | null;
            height?: number | null;
            pages?: number | null;
            scan?: ("scanning" | "passed") | null;
            url?: string | null;
            urlExpiresAt?: string | null;
            thumbnailUrl?: string | null;
        }>;
        /** The file once checked: ready, or an AgentfilesError with the check's code. */
        waitForCheck: (fileId: string, signal?: AbortSignal) => Promise<{
            id: string;
            filename: string;
            mediaType: string;
            size: number;
            sha256?: string | null;
            status: "pending" | "ready" | "rejected" | "deleting";
            refcount: number;
            createdAt: string;
            updatedAt: string;
            rejection?: components["schemas"]["Rejection"] | null;
            width?: number | null;
            height?: number | null;
            pages?: number | null;
            scan?: ("scanning" | "passed") | null;
            url?: string | null;
            urlExpiresAt?: string | null;
            thumbnailUrl?: string | null;
        }>;
        list: (page?: PageOptions) => Promise<Page<{
            id: string;
            filename: string;
            mediaType: string;
            size: number;
            sha256?: string | null;
            status: "pending" | "ready" | "rejected" | "deleting";
            refcount: number;
            createdAt: string;
            updatedAt: string;
            rejection?: components["schemas"]["Rejection"] | null;
            width?: number | null;
            height?: number | null;
            pages?: number | null;
            scan?: ("scanning" | "passed") | null;
            url?: string | null;
            urlExpiresAt?: string | null;
            thumbnailUrl?: string | null;
        }>>;
        delete: (fileId: string) => Promise<null>;
    };
    threads: {
        create: (title?: string) => Promise<{
            id: string;
            title?: string | null;
            status: "active" | "deleting";
            createdAt: string;
            updatedAt: string;
        }>;
        get: (threadId: string) => Promise<{
            id: string;
            title?: string | null;
            status: "active" | "deleting";
            createdAt: string;
            updatedAt: string;
        }>;
        list: (page?: PageOptions) => Promise<Page<{
            id: string;
            title?: string | null;
            status: "active" | "deleting";
            createdAt: string;
            updatedAt: string;
        }>>;
        delete: (threadId: string) => Promise<null>;
        /** Every frame pushed for the thread (new messages, status changes, deltas) while the
         * socket is open; `subscribed` again after each reconnect. Returns the unsubscribe. */
        watch: (threadId: string, onFrame: (frame: Frame) => void) => (() => void);
    };
    messages: {
        /** Saves the message (and its pending reply, unless `generate: false`). A network
         * failure or a 409/5xx is retried with the same Idempotency-Key: saved once. */
        send: (threadId: string, content: string | Part[], sendOptions?: SendOptions) => Promise<Exchange>;
        /** One page, newest first; pass `nextCursor` back as `cursor` for the next. */
        list: (threadId: string, page?: PageOptions) => Promise<Page<{
            id: string;
            threadId: string;
            role: "user" | "assistant";
            content: components["schemas"]["PartOut"][];
            fileIds: string[];
            status: "pending" | "streaming" | "success" | "failed" | "stopped";
            error?: components["schemas"]["MessageError"] | null;
            model?: string | null;
            usage?: components["schemas"]["Usage"] | null;
            finishReason?: string | null;
            lastSeq?: number | null;
            replyTo?: string | null;
            createdAt: string;
            updatedAt: string;
        }>>;
        /** Every message, newest first, page after page. */
        all(threadId: string, page?: Omit<PageOptions, "cursor">): AsyncGenerator<MessageOut>;
        get: (threadId: string, messageId: string) => Promise<{
            id: string;
            threadId: string;
            role: "user" | "assistant";
            content: components["schemas"]["PartOut"][];
            fileIds: string[];
            status: "pending" | "streaming" | "success" | "failed" | "stopped";
            error?: components["schemas"]["MessageError"] | null;
            model?: string | null;
            usage?: components["schemas"]["Usage"] | null;
            finishReason?: string | null;
            lastSeq?: number | null;
            replyTo?: string | null;
            createdAt: string;
            updatedAt: string;
        }>;
        delete: (threadId: string, messageId: string) => Promise<null>;
    };
    images: {
        create: (threadId: string, prompt: string, imageOptions?: ImageOptions) => Promise<Exchange>;
    };
    replies: {
        follow: (threadId: string, messageId: string, handlers?: FollowHandlers) => Following;
        /** The reply ends `stopped` with what streamed so far (or is returned unchanged once ended). */
        stop: (threadId: string, messageId: string) => Promise<{
            id: string;
            threadId: string;
            role: "user" | "assistant";
            content: components["schemas"]["PartOut"][];
            fileIds: string[];
            status: "pending" | "streaming" | "success" | "failed" | "stopped";
            error?: components["schemas"]["MessageError"] | null;
            model?: string | null;
            usage?: components["schemas"]["Usage"] | null;
            finishReason?: string | null;
            lastSeq?: number | null;
            replyTo?: string | null;
            createdAt: string;
            updatedAt: string;
        }>;
        /** The reply's deltas after `after`, as kept for catching up. */
        stream: (threadId: string, messageId: string, after?: number) => Promise<{
            messageId: string;
            status: "pending" | "streaming" | "success" | "failed" | "stopped";
            deltas: components["schemas"]["DeltaOut"][];
            lastSeq: number;
        }>;
    };
    usage: () => Promise<{
        storage: components["schemas"]["StorageUsage"];
        generation: components["schemas"]["GenerationUsage"];
        limits: components["schemas"]["UsageLimits"];
    }>;
    account: {
        get: () => Promise<{
            owner: string;
            erasure?: components["schemas"]["ErasureOut"] | null;
        }>;
        /** Erases every thread, message and file of the account, in the background; writes answer 409 `account_erasing` until it is done. */
        erase: () => Promise<{
            status: "pending" | "done";
            phase?: ("connections" | "threads" | "objects" | "rows" | "verify") | null;
            requestedAt: string;
            finishedAt?: string | null;
            counts: components["schemas"]["ErasureCounts"];
        }>;
    };
    exports: {
        /** Starts one ZIP of the account (409 `export_running` while another is being made). */
        create: () => Promise<{
            id: string;
            status: "pending" | "ready" | "failed";
            createdAt: string;
            url?: string | null;
            expiresAt?: string | null;
            bytes?: number | null;
        }>;
        /** Its status; once ready, a short-lived `url` of the ZIP. */
        get: (exportId: string) => Promise<{
            id: string;
            status: "pending" | "ready" | "failed";
            createdAt: string;
            url?: string | null;
            expiresAt?: string | null;
            bytes?: number | null;
        }>;
    };
    models: () => Promise<{
        chat: string[];
        image: string[];
        default: components["schemas"]["DefaultModels"];
        capabilities: {
            [key: string]: components["schemas"]["Capabilities"];
        };
    }>;
    /** Whether replies arrive over the socket right now (else they are polled). */
    readonly live: boolean;
    /** Closes the socket (sign out). */
    close: () => void;
};
export type AgentfilesClient = ReturnType<typeof createClient>;
