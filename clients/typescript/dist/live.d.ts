import type { FileOut } from "./files.js";
import type { components } from "./schema.js";
import { type Transport } from "./http.js";
export type MessageOut = components["schemas"]["MessageOut"];
export type StreamOut = components["schemas"]["StreamOut"];
export type Delta = components["schemas"]["DeltaOut"];
/** The WebSocket protocol's server frames (the README's frames table). */
export type Frame = {
    type: "subscribed";
    threadId: string;
} | {
    type: "unsubscribed";
    threadId: string;
} | {
    type: "delta";
    threadId: string;
    messageId: string;
    seq: number;
    text: string;
    reset?: boolean;
} | {
    type: "message";
    threadId: string;
    message: MessageOut;
    contentOmitted?: boolean;
} | {
    type: "thread_deleted";
    threadId: string;
}
/** To every open socket of the owner: an upload was settled (ready or rejected). */
 | {
    type: "file";
    file: FileOut;
} | {
    type: "export";
    export: {
        id: string;
        status: string;
    };
} | {
    type: "account_erased";
} | {
    type: "error";
    threadId?: string;
    error: {
        code: string;
        message: string;
    };
};
export declare const ENDED: readonly string[];
type WebSocketClass = new (url: string) => WebSocket;
type Listener = (frame: Frame) => void;
/** One WebSocket for the whole client, opened when something follows a thread and
 * reopened with backoff when it drops; each thread followed is subscribed again on every
 * open, and its listeners hear `subscribed` again (their cue to catch up by seq). */
export declare class LiveSocket {
    private readonly url;
    private readonly getToken;
    private readonly WebSocketImpl;
    private socket;
    private opening;
    private readonly listeners;
    /** Who hears the frames of the account (a settled upload, an export), thread or not. */
    private readonly accountListeners;
    private attempt;
    private closed;
    /** Set once a connection could not be opened at all: followers poll instead. */
    unavailable: boolean;
    constructor(url: () => Promise<string | null>, getToken: () => string | Promise<string>, WebSocketImpl: WebSocketClass | undefined);
    get open(): boolean;
    /** Follow a thread's frames; returns whether a socket is open for it. */
    follow(threadId: string, listener: Listener): Promise<boolean>;
    unfollow(threadId: string, listener: Listener): void;
    /** Hear the account's frames while the socket is open (it is not opened for this);
     * returns the remover. */
    onAccount(listener: Listener): () => void;
    /** Close the socket for good (signing out). */
    close(): void;
    private send;
    private connect;
    private openOnce;
    private reconnect;
    private dispatch;
}
export interface FollowHandlers {
    /** The reply's text so far, after each delta applied in seq order. */
    onText?: (text: string, delta: Delta) => void;
    /** Each delta once, in seq order, with no gap (a `reset` one starts the text over). */
    onDelta?: (delta: Delta) => void;
    /** The reply as the server last said it (status changes, the final message). */
    onMessage?: (message: MessageOut) => void;
    signal?: AbortSignal;
}
export interface Following {
    /** The ended reply (`success`, `failed` or `stopped`), with its whole content. */
    readonly done: Promise<MessageOut>;
    /** The text merged from the deltas so far. */
    readonly text: string;
    readonly lastSeq: number;
    /** Stop listening (the reply goes on). */
    close(): void;
}
/** Subscribes, merges deltas by seq (buffering what arrives early, asking the catch-up
 * route for what is missing), keeps following through dropped connections, polls with
 * backoff while there is no socket, and ends on the final message. */
export declare function follow(transport: Transport, socket: LiveSocket, threadId: string, messageId: string, handlers?: FollowHandlers): Following;
export {};
